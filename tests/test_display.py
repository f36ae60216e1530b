"""devices/display.py: the png, none and luma adapters; a failing bus never escapes show()."""

from __future__ import annotations

import atexit
import errno
from pathlib import Path

import luma.core.error
import pytest
import zxingcpp
from PIL import Image

from mpqr_kiosk.core.model import Screen, ScreenKind
from mpqr_kiosk.core.sites import site
from mpqr_kiosk.devices.display import BACKOFF_MIN, DRIVERS, NullDisplay, open_display

PAYLOAD = (
    "00020101021143520016com.mercadolibre0128https://mpago.la/pos/1043915501300091234567895204970053030325802AR"
    "5909FULL NAME6010CITY LEGAL63040AAB"
)
DISPLAY_OFF = 0xAE  # SSD1306 command


class FlakySerial:
    """A luma serial interface whose bus can be made to fail like an unplugged I2C panel."""

    def __init__(self) -> None:
        self.fault: Exception | None = None
        self.commands: list[int] = []
        self.frames = 0
        self.cleanups = 0

    def command(self, *cmd: int) -> None:
        if self.fault:
            raise self.fault
        self.commands.extend(cmd)

    def data(self, data: list[int]) -> None:
        if self.fault:
            raise self.fault
        self.frames += 1

    def cleanup(self) -> None:
        self.cleanups += 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def flaky() -> FlakySerial:
    return FlakySerial()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def ssd1306(flaky: FlakySerial, clock: Clock):
    return open_display("ssd1306", site("MLB"), PAYLOAD, width=128, height=64, serial=flaky, clock=clock)


def test_png_display_writes_one_file_per_frame(tmp_path: Path) -> None:
    display = open_display("png", site("MLA"), PAYLOAD, width=128, height=128, png_dir=str(tmp_path / "frames"))
    for screen in (Screen(ScreenKind.READY), Screen(ScreenKind.ENTERING, entry=1250),
                   Screen(ScreenKind.PAY, total=1250, seconds_left=600)):
        display.show(screen)
    display.close()
    names = [p.name for p in display.frames]
    assert names == ["0001-ready.png", "0002-entering.png", "0003-pay.png"]
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == names
    with Image.open(display.frames[2]) as frame:
        assert frame.size == (128, 128)
        assert [code.text for code in zxingcpp.read_barcodes(frame)] == [PAYLOAD]
    assert display.healthy


def test_png_display_saves_what_a_rotated_panel_shows(tmp_path: Path) -> None:
    display = open_display("png", site("MLA"), PAYLOAD, width=128, height=64, rotate=1, png_dir=str(tmp_path))
    display.show(Screen(ScreenKind.READY))
    with Image.open(display.frames[0]) as frame:
        assert frame.size == (128, 64)  # the panel's pixels; the screen was drawn 64 wide and 128 tall


def test_none_display_accepts_everything() -> None:
    display = open_display("none", site("MLA"), PAYLOAD)
    assert isinstance(display, NullDisplay)
    display.show(Screen(ScreenKind.PAY, total=1))
    assert display.healthy


def test_unknown_driver_is_named_with_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="'ssd9999'") as error:
        open_display("ssd9999", site("MLA"), PAYLOAD)
    for name in ("ssd1306", "sh1106", "ssd1309", "ssd1322", "ssd1325", "ssd1327", "ssd1351", "png", "none"):
        assert name in str(error.value)
    assert "ws0010" not in DRIVERS  # a character display, not a pixel panel


def test_size_the_driver_cannot_do_is_a_config_error(flaky: FlakySerial) -> None:
    with pytest.raises(ValueError, match="ssd1306 cannot do 128x128"):
        open_display("ssd1306", site("MLA"), PAYLOAD, width=128, height=128, serial=flaky)


def test_real_driver_draws_frames_over_the_bus(flaky: FlakySerial, clock: Clock) -> None:
    display = ssd1306(flaky, clock)
    frames = flaky.frames
    display.show(Screen(ScreenKind.PAY, total=1250, seconds_left=60))
    assert display.healthy and flaky.frames == frames + 1
    display.close()


@pytest.mark.parametrize(
    "fault",
    [OSError(errno.EREMOTEIO, "Remote I/O error"), luma.core.error.DeviceNotFoundError("no I2C device")],
    ids=["oserror", "luma"],
)
def test_bus_fault_recreates_the_device_without_raising_or_piling_up_atexit_hooks(
    flaky: FlakySerial, clock: Clock, fault: Exception
) -> None:
    callbacks = atexit._ncallbacks()  # noqa: SLF001
    display = ssd1306(flaky, clock)
    assert atexit._ncallbacks() == callbacks + 1  # noqa: SLF001 - the display's own close(), not one per device
    for cycle in range(1, 11):
        flaky.fault = fault
        display.show(Screen(ScreenKind.READY))  # must not raise
        assert not display.healthy and type(fault).__name__ in display.error
        clock.now += 3600
        display.show(Screen(ScreenKind.READY))  # the re-creation fails too: still no exception
        flaky.fault = None
        clock.now += 3600
        frames = flaky.frames
        display.show(Screen(ScreenKind.PAID, total=100))
        assert display.healthy and display.error == ""
        assert display.recreated == cycle
        assert flaky.frames > frames  # init clears the panel, then the screen itself is drawn
        assert atexit._ncallbacks() == callbacks + 1  # noqa: SLF001
    assert flaky.cleanups == 0  # re-created devices share the bus: nobody closed it
    display.close()
    assert flaky.cleanups == 1


def test_backoff_waits_before_trying_the_bus_again(flaky: FlakySerial, clock: Clock) -> None:
    display = ssd1306(flaky, clock)
    flaky.fault = OSError(errno.EIO, "I/O error")
    display.show(Screen(ScreenKind.READY))
    flaky.fault = None
    commands = len(flaky.commands)
    display.show(Screen(ScreenKind.READY))  # within the back-off: the bus is left alone
    assert len(flaky.commands) == commands and not display.healthy
    clock.now += BACKOFF_MIN
    display.show(Screen(ScreenKind.READY))
    assert len(flaky.commands) > commands and display.healthy
    display.close()


def test_close_switches_the_panel_off(flaky: FlakySerial, clock: Clock) -> None:
    display = ssd1306(flaky, clock)
    display.show(Screen(ScreenKind.PAY, total=1250, seconds_left=60))
    flaky.commands.clear()
    display.close()
    assert DISPLAY_OFF in flaky.commands  # persist is False: no stale QR and total after the daemon stops


def test_a_drawing_bug_does_not_escape_either(
    flaky: FlakySerial, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    display = ssd1306(flaky, clock)

    def broken(*args: object) -> None:
        raise ValueError("bad layout")

    with monkeypatch.context() as patch:
        patch.setattr("mpqr_kiosk.devices.display.render", broken)
        display.show(Screen(ScreenKind.READY))
    assert not display.healthy and "bad layout" in display.error
    display.show(Screen(ScreenKind.READY))
    assert display.healthy and display.recreated == 0  # the panel itself was fine all along
    display.close()


def test_missing_bus_at_start_is_unhealthy_not_fatal(clock: Clock) -> None:
    def no_bus() -> None:
        raise luma.core.error.DeviceNotFoundError("I2C device not found: /dev/i2c-7")

    class Missing:
        command = data = cleanup = staticmethod(lambda *args: no_bus())

    display = open_display("sh1106", site("MLA"), PAYLOAD, width=128, height=64, serial=Missing(), clock=clock)
    assert not display.healthy and "/dev/i2c-7" in display.error
    display.show(Screen(ScreenKind.READY))
    display.close()
