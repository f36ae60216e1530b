"""The display port: a luma.oled panel, PNG frames in a folder (the demo), or nothing.

``open_display``'s ``driver`` picks the adapter: any luma.oled graphic driver by name (``ssd1306``, ``sh1106``,
``ssd1327``, ...) on ``i2c`` or ``spi``; ``png``; ``none``. ``show()`` never raises: a bus fault (an OSError
such as ``[Errno 121] Remote I/O error``, or luma's DeviceNotFoundError) marks the display unhealthy and the
device is re-created, with back-off, on a later ``show()``; the sale goes on without it.

Re-creating is the only way to re-run a panel's init sequence. Every re-created device shares one serial
interface (one smbus file descriptor), and luma's ``atexit`` hook, which it registers on every device
construction, is kept out; the display registers one hook of its own, ``close()``.

``device.persist`` is False: on ``close()`` (at the latest at interpreter exit) luma clears the panel and
switches it off, so a stopped daemon never leaves a stale QR and total on the counter for a customer to
pay against, and the OLED does not burn in.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import luma.core.device
import luma.core.error
import luma.oled.device
from luma.core.interface.serial import i2c, noop, spi
from luma.core.virtual import character

from mpqr_kiosk.core.model import Screen
from mpqr_kiosk.core.sites import Site
from mpqr_kiosk.ports import Display
from mpqr_kiosk.screens import render

log = logging.getLogger(__name__)

DRIVERS: tuple[str, ...] = tuple(
    name for name in luma.oled.device.__all__ if not issubclass(getattr(luma.oled.device, name), character)
)
BACKOFF_MIN = 1.0  # seconds before the first re-creation; doubles per failure
BACKOFF_MAX = 30.0
PNG_MODE = "1"  # the png driver draws what a monochrome OLED (ssd1306, sh1106) would show

_FAULTS = (OSError, luma.core.error.Error, ImportError)  # ImportError: spi without RPi.GPIO / spidev


class NullDisplay:
    """``driver = "none"``: shows nothing."""

    healthy = True
    error = ""

    def show(self, screen: Screen) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""


class _NoAtexit:
    """Stands in for the ``atexit`` module inside ``luma.core.device`` while a device is constructed."""

    @staticmethod
    def register(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return func


def _construct(make_device: Callable[[], luma.core.device.device]) -> luma.core.device.device:
    """Build a luma device without the atexit hook luma adds per construction (they would pile up)."""
    real = luma.core.device.atexit
    luma.core.device.atexit = _NoAtexit
    try:
        return make_device()
    finally:
        luma.core.device.atexit = real


class SharedBus:
    """One serial interface under every re-created device: opened on first use, closed only by ``close()``.

    A device's ``cleanup()`` calls ``cleanup()`` here, which does nothing, so re-creating the device does not
    close (or leak) the bus.
    """

    def __init__(self, make_serial: Callable[[], Any]) -> None:
        self._make_serial = make_serial
        self._serial: Any = None

    def _open(self) -> Any:
        if self._serial is None:
            self._serial = self._make_serial()
        return self._serial

    def command(self, *cmd: int) -> None:
        self._open().command(*cmd)

    def data(self, data: Any) -> None:
        self._open().data(data)

    def cleanup(self) -> None:
        """Called by a device's cleanup: the bus outlives the device."""

    def close(self) -> None:
        if self._serial is not None:
            serial, self._serial = self._serial, None
            serial.cleanup()


