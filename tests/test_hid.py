import logging

import pytest
from evdev import InputEvent
from evdev import ecodes as e

from mpqr_kiosk.core.events import CLEAR, DELETE, ENTER, MULTIPLY, Key, Scan
from mpqr_kiosk.devices.input.hid import HidDecoder, Refused, Role, Sink, code_problem, role_for_name
from mpqr_kiosk.devices.input.keymaps import get_keymap

SHIFT, ALTGR = e.KEY_LEFTSHIFT, e.KEY_RIGHTALT


def stroke(code, value):
    """What a USB keyboard sends for one key change: the HID usage, the key, a sync."""
    return [
        InputEvent(1, 0, e.EV_MSC, e.MSC_SCAN, 0x70000 + code),
        InputEvent(1, 0, e.EV_KEY, code, value),
        InputEvent(1, 0, e.EV_SYN, e.SYN_REPORT, 0),
    ]


def press(code, *mods):
    """Modifiers down, the key down and up, modifiers up."""
    out = []
    for mod in mods:
        out += stroke(mod, 1)
    out += stroke(code, 1) + stroke(code, 0)
    for mod in reversed(mods):
        out += stroke(mod, 0)
    return out


def keys(*presses):
    return [event for p in presses for event in p]


def decode(events, keymap="us", role=Role.SCANNER):
    decoder = HidDecoder(get_keymap(keymap), role)
    return [value for event in events for value in decoder.feed(event)]


# A realistic code per layout, typed the way a scanner set to that layout types it (hand-built).
LAYOUT_CODES = {
    "us": (
        "ORD-42/Tea?x=1",
        keys(
            press(e.KEY_O, SHIFT), press(e.KEY_R, SHIFT), press(e.KEY_D, SHIFT), press(e.KEY_MINUS),
            press(e.KEY_4), press(e.KEY_2), press(e.KEY_SLASH), press(e.KEY_T, e.KEY_RIGHTSHIFT),
            press(e.KEY_E), press(e.KEY_A), press(e.KEY_SLASH, SHIFT), press(e.KEY_X), press(e.KEY_EQUAL),
            press(e.KEY_1), press(e.KEY_ENTER),
        ),
    ),
    "es": (
        "ES-2024/07.A@B",
        keys(
            press(e.KEY_E, SHIFT), press(e.KEY_S, SHIFT), press(e.KEY_SLASH), press(e.KEY_2), press(e.KEY_0),
            press(e.KEY_2), press(e.KEY_4), press(e.KEY_7, SHIFT), press(e.KEY_0), press(e.KEY_7),
            press(e.KEY_DOT), press(e.KEY_A, SHIFT), press(e.KEY_2, ALTGR), press(e.KEY_B, SHIFT),
            press(e.KEY_ENTER),
        ),
    ),
    "latam": (
        "AR#779/12-Ñ",
        keys(
            press(e.KEY_A, SHIFT), press(e.KEY_R, SHIFT), press(e.KEY_3, SHIFT), press(e.KEY_7), press(e.KEY_7),
            press(e.KEY_9), press(e.KEY_7, SHIFT), press(e.KEY_1), press(e.KEY_2), press(e.KEY_SLASH),
            press(e.KEY_SEMICOLON, SHIFT), press(e.KEY_KPENTER),
        ),
    ),
    "br-abnt2": (
        "NF-e/35:001;Ç",
        keys(
            press(e.KEY_N, SHIFT), press(e.KEY_F, SHIFT), press(e.KEY_MINUS), press(e.KEY_E), press(e.KEY_RO),
            press(e.KEY_3), press(e.KEY_5), press(e.KEY_SLASH, SHIFT), press(e.KEY_0), press(e.KEY_0),
            press(e.KEY_1), press(e.KEY_SLASH), press(e.KEY_SEMICOLON, SHIFT), press(e.KEY_ENTER),
        ),
    ),
}  # fmt: skip


@pytest.mark.parametrize("layout", sorted(LAYOUT_CODES))
def test_each_layout_decodes_a_code_with_shifted_characters(layout):
    code, events = LAYOUT_CODES[layout]
    assert decode(events, layout) == [Scan(code)]


def test_the_same_key_positions_mean_different_codes_on_another_layout():
    _, events = LAYOUT_CODES["latam"]
    assert decode(events, "us") == [Scan("AR#779&12/:")]


def test_autorepeat_key_up_and_non_key_events_add_nothing():
    events = stroke(e.KEY_5, 1) + stroke(e.KEY_5, 2) + stroke(e.KEY_5, 2) + stroke(e.KEY_5, 0)
    events += [InputEvent(1, 0, e.EV_LED, e.LED_NUML, 1)] + press(e.KEY_ENTER)
    assert decode(events) == [Scan("5")]


def test_shift_is_tracked_across_keys_and_released_by_either_side():
    events = stroke(e.KEY_LEFTSHIFT, 1) + stroke(e.KEY_LEFTSHIFT, 2) + press(e.KEY_A) + press(e.KEY_B)
    events += stroke(e.KEY_LEFTSHIFT, 0) + press(e.KEY_C)
    events += stroke(e.KEY_RIGHTSHIFT, 1) + press(e.KEY_D) + stroke(e.KEY_RIGHTSHIFT, 0) + press(e.KEY_ENTER)
    assert decode(events) == [Scan("ABcD")]


