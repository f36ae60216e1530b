"""The LEDs and the buzzer, through gpiozero (any pin factory: lgpio on the Pi, ``mock`` in tests and demo).

Blinking and beeping run on gpiozero's background threads, so no call here blocks. Pin 0 means "not
fitted": that part is skipped.
"""

from __future__ import annotations

import logging

from gpiozero import LED, Buzzer
from gpiozero.pins import Factory

from mpqr_kiosk.core.model import Beep, LedPattern

log = logging.getLogger(__name__)

# pattern -> {colour: blink on/off seconds, or None for steady}; every other LED is off
PATTERNS: dict[LedPattern, dict[str, tuple[float, float] | None]] = {
    LedPattern.READY: {"green": None},
    LedPattern.WAITING: {"yellow": (0.5, 0.5)},
    LedPattern.PAID: {"green": (0.2, 0.2)},
    LedPattern.TROUBLE: {"red": (0.25, 0.75)},
    LedPattern.REVIEW: {"red": None, "yellow": None},  # a sale needs a person: never "try again"
    LedPattern.FATAL: {"red": None},
    LedPattern.OFF: {},
}
# beep -> (on seconds, off seconds, count)
BEEPS: dict[Beep, tuple[float, float, int]] = {
    Beep.KEY: (0.05, 0.0, 1),
    Beep.PAID: (0.6, 0.0, 1),
    Beep.ERROR: (0.1, 0.1, 2),
}


class Leds:
    """The green/yellow/red LEDs and the buzzer on these GPIO (BCM) pins; 0 = not fitted."""

    def __init__(
        self, green: int = 0, yellow: int = 0, red: int = 0, buzzer: int = 0, pin_factory: Factory | None = None
    ) -> None:
        self._leds = {
            colour: LED(pin, pin_factory=pin_factory)
            for colour, pin in (("green", green), ("yellow", yellow), ("red", red))
            if pin
        }
        self._buzzer = Buzzer(buzzer, pin_factory=pin_factory) if buzzer else None
        self._pattern: LedPattern | None = None

    def show(self, pattern: LedPattern) -> None:
        """Light ``pattern``; showing the pattern already lit changes nothing (a blink is not restarted)."""
        if pattern == self._pattern:
            return
        self._pattern = pattern
        lit = PATTERNS[pattern]
        for colour, led in self._leds.items():
            if colour not in lit:
                led.off()
            elif lit[colour] is None:
                led.on()
            else:
                led.blink(*lit[colour], background=True)
        log.debug("leds: %s", pattern.value)

    def beep(self, kind: Beep) -> None:
        """Sound ``kind`` in the background."""
        if self._buzzer is not None:
            on_time, off_time, n = BEEPS[kind]
            self._buzzer.beep(on_time, off_time, n=n, background=True)

    def close(self) -> None:
        """Switch everything off and release the pins."""
        for device in (*self._leds.values(), self._buzzer):
            if device is not None:
                device.off()
                device.close()
        self._leds, self._buzzer, self._pattern = {}, None, None
