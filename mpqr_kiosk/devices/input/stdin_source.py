"""Operator keys and barcodes typed as lines on standard input (bench tests, the demo, scripts).

Line format (UTF-8, one line at a time, surrounding spaces ignored):

* A line made only of key characters is a sequence of keys, one per character:
  ``0``-``9`` digits, ``*`` MULTIPLY, ``#`` ENTER, ``D`` DELETE, ``C`` CLEAR.
  ``1250#`` keys 12,50 and charges it; ``3*`` then a scan sells three of an item; ``C`` clears.
* ``scan:CODE`` is a barcode, whatever it looks like (``scan:7790895000997``).
* Any other line is a barcode too (``ABC-123``). A barcode must be at most 64 printable characters,
  otherwise it is refused (``Refused``).
* Blank lines are ignored. End of input ends the source (it turns unhealthy).
"""

from __future__ import annotations

import logging
import os
import select
import sys
from collections.abc import Callable
from typing import TextIO

from mpqr_kiosk.core.events import CLEAR, DELETE, DIGITS, ENTER, MULTIPLY, Key, Scan
from mpqr_kiosk.devices.input.base import ThreadedSource
from mpqr_kiosk.devices.input.hid import Refused, Sink, code_problem

log = logging.getLogger(__name__)

POLL_TIMEOUT = 0.2  # seconds a read waits, bounds how long stop() takes
SCAN_PREFIX = "scan:"
_MAX_LINE_BYTES = 4096
_KEYS = {"*": MULTIPLY, "#": ENTER, "D": DELETE, "C": CLEAR, **{d: d for d in DIGITS}}


def parse_line(line: str) -> list[Key | Scan | Refused]:
    """What one input line means (see the module doc)."""
    text = line.strip(" \t\r\n")  # only what a terminal adds: other control bytes make the line refused
    if not text:
        return []
    if text.startswith(SCAN_PREFIX):
        text = text[len(SCAN_PREFIX) :].strip()
    elif all(char in _KEYS for char in text):
        return [Key(_KEYS[char]) for char in text]
    problem = code_problem(text)
    return [Refused(problem)] if problem else [Scan(text)]


class StdinSource(ThreadedSource):
    """Lines from a text stream (default ``sys.stdin``) in a thread.

    A stream backed by a file descriptor is read with ``select`` and ``os.read`` so ``stop()`` never
    waits on a blocked read; other streams (``io.StringIO``) are read line by line.
    """

    name = "stdin"

    def __init__(
        self,
        emit: Callable[[Key | Scan], None],
        *,
        stream: TextIO | None = None,
        on_refused: Callable[[Refused], None] | None = None,
    ) -> None:
        super().__init__()
        self._stream = stream
        self._sink = Sink(self.name, emit, on_refused)

    def start(self) -> None:
        if self._thread is None:
            self._healthy = True  # healthy: started and not at end of input
            super().start()

    def stop(self) -> None:
        """Stop reading (the stream itself is left open: it is not ours)."""
        super().stop()
        self._healthy = False

    def _run(self) -> None:
        stream = self._stream if self._stream is not None else sys.stdin
        if stream is None:  # started without a standard input
            log.warning("stdin: there is no standard input")
            self._healthy = False
            return
        try:
            fd = stream.fileno()
        except (OSError, ValueError):  # io.UnsupportedOperation: no descriptor (io.StringIO)
            fd = None
        try:
            if fd is None:
                self._read_stream(stream)
            else:
                self._read_fd(fd)
        except Exception:
            log.exception("stdin: read failed; no more input from it")
        else:
            if not self._stopping.is_set():
                log.info("stdin: end of input")
        self._healthy = False

    def _line(self, line: str) -> None:
        self._sink.deliver(parse_line(line))

    def _raw_line(self, raw: bytes) -> None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._sink.deliver([Refused("line is not UTF-8 text")])
            return
        self._line(line)

    def _read_stream(self, stream: TextIO) -> None:
        for line in stream:
            if self._stopping.is_set():
                return
            self._line(line)

    def _read_fd(self, fd: int) -> None:
        pending, skipping = b"", False  # skipping: the rest of an over-long line
        while not self._stopping.is_set():
            ready, _, _ = select.select([fd], [], [], POLL_TIMEOUT)
            if not ready:
                continue
            data = os.read(fd, 4096)
            if not data:
                break
            *lines, pending = (pending + data).split(b"\n")
            for raw in lines:
                if skipping:
                    skipping = False
                else:
                    self._raw_line(raw)
            if len(pending) > _MAX_LINE_BYTES:
                if not skipping:
                    self._sink.deliver([Refused("line too long")])
                pending, skipping = b"", True
        if pending and not skipping:
            self._raw_line(pending)