class LumaDisplay:
    """A luma device drawn with ``screens.render``; faults re-create it with back-off, never raise."""

    def __init__(
        self,
        make_device: Callable[[], luma.core.device.device],
        site: Site,
        qr_payload: str,
        *,
        bus: SharedBus | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._make_device = make_device
        self._site = site
        self._qr_payload = qr_payload
        self._bus = bus
        self._clock = clock
        self._lock = threading.Lock()
        self._device: luma.core.device.device | None = None
        self._backoff = BACKOFF_MIN
        self._retry_at = 0.0
        self.healthy = False
        self.error = ""
        self.recreated = 0  # devices built after a fault
        with self._lock:
            self._connect()
        atexit.register(self.close)

    def show(self, screen: Screen) -> None:
        """Draw ``screen``; on a fault log it, mark the display unhealthy and carry on."""
        with self._lock:
            if self._device is None and (self._clock() < self._retry_at or not self._connect()):
                return
            try:
                self._draw(self._device, screen)
            except _FAULTS as exc:
                self._fault(exc)
            except Exception as exc:  # a drawing bug must not stop a sale either; the device is fine
                self.healthy, self.error = False, f"{type(exc).__name__}: {exc}"
                log.exception("display could not draw the %s screen", screen.kind.value)
            else:
                self.healthy, self.error = True, ""

    def close(self) -> None:
        """Clear and switch off the panel (``persist`` is False) and release the bus."""
        atexit.unregister(self.close)
        with self._lock:
            if self._device is not None:
                with suppress(*_FAULTS):
                    self._device.cleanup()
                self._device = None
            if self._bus is not None:
                with suppress(*_FAULTS):
                    self._bus.close()

    def _draw(self, device: luma.core.device.device, screen: Screen) -> None:
        device.display(render(screen, self._site, device.size, device.mode, self._qr_payload))

    def _connect(self) -> bool:
        try:
            device = _construct(self._make_device)
        except _FAULTS as exc:
            self._fault(exc)
            return False
        device.persist = False
        if self.error:
            self.recreated += 1
            log.info("display re-created after fault: %s", self.error)
        self._device, self.healthy, self.error, self._backoff = device, True, "", BACKOFF_MIN
        return True

    def _fault(self, exc: BaseException) -> None:
        old, self._device = self._device, None
        if old is not None:
            old.persist = True  # do not talk to a panel that is about to be re-initialised
            with suppress(*_FAULTS):
                old.cleanup()
        self.healthy, self.error = False, f"{type(exc).__name__}: {exc}"
        self._retry_at = self._clock() + self._backoff
        log.warning("display fault (%s); retrying in %.0f s", self.error, self._backoff)
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)


class PngDisplay(LumaDisplay):
    """``driver = "png"``: a luma ``dummy`` device whose every frame is saved as ``0001-<screen>.png``.
    ``frames`` holds the paths of the latest ``KEEP`` frames (the files all stay on disk)."""

    KEEP = 100

    def __init__(self, directory: str, width: int, height: int, rotate: int, site: Site, qr_payload: str) -> None:
        self.directory = Path(directory)
        self.frames: deque[Path] = deque(maxlen=self.KEEP)
        self.count = 0

        def make_device() -> luma.core.device.device:
            return luma.core.device.dummy(width, height, rotate=rotate, mode=PNG_MODE)

        super().__init__(make_device, site, qr_payload)

    def _draw(self, device: luma.core.device.device, screen: Screen) -> None:
        super()._draw(device, screen)
        self.count += 1
        path = self.directory / f"{self.count:04d}-{screen.kind.value}.png"
        self.directory.mkdir(parents=True, exist_ok=True)
        device.image.save(path)
        self.frames.append(path)


def _serial_factory(interface: str, i2c_port: int, i2c_address: int) -> Callable[[], Any]:
    if interface == "i2c":
        return lambda: i2c(port=i2c_port, address=i2c_address)
    if interface == "spi":
        return spi
    raise ValueError(f"display interface {interface!r} is not one of: i2c, spi")


def open_display(
    driver: str,
    site: Site,
    qr_payload: str,
    *,
    width: int = 128,
    height: int = 128,
    rotate: int = 0,
    interface: str = "i2c",
    i2c_port: int = 1,
    i2c_address: int = 0x3C,
    png_dir: str = "",
    serial: Any = None,
    clock: Callable[[], float] = time.monotonic,
) -> Display:
    """The display ``driver`` names. ``ValueError`` for a bad driver, interface or size; hardware faults
    only make it unhealthy. ``serial`` replaces the bus ``interface`` (tests, other buses)."""
    if driver == "none":
        return NullDisplay()
    if driver == "png":
        if not png_dir:
            raise ValueError("display driver 'png' needs png_dir")
        return PngDisplay(png_dir, width, height, rotate, site, qr_payload)
    if driver not in DRIVERS:
        raise ValueError(f"unknown display driver {driver!r}; one of: png, none, {', '.join(DRIVERS)}")
    device_class = getattr(luma.oled.device, driver)
    make_serial = (lambda: serial) if serial is not None else _serial_factory(interface, i2c_port, i2c_address)
    size = {"width": width, "height": height, "rotate": rotate}
    try:  # the size and rotation checks run in the driver's constructor: try them on a bus that does nothing
        _construct(lambda: device_class(serial_interface=noop(), **size))
    except (luma.core.error.DeviceDisplayModeError, AssertionError) as exc:
        raise ValueError(f"display driver {driver} cannot do {width}x{height} rotate {rotate}: {exc}") from None
    bus = SharedBus(make_serial)

    def make_device() -> luma.core.device.device:
        return device_class(serial_interface=bus, **size)

    return LumaDisplay(make_device, site, qr_payload, bus=bus, clock=clock)