def test_enter_with_nothing_pending_is_the_enter_key_and_consecutive_codes_stay_apart():
    events = press(e.KEY_ENTER) + press(e.KEY_1) + press(e.KEY_ENTER) + press(e.KEY_2) + press(e.KEY_KPENTER)
    assert decode(events) == [Key(ENTER), Scan("1"), Scan("2")]


def test_a_code_of_64_characters_is_accepted_and_65_refused_without_a_scan_of_the_tail():
    ok = keys(*[press(e.KEY_7)] * 64, press(e.KEY_ENTER))
    assert decode(ok) == [Scan("7" * 64)]
    too_long = keys(*[press(e.KEY_7)] * 70, press(e.KEY_ENTER), press(e.KEY_4), press(e.KEY_ENTER))
    out = decode(too_long)
    assert out == [Refused("code longer than 64 characters"), Scan("4")]


@pytest.mark.parametrize(
    "bad",
    [
        press(e.KEY_TAB),  # a Tab inside the code
        press(e.KEY_RIGHTBRACE, e.KEY_LEFTCTRL),  # Ctrl+] = GS1 group separator, not printable
        press(e.KEY_F5),
    ],
)
def test_a_non_printable_key_refuses_the_code_and_the_next_code_is_clean(bad):
    events = keys(press(e.KEY_A), bad, press(e.KEY_B), press(e.KEY_ENTER), press(e.KEY_C), press(e.KEY_ENTER))
    out = decode(events)
    assert len(out) == 2 and isinstance(out[0], Refused) and "non-printable" in out[0].reason
    assert out[1] == Scan("c")


def test_a_dead_key_refuses_the_code():
    events = keys(press(e.KEY_A), press(e.KEY_LEFTBRACE), press(e.KEY_SPACE), press(e.KEY_ENTER))
    assert decode(events, "es") == [Refused("non-printable key KEY_LEFTBRACE in the code")]


def test_on_a_scanner_backspace_and_esc_are_keys_only_when_nothing_is_pending():
    events = press(e.KEY_BACKSPACE) + press(e.KEY_ESC)
    events += press(e.KEY_9) + press(e.KEY_ESC) + press(e.KEY_ENTER)  # Esc discards "9", Enter is a key
    events += press(e.KEY_8) + press(e.KEY_BACKSPACE) + press(e.KEY_3) + press(e.KEY_ENTER)
    assert decode(events) == [Key(DELETE), Key(CLEAR), Key(ENTER), Scan("3")]


def test_a_keypad_device_gives_one_key_per_press_and_ignores_other_keys():
    events = keys(
        press(e.KEY_KP1), press(e.KEY_2), press(e.KEY_KP5), press(e.KEY_KP0), press(e.KEY_KPASTERISK),
        press(e.KEY_A), press(e.KEY_KPDOT), press(e.KEY_BACKSPACE), press(e.KEY_ESC), press(e.KEY_8, SHIFT),
        press(e.KEY_3, SHIFT), press(e.KEY_KPENTER), press(e.KEY_ENTER),
    )  # fmt: skip
    assert decode(events, role=Role.KEYPAD) == [
        Key("1"), Key("2"), Key("5"), Key("0"), Key(MULTIPLY), Key(DELETE), Key(CLEAR), Key(MULTIPLY),
        Key(ENTER), Key(ENTER), Key(ENTER),
    ]  # fmt: skip


def test_a_keypad_device_never_builds_a_scan_from_digits():
    events = keys(*[press(e.KEY_KP7)] * 70, press(e.KEY_KPENTER))
    out = decode(events, role=Role.KEYPAD)
    assert out == [Key("7")] * 70 + [Key(ENTER)]


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("Honeywell Imaging & Mobility 1900", Role.SCANNER),
        ("USB Barcode Scanner", Role.SCANNER),
        ("Datalogic ADC, Inc. Handheld Barcode Scanner", Role.SCANNER),
        ("SEM USB Keyboard /dev/input/by-id/usb-Zebra_Technologies_Symbol_Bar_Code-event-kbd", Role.SCANNER),
        ("SIGMACHIP USB Keyboard", Role.KEYPAD),
        ("USB Numeric Keypad", Role.KEYPAD),
    ],
)
def test_role_follows_the_device_name(name, role):
    assert role_for_name(name) is role


def test_code_problem_names_what_is_wrong():
    assert code_problem("7891000100103") == ""
    assert code_problem("") == "empty code"
    assert "64" in code_problem("x" * 65)
    assert "non-printable" in code_problem("01\x1d17")


def test_sink_routes_refusals_and_survives_a_failing_handler(caplog):
    got, refused = [], []

    def emit(value):
        got.append(value)
        if value == Key("1"):
            raise RuntimeError("core exploded")

    sink = Sink("test", emit, refused.append)
    with caplog.at_level(logging.DEBUG):
        sink.deliver([Key("1"), Refused("too long"), Scan("A")])
    assert got == [Key("1"), Scan("A")]
    assert refused == [Refused("too long")]
    assert "core exploded" in caplog.text and "refused a code: too long" in caplog.text
