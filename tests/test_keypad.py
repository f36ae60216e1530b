import time

import pytest
from gpiozero import DigitalOutputDevice
from gpiozero.pins.mock import MockConnectedPin, MockFactory, MockPin

from mpqr_kiosk.core.events import CLEAR, DELETE, ENTER, MULTIPLY, Key
from mpqr_kiosk.devices.input.keypad import KeypadSource

ROWS, COLS = (5, 6, 13, 19), (12, 16, 20, 21)


class Matrix:
    """A mock membrane keypad: closing a key connects its row pin to its column pin."""

    def __init__(self, faces, rows=ROWS, cols=COLS):
        self.factory = MockFactory()
        self.faces = faces
        self.cols = [self.factory.pin(c, pin_class=MockPin) for c in cols]
        self.rows = [self.factory.pin(r, pin_class=MockConnectedPin) for r in rows]  # before the devices

    def press(self, face):
        for r, line in enumerate(self.faces):
            if face in line:
                self.rows[r].input_pin = self.cols[line.index(face)]

    def release(self):
        for row in self.rows:
            row.input_pin = None
        for col in self.cols:
            col.drive_high()  # the pull-up takes the open column back high


FACES_4X4 = ("123A", "456B", "789C", "*0#D")


@pytest.fixture
def matrix():
    m = Matrix(FACES_4X4)
    yield m
    m.factory.reset()


@pytest.fixture
def keypad(matrix):
    got = []
    source = KeypadSource(ROWS, COLS, got.append, pin_factory=matrix.factory)
    source.open()
    source.got = got
    yield source
    source.stop()


def polls(source, n):
    return [key for _ in range(n) for key in source.poll()]


def test_a_press_counts_after_three_steady_scans_once_and_not_on_release(keypad, matrix):
    assert polls(keypad, 5) == []
    matrix.press("5")
    assert keypad.poll() == [] and keypad.poll() == []
    assert keypad.poll() == [Key("5")]
    assert polls(keypad, 20) == []  # held: no repeat
    matrix.release()
    assert polls(keypad, 10) == []  # released: nothing
    matrix.press("5")
    assert polls(keypad, 3) == [Key("5")]  # a second press is a second key


def test_a_bouncing_contact_gives_exactly_one_key(keypad, matrix):
    out = []
    for _ in range(4):  # contact chatter: closed and open on alternate scans
        matrix.press("8")
        out += keypad.poll()
        matrix.release()
        out += keypad.poll()
    matrix.press("8")
    out += polls(keypad, 6)
    for _ in range(3):  # chatter on release too
        matrix.release()
        out += keypad.poll()
        matrix.press("8")
        out += keypad.poll()
    matrix.release()
    out += polls(keypad, 6)
    assert out == [Key("8")]


@pytest.mark.parametrize(
    ("face", "key"),
    [("#", ENTER), ("*", MULTIPLY), ("D", DELETE), ("C", CLEAR), ("0", "0"), ("9", "9"), ("A", None), ("B", None)],
)
def test_faces_map_to_operator_keys(keypad, matrix, face, key):
    matrix.press(face)
    assert polls(keypad, 3) == ([Key(key)] if key else [])


def test_a_4x3_keypad_uses_the_phone_layout():
    m = Matrix(("123", "456", "789", "*0#"), cols=COLS[:3])
    source = KeypadSource(ROWS, COLS[:3], lambda k: None, pin_factory=m.factory)
    source.open()
    try:
        m.press("#")
        assert polls(source, 3) == [Key(ENTER)]
        m.release()
        polls(source, 3)
        m.press("7")
        assert polls(source, 3) == [Key("7")]
    finally:
        source.stop()
        m.factory.reset()


@pytest.mark.parametrize(("rows", "cols"), [((1, 2, 3), (4, 5, 6)), (ROWS, (12, 16)), (ROWS, (5, 16, 20))])
def test_a_keypad_of_the_wrong_shape_or_with_shared_pins_is_a_value_error(rows, cols):
    with pytest.raises(ValueError, match="keypad"):
        KeypadSource(rows, cols, lambda k: None)


def test_the_scanning_thread_emits_one_key_per_bouncy_press_and_stop_frees_the_pins(matrix):
    got = []
    source = KeypadSource(ROWS, COLS, got.append, pin_factory=matrix.factory)
    source.start()
    try:
        assert source.healthy
        for _ in range(5):
            matrix.press("7")
            matrix.release()
        matrix.press("7")
        deadline = time.monotonic() + 3
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        matrix.release()
        time.sleep(0.1)
        assert got == [Key("7")]
    finally:
        source.stop()
    assert not source.healthy
    DigitalOutputDevice(ROWS[0], pin_factory=matrix.factory).close()  # the pin is free again


def test_pins_in_use_leave_the_source_unhealthy_without_raising(matrix):
    holder = DigitalOutputDevice(ROWS[2], pin_factory=matrix.factory)
    source = KeypadSource(ROWS, COLS, lambda k: None, pin_factory=matrix.factory)
    try:
        source.start()
        assert not source.healthy
        DigitalOutputDevice(ROWS[0], pin_factory=matrix.factory).close()  # what it had claimed was let go
    finally:
        source.stop()
        holder.close()
