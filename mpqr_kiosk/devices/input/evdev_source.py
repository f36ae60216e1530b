"""Reading USB scanners and keypads through evdev, with hot-plug.

One thread per source waits on the open devices with ``select`` (a short timeout, so ``stop()`` is
prompt) and every ``rescan_interval`` seconds (about 1 s) looks for devices to open: the configured path
(a ``/dev/input/by-id/…`` symlink survives replugging) or, for ``evdev:auto``, every device in
``evdev.list_devices()`` that looks like a scanner or keypad. Each device is ``grab()``-bed so its
keystrokes do not reach the console. When a read fails (``ENODEV`` on unplug) the device is closed at
once, never read again, and looked for at the next rescan; reopening grabs it again. Nothing here
raises into the caller: failures are logged once and the thread goes on.

The opener is injectable: any callable ``opener(path)`` returning an object with ``fd``, ``name``,
``read()``, ``grab()``, ``ungrab()`` and ``close()`` (and ``capabilities()`` for auto) will do.
"""

from __future__ import annotations

import errno
import logging
import select
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import evdev
from evdev import ecodes as e

from mpqr_kiosk.core.events import Key, Scan
from mpqr_kiosk.devices.input.base import ThreadedSource
from mpqr_kiosk.devices.input.hid import HidDecoder, Refused, Role, Sink, role_for_name
from mpqr_kiosk.devices.input.keymaps import Keymap

log = logging.getLogger(__name__)

POLL_TIMEOUT = 0.2  # seconds select waits, bounds how long stop() takes
# Words in a device name that make evdev:auto read it (with a scanner word from hid.SCANNER_HINTS).
KEYBOARD_HINTS = ("keyboard", "keypad", "numpad", "kbd", "numeric")


class InputDeviceLike(Protocol):
    fd: int
    name: str

    def read(self) -> Iterable[evdev.InputEvent]: ...
    def grab(self) -> None: ...
    def ungrab(self) -> None: ...
    def close(self) -> None: ...


Opener = Callable[[str], InputDeviceLike]


def looks_like_input(device: Any) -> bool:
    """A keyboard-like device (Enter and digit keys) whose name says scanner, keypad or keyboard."""
    keys = set(device.capabilities().get(e.EV_KEY, ()))
    keyboard_like = e.KEY_ENTER in keys and bool(keys & {e.KEY_1, e.KEY_KP1})
    name = device.name.lower()
    named = role_for_name(name) is Role.SCANNER or any(hint in name for hint in KEYBOARD_HINTS)
    return keyboard_like and named


@dataclass
class _Open:
    device: InputDeviceLike
    decoder: HidDecoder


class EvdevSource(ThreadedSource):
    """Keys and scans from one evdev path, or from every suitable device (``path=None``: evdev:auto).

    ``role`` forces how keys are read; by default it follows the device's name and path
    (``hid.role_for_name``). ``stop()`` ends the thread, which then ungrabs and closes every device.
    """

    def __init__(
        self,
        keymap: Keymap,
        emit: Callable[[Key | Scan], None],
        *,
        path: str | None = None,
        role: Role | None = None,
        on_refused: Callable[[Refused], None] | None = None,
        opener: Opener = evdev.InputDevice,
        lister: Callable[[], Iterable[str]] = evdev.list_devices,
        rescan_interval: float = 1.0,
    ) -> None:
        super().__init__()
        self.name = f"evdev:{path or 'auto'}"
        self._path = path
        self._keymap = keymap
        self._role = role
        self._sink = Sink(self.name, emit, on_refused)
        self._opener = opener
        self._lister = lister
        self._interval = rescan_interval
        self._open: dict[str, _Open] = {}
        self._skipped: set[str] = set()  # auto: devices that are not scanners/keypads
        self._failing: set[str] = set()  # paths whose open failure was already logged

    @property
    def healthy(self) -> bool:
        """At least one device is open and grabbed."""
        return bool(self._open)

    def _run(self) -> None:
        next_scan, failing = 0.0, False
        try:
            while not self._stopping.is_set():
                try:
                    if time.monotonic() >= next_scan:
                        next_scan = time.monotonic() + self._interval
                        self._rescan()
                    self._read_ready(min(POLL_TIMEOUT, max(0.0, next_scan - time.monotonic())))
                    failing = False
                except Exception:
                    if not failing:
                        log.exception("%s: unexpected error; going on", self.name)
                    failing = True
                    self._stopping.wait(self._interval)
        finally:
            for path in list(self._open):
                self._close(path, ungrab=True)

    def _rescan(self) -> None:
        present = set(self._lister()) if self._path is None else {self._path}
        self._skipped &= present
        self._failing &= present
        for path in sorted(present - self._open.keys() - self._skipped):
            self._try_open(path)

    def _try_open(self, path: str) -> None:
        try:
            device = self._opener(path)
        except OSError as exc:
            if path not in self._failing:
                self._failing.add(path)
                log.warning("%s: cannot open %s (%s); retrying every %gs", self.name, path, exc, self._interval)
            return
        try:
            if self._path is None and not looks_like_input(device):
                self._skipped.add(path)
                device.close()
                return
            device.grab()
        except OSError as exc:
            if path not in self._failing:
                self._failing.add(path)
                log.warning("%s: cannot use %s (%s); retrying every %gs", self.name, path, exc, self._interval)
            _quietly(device.close)
            return
        self._failing.discard(path)
        role = self._role or role_for_name(f"{device.name} {path}")
        self._open[path] = _Open(device, HidDecoder(self._keymap, role))
        log.info("%s: reading %s (%s) as a %s", self.name, path, device.name, role)

    def _read_ready(self, timeout: float) -> None:
        by_fd = {entry.device.fd: path for path, entry in self._open.items()}
        if not by_fd:
            self._stopping.wait(timeout)
            return
        ready, _, _ = select.select(list(by_fd), [], [], timeout)
        for fd in ready:
            path = by_fd[fd]
            entry = self._open[path]
            try:
                events = list(entry.device.read())
            except BlockingIOError:
                continue
            except OSError as exc:
                lost = "unplugged" if exc.errno == errno.ENODEV else f"read failed ({exc})"
                log.warning("%s: %s %s; looking for it every %gs", self.name, path, lost, self._interval)
                self._close(path, ungrab=False)
                continue
            for event in events:
                self._sink.deliver(entry.decoder.feed(event))

    def _close(self, path: str, *, ungrab: bool) -> None:
        device = self._open.pop(path).device
        if ungrab:
            _quietly(device.ungrab)
        _quietly(device.close)


def _quietly(call: Callable[[], object]) -> None:
    try:
        call()
    except OSError as exc:
        log.debug("ignored while closing: %s", exc)
