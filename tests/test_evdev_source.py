import errno
import os
import threading
import time

import pytest
from conftest import wait_for
from evdev import InputEvent
from evdev import ecodes as e
from gpiozero.pins.mock import MockFactory

from mpqr_kiosk.core.events import ENTER, Key, Scan
from mpqr_kiosk.devices.input import open_inputs
from mpqr_kiosk.devices.input.evdev_source import EvdevSource
from mpqr_kiosk.devices.input.hid import Refused, Role
from mpqr_kiosk.devices.input.keymaps import get_keymap
from mpqr_kiosk.devices.input.keypad import KeypadSource
from mpqr_kiosk.devices.input.serial_source import SerialSource
from mpqr_kiosk.devices.input.stdin_source import StdinSource

US = get_keymap("us")
PATH = "/dev/input/by-id/usb-Honeywell_Imaging_1900-event-kbd"
KEYBOARD_CAPS = {e.EV_KEY: [e.KEY_ESC, e.KEY_1, e.KEY_2, e.KEY_ENTER, e.KEY_A, e.KEY_KP1]}


def typed(text, enter=True):
    """Key events a US-layout scanner sends for ``text`` (digits, upper-case letters and '-')."""
    codes = {**{d: (getattr(e, f"KEY_{d}"), False) for d in "0123456789"}, "-": (e.KEY_MINUS, False)}
    codes.update({c: (getattr(e, f"KEY_{c}"), True) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"})
    out = []

    def key(code, value):
        out.extend([
            InputEvent(1, 0, e.EV_MSC, e.MSC_SCAN, 0x70000 + code),
            InputEvent(1, 0, e.EV_KEY, code, value),
            InputEvent(1, 0, e.EV_SYN, e.SYN_REPORT, 0),
        ])  # fmt: skip

    for char in text:
        code, shift = codes[char]
        if shift:
            key(e.KEY_LEFTSHIFT, 1)
        key(code, 1)
        key(code, 0)
        if shift:
            key(e.KEY_LEFTSHIFT, 0)
    if enter:
        key(e.KEY_ENTER, 1)
        key(e.KEY_ENTER, 0)
    return out


class FakeDevice:
    """An evdev.InputDevice stand-in: a pipe gives select() a real fd; read() hands out queued events."""

    def __init__(self, name="Honeywell Imaging 1900", caps=None):
        self.name = name
        self.caps = caps or KEYBOARD_CAPS
        self._r, self._w = os.pipe()
        self.fd = self._r
        self._events = []
        self._lock = threading.Lock()
        self.gone = False
        self.reads = self.grabs = self.ungrabs = 0
        self.closed = False
        self.grab_error = None

    def push(self, events):
        with self._lock:
            self._events.extend(events)
        os.write(self._w, b"x")

    def unplug(self):
        self.gone = True
        os.write(self._w, b"x")  # the kernel wakes select() on a removed device too

    def read(self):
        self.reads += 1
        if self.gone:
            raise OSError(errno.ENODEV, "No such device")
        os.read(self._r, 4096)
        with self._lock:
            events, self._events = self._events, []
        if not events:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return iter(events)

    def grab(self):
        if self.grab_error:
            raise self.grab_error
        self.grabs += 1

    def ungrab(self):
        if self.gone:
            raise OSError(errno.ENODEV, "No such device")
        self.ungrabs += 1

    def capabilities(self):
        return self.caps

    def close(self):
        if not self.closed:
            self.closed = True
            os.close(self._r)
            os.close(self._w)


class Plug:
    """The opener: hands out whatever device is plugged at a path, counting the attempts."""

    def __init__(self, **devices):
        self.devices = dict(devices)
        self.attempts = {}

    def __call__(self, path):
        self.attempts[path] = self.attempts.get(path, 0) + 1
        if path not in self.devices:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        return self.devices[path]

    def lister(self):
        return list(self.devices)


def start(sources, source):
    sources.append(source)
    source.start()
    return source


def test_scans_then_unplug_then_replug_regrabs_without_busy_looping(sources):
    got = []
    first = FakeDevice()
    plug = Plug(**{PATH: first})
    source = start(sources, EvdevSource(US, got.append, path=PATH, opener=plug, rescan_interval=0.05))

    assert wait_for(lambda: source.healthy) and first.grabs == 1
    first.push(typed("4006381333931") + typed("ORD-42"))
    assert wait_for(lambda: len(got) == 2)
    assert got == [Scan("4006381333931"), Scan("ORD-42")]

    del plug.devices[PATH]
    first.unplug()
    assert wait_for(lambda: not source.healthy)
    assert first.closed
    reads_after_unplug, attempts = first.reads, plug.attempts[PATH]
    time.sleep(0.5)
    assert first.reads == reads_after_unplug  # the dead fd is never read again
    polls = plug.attempts[PATH] - attempts
    assert 2 <= polls <= 0.5 / 0.05 + 3  # it looks for the device, about once an interval

    second = FakeDevice()
    plug.devices[PATH] = second
    assert wait_for(lambda: source.healthy) and second.grabs == 1
    second.push(typed("7791234000159"))
    assert wait_for(lambda: len(got) == 3) and got[2] == Scan("7791234000159")

    source.stop()
    assert second.ungrabs == 1 and second.closed and not source.healthy


def test_a_device_missing_at_start_is_opened_when_it_appears(sources):
    plug = Plug()
    got = []
    source = start(sources, EvdevSource(US, got.append, path=PATH, opener=plug, rescan_interval=0.05))
    assert wait_for(lambda: plug.attempts.get(PATH, 0) >= 2) and not source.healthy
    device = FakeDevice()
    plug.devices[PATH] = device
    assert wait_for(lambda: source.healthy)
    device.push(typed("", enter=True))
    assert wait_for(lambda: got == [Key(ENTER)])


def test_a_grab_refused_is_retried_until_it_works(sources):
    opened = []

    def opener(path):
        device = FakeDevice()
        if len(opened) < 2:
            device.grab_error = OSError(errno.EBUSY, "Device or resource busy")
        opened.append(device)
        return device

    source = start(sources, EvdevSource(US, lambda v: None, path=PATH, opener=opener, rescan_interval=0.05))
    assert wait_for(lambda: source.healthy)
    assert len(opened) == 3 and opened[0].closed and opened[1].closed
    assert opened[2].grabs == 1 and not opened[2].closed


def test_the_role_can_be_forced_and_refusals_reach_their_handler(sources):
    got, refused = [], []
    device = FakeDevice(name="Generic USB device")
    plug = Plug(**{PATH: device})
    source = EvdevSource(US, got.append, path=PATH, role=Role.SCANNER, on_refused=refused.append, opener=plug)
    start(sources, source)
    assert wait_for(lambda: source.healthy)
    device.push(typed("1" * 65) + typed("12"))
    assert wait_for(lambda: got == [Scan("12")])
    assert refused == [Refused("code longer than 64 characters")]


def test_auto_reads_scanners_and_keypads_by_name_and_skips_other_devices(sources):
    scanner = FakeDevice(name="Datalogic ADC Handheld Barcode Scanner")
    keypad = FakeDevice(name="SIGMACHIP USB Keyboard")
    power = FakeDevice(name="Power Button", caps={e.EV_KEY: [e.KEY_POWER]})
    hdmi = FakeDevice(name="vc4-hdmi-0", caps=KEYBOARD_CAPS)  # digits and Enter (CEC remote), not ours
    plug = Plug(**{
        "/dev/input/event0": power, "/dev/input/event1": hdmi,
        "/dev/input/event2": scanner, "/dev/input/event3": keypad,
    })  # fmt: skip
    got = []
    source = EvdevSource(US, got.append, opener=plug, lister=plug.lister, rescan_interval=0.05)
    assert source.name == "evdev:auto"
    start(sources, source)
    assert wait_for(lambda: scanner.grabs == 1 and keypad.grabs == 1) and source.healthy
    assert power.grabs == hdmi.grabs == 0 and power.closed and hdmi.closed

    scanner.push(typed("12"))
    assert wait_for(lambda: got == [Scan("12")])
    keypad.push(typed("12"))
    assert wait_for(lambda: got == [Scan("12"), Key("1"), Key("2"), Key(ENTER)])

    time.sleep(0.2)
    assert plug.attempts["/dev/input/event0"] == 1  # a skipped device is not reopened on every rescan

    del plug.devices["/dev/input/event2"]
    scanner.unplug()
    assert wait_for(lambda: scanner.closed)
    assert source.healthy  # the keypad is still there
    del plug.devices["/dev/input/event3"]
    keypad.unplug()
    assert wait_for(lambda: not source.healthy)


def test_stop_before_start_and_twice_is_harmless():
    source = EvdevSource(US, lambda v: None, path=PATH, opener=Plug())
    source.stop()
    source.stop()
    assert not source.healthy


# ---------------------------------------------------------------- open_inputs: one source per spec


def test_open_inputs_builds_one_unstarted_source_per_spec():
    specs = (
        "evdev:auto", "evdev:/dev/input/by-id/usb-x-event-kbd", "evdev:keypad:/dev/input/event3", "keypad",
        "serial:/dev/ttyACM0:115200", "serial:loop://", "stdin",
    )  # fmt: skip
    sources = open_inputs(specs, lambda v: None, keymap="br-abnt2", keypad_rows=(5, 6, 13, 19),
                          keypad_cols=(12, 16, 20, 21), pin_factory=MockFactory())
    assert [type(s) for s in sources] == [
        EvdevSource, EvdevSource, EvdevSource, KeypadSource, SerialSource, SerialSource, StdinSource,
    ]  # fmt: skip
    assert [s.name for s in sources] == [
        "evdev:auto", "evdev:/dev/input/by-id/usb-x-event-kbd", "evdev:/dev/input/event3", "keypad",
        "serial:/dev/ttyACM0:115200", "serial:loop://:9600", "stdin",
    ]  # fmt: skip
    assert not any(s.healthy for s in sources)


@pytest.mark.parametrize(
    "spec", ["evdev:", "evdev:event3", "evdev:scanner:", "serial:", "serial:/dev/ttyACM0:0", "usb", "keypad:4", ""]
)
def test_open_inputs_names_a_bad_spec_and_the_valid_forms(spec):
    with pytest.raises(ValueError) as info:
        open_inputs(("stdin", spec), lambda v: None)
    assert repr(spec) in str(info.value) and "evdev:auto" in str(info.value) and "serial:" in str(info.value)


def test_open_inputs_refuses_a_bad_keymap_or_keypad_shape():
    with pytest.raises(ValueError, match="'dvorak'.*us, es, latam, br-abnt2"):
        open_inputs(("stdin",), lambda v: None, keymap="dvorak")
    with pytest.raises(ValueError, match="4 rows"):
        open_inputs(("keypad",), lambda v: None, keypad_rows=(5, 6), keypad_cols=(12, 16, 20, 21))
