"""A 4x4 or 4x3 membrane keypad wired to GPIO pins, scanned as a matrix.

Rows are outputs idling high; columns are inputs with pull-ups. A scan drives one row low at a time
and reads which columns follow it low. Scans run every ``interval`` (10 ms). A debounce rule turns the
raw readings into presses: the set of closed keys must read the same on ``settle`` (3) consecutive
scans before it counts, and each key that joins that steady set is one ``Key`` (nothing on release),
so a bouncing contact gives one press. Key faces: ``0-9`` digits, ``#`` → ENTER, ``*`` → MULTIPLY,
``D`` → DELETE, ``C`` → CLEAR; ``A`` and ``B`` do nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from gpiozero import DigitalInputDevice, DigitalOutputDevice
from gpiozero.pins import Factory

from mpqr_kiosk.core.events import CLEAR, DELETE, DIGITS, ENTER, MULTIPLY, Key
from mpqr_kiosk.devices.input.base import ThreadedSource
from mpqr_kiosk.devices.input.hid import Sink

log = logging.getLogger(__name__)

FACES = {4: ("123A", "456B", "789C", "*0#D"), 3: ("123", "456", "789", "*0#")}  # by number of columns
_KEY_OF_FACE = {"#": ENTER, "*": MULTIPLY, "D": DELETE, "C": CLEAR, **{d: d for d in DIGITS}}


class KeypadSource(ThreadedSource):
    """Operator keys from a GPIO matrix keypad (BCM pin numbers; ``pin_factory`` as in gpiozero)."""

    name = "keypad"

    def __init__(
        self,
        rows: Sequence[int],
        cols: Sequence[int],
        emit: Callable[[Key], None],
        *,
        pin_factory: Factory | None = None,
        interval: float = 0.01,
        settle: int = 3,
    ) -> None:
        if len(rows) != 4 or len(cols) not in FACES:
            raise ValueError(f"keypad needs 4 rows and 3 or 4 columns, got {len(rows)} rows, {len(cols)} cols")
        if len(set(rows) | set(cols)) != len(rows) + len(cols):
            raise ValueError(f"keypad pins must all differ: rows {list(rows)}, cols {list(cols)}")
        super().__init__()
        self._row_pins, self._col_pins = tuple(rows), tuple(cols)
        self._faces = FACES[len(cols)]
        self._sink = Sink(self.name, emit)
        self._factory = pin_factory
        self._interval = interval
        self._settle = settle
        self._rows: list[DigitalOutputDevice] = []
        self._cols: list[DigitalInputDevice] = []
        self._candidate: frozenset[str] = frozenset()
        self._count = 0
        self._steady: frozenset[str] = frozenset()

    def open(self) -> None:
        """Claim the pins (raises gpiozero's errors); ``start()`` does this for you."""
        if self._rows:
            return
        try:
            self._rows = [DigitalOutputDevice(p, initial_value=True, pin_factory=self._factory) for p in self._row_pins]
            self._cols = [DigitalInputDevice(p, pull_up=True, pin_factory=self._factory) for p in self._col_pins]
        except Exception:
            self._close_pins()
            raise
        self._healthy = True

    def poll(self) -> list[Key]:
        """One scan of the matrix: the keys that have just become a steady press."""
        closed = frozenset(self._read())
        if closed == self._candidate:
            self._count += 1
        else:
            self._candidate, self._count = closed, 1
        if self._count != self._settle:
            return []
        pressed, self._steady = closed - self._steady, closed
        faces = [face for line in self._faces for face in line if face in pressed]
        return [Key(_KEY_OF_FACE[face]) for face in faces if face in _KEY_OF_FACE]

    def _read(self) -> list[str]:
        closed = []
        for faces, row in zip(self._faces, self._rows, strict=True):
            row.off()
            try:
                closed += [face for face, col in zip(faces, self._cols, strict=True) if col.value]
            finally:
                row.on()
        return closed

    def start(self) -> None:
        """Claim the pins and scan in a thread; a pin error is logged and leaves the source unhealthy."""
        if self._thread is not None:
            return
        try:
            self.open()
        except Exception as exc:
            log.error("keypad: cannot use pins rows %s cols %s: %s", self._row_pins, self._col_pins, exc)
            return
        super().start()

    def stop(self) -> None:
        """Stop scanning and release the pins."""
        super().stop()
        self._close_pins()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self._sink.deliver(self.poll())
            except Exception:
                if self._healthy:
                    log.exception("keypad: scan failed; retrying")
                self._healthy = False
                self._stopping.wait(1.0)
            else:
                if not self._healthy:
                    log.info("keypad: scanning again")
                self._healthy = True

    def _close_pins(self) -> None:
        for device in self._rows + self._cols:
            device.close()
        self._rows, self._cols = [], []
        self._healthy = False
