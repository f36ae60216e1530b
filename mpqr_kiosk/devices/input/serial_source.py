"""Barcodes from a serial scanner (USB CDC-ACM ``/dev/ttyACM0`` or RS-232), one code per line.

A line ends with CR, LF or CR LF; blank lines are skipped. A line must be UTF-8 text of at most
``hid.MAX_CODE`` printable characters, otherwise it is refused (``Refused``) and the next line starts
clean. Ports are opened with ``serial.serial_for_url``, so ``loop://`` and pty paths work in tests. When
the port cannot be opened or fails (``SerialException``, e.g. the scanner is unplugged) the source
closes it, waits and reopens it, doubling the wait from ``backoff`` up to ``max_backoff``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import serial

from mpqr_kiosk.core.events import Key, Scan
from mpqr_kiosk.devices.input.base import ThreadedSource
from mpqr_kiosk.devices.input.hid import MAX_CODE, Refused, Sink, code_problem

log = logging.getLogger(__name__)

READ_TIMEOUT = 0.2  # seconds a read waits, bounds how long stop() takes
_MAX_LINE_BYTES = 4 * MAX_CODE  # UTF-8 needs at most 4 bytes a character


class LineDecoder:
    """Bytes in, one ``Scan``/``Refused`` per complete line out."""

    def __init__(self) -> None:
        self._line = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[Scan | Refused]:
        out: list[Scan | Refused] = []
        for byte in data:
            if byte in b"\r\n":
                if self._line or self._overflow:
                    out.append(self._finish())
            elif len(self._line) >= _MAX_LINE_BYTES:
                self._overflow = True
            else:
                self._line.append(byte)
        return out

    def _finish(self) -> Scan | Refused:
        raw, overflow = bytes(self._line), self._overflow
        self._line.clear()
        self._overflow = False
        if overflow:
            return Refused(f"code longer than {MAX_CODE} characters")
        try:
            code = raw.decode("utf-8")
        except UnicodeDecodeError:
            return Refused("code is not UTF-8 text")
        problem = code_problem(code)
        return Refused(problem) if problem else Scan(code)


class SerialSource(ThreadedSource):
    """Scans from a serial port; see the module doc.

    Healthy while the port is open and reading; ``stop()`` stops reading and closes the port.
    """

    def __init__(
        self,
        port: str,
        baudrate: int,
        emit: Callable[[Key | Scan], None],
        *,
        on_refused: Callable[[Refused], None] | None = None,
        opener: Callable[..., Any] = serial.serial_for_url,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
    ) -> None:
        super().__init__()
        self.name = f"serial:{port}:{baudrate}"
        self._port = port
        self._baudrate = baudrate
        self._sink = Sink(self.name, emit, on_refused)
        self._opener = opener
        self._backoff = backoff
        self._max_backoff = max_backoff

    def _run(self) -> None:
        delay, failing = self._backoff, False
        while not self._stopping.is_set():
            try:
                port = self._opener(self._port, baudrate=self._baudrate, timeout=READ_TIMEOUT)
            except (serial.SerialException, OSError, ValueError) as exc:
                if not failing:
                    log.warning("%s: cannot open (%s); retrying with back-off", self.name, exc)
                failing = True
            else:
                log.info("%s: reading", self.name)
                delay, failing = self._backoff, False
                self._healthy = True
                try:
                    self._read(port)
                except (serial.SerialException, OSError) as exc:
                    log.warning("%s: read failed (%s); reopening", self.name, exc)
                except Exception:
                    log.exception("%s: unexpected error; reopening", self.name)
                finally:
                    self._healthy = False
                    port.close()
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, self._max_backoff)

    def _read(self, port: Any) -> None:
        lines = LineDecoder()
        while not self._stopping.is_set():
            data = port.read(port.in_waiting or 1)
            if data:
                self._sink.deliver(lines.feed(data))
