import pytest
from evdev import ecodes as e

from mpqr_kiosk.core.events import CLEAR, DELETE, ENTER, MULTIPLY
from mpqr_kiosk.devices.input.keymaps import KEYMAPS, OPERATOR_KEYS, get_keymap


def test_the_four_layouts_exist_and_unknown_ones_are_refused_by_name():
    assert set(KEYMAPS) == {"us", "es", "latam", "br-abnt2"}
    assert get_keymap("latam").name == "latam"
    with pytest.raises(ValueError, match=r"'fr'.*us, es, latam, br-abnt2"):
        get_keymap("fr")


@pytest.mark.parametrize("name", sorted(KEYMAPS))
def test_every_character_is_one_printable_character_and_letters_and_digits_are_complete(name):
    keymap = get_keymap(name)
    for levels in keymap.keys.values():
        assert all(c == "" or (len(c) == 1 and c.isprintable()) for c in levels)
    for letter in "abcdefghijklmnopqrstuvwxyz":
        code = getattr(e, f"KEY_{letter.upper()}")
        assert keymap.char(code) == letter
        assert keymap.char(code, shift=True) == letter.upper()
    for digit in "0123456789":
        assert keymap.char(getattr(e, f"KEY_{digit}")) == digit
        assert keymap.char(getattr(e, f"KEY_KP{digit}")) == digit
    assert keymap.char(e.KEY_SPACE) == " "


@pytest.mark.parametrize(
    ("name", "code", "shift", "altgr", "char"),
    [
        ("us", e.KEY_SLASH, False, False, "/"),
        ("us", e.KEY_MINUS, True, False, "_"),
        ("us", e.KEY_3, True, False, "#"),
        ("us", e.KEY_EQUAL, True, False, "+"),
        ("us", e.KEY_4, True, False, "$"),
        ("es", e.KEY_7, True, False, "/"),
        ("es", e.KEY_SLASH, False, False, "-"),
        ("es", e.KEY_RIGHTBRACE, False, False, "+"),
        ("es", e.KEY_5, True, False, "%"),
        ("es", e.KEY_3, True, False, "·"),
        ("es", e.KEY_2, False, True, "@"),
        ("es", e.KEY_3, False, True, "#"),
        ("es", e.KEY_SEMICOLON, False, False, "ñ"),
        ("es", e.KEY_E, False, True, "€"),
        ("latam", e.KEY_7, True, False, "/"),
        ("latam", e.KEY_3, True, False, "#"),
        ("latam", e.KEY_Q, False, True, "@"),
        ("latam", e.KEY_APOSTROPHE, False, False, "{"),
        ("latam", e.KEY_GRAVE, False, False, "|"),
        ("latam", e.KEY_MINUS, False, True, "\\"),
        ("br-abnt2", e.KEY_RO, False, False, "/"),
        ("br-abnt2", e.KEY_RO, True, False, "?"),
        ("br-abnt2", e.KEY_Q, False, True, "/"),
        ("br-abnt2", e.KEY_SLASH, False, False, ";"),
        ("br-abnt2", e.KEY_SLASH, True, False, ":"),
        ("br-abnt2", e.KEY_SEMICOLON, False, False, "ç"),
        ("br-abnt2", e.KEY_2, True, False, "@"),
        ("br-abnt2", e.KEY_8, True, False, "*"),
        ("br-abnt2", e.KEY_KPDOT, False, False, ","),
        ("br-abnt2", e.KEY_KPCOMMA, False, False, "."),
        ("br-abnt2", e.KEY_KPSLASH, False, False, "/"),
    ],
)
def test_characters_sit_where_the_real_layouts_put_them(name, code, shift, altgr, char):
    assert get_keymap(name).char(code, shift=shift, altgr=altgr) == char


@pytest.mark.parametrize(
    ("name", "code", "shift"),
    [
        ("es", e.KEY_LEFTBRACE, False),  # dead grave
        ("es", e.KEY_APOSTROPHE, True),  # dead diaeresis
        ("latam", e.KEY_LEFTBRACE, False),  # dead acute
        ("br-abnt2", e.KEY_APOSTROPHE, False),  # dead tilde
        ("br-abnt2", e.KEY_6, True),  # dead diaeresis
        ("us", e.KEY_TAB, False),  # not a character
        ("us", e.KEY_F1, False),
    ],
)
def test_dead_and_unmapped_keys_give_no_character(name, code, shift):
    assert get_keymap(name).char(code, shift=shift) is None


def test_shift_with_altgr_is_not_a_level_the_tables_have():
    assert get_keymap("es").char(e.KEY_2, shift=True, altgr=True) is None


def test_operator_keys_are_the_same_on_every_layout():
    assert OPERATOR_KEYS[e.KEY_ENTER] == OPERATOR_KEYS[e.KEY_KPENTER] == ENTER
    assert OPERATOR_KEYS[e.KEY_BACKSPACE] == DELETE
    assert OPERATOR_KEYS[e.KEY_ESC] == CLEAR
    assert OPERATOR_KEYS[e.KEY_KPASTERISK] == MULTIPLY
    assert [OPERATOR_KEYS[getattr(e, f"KEY_KP{d}")] for d in "0123456789"] == list("0123456789")
