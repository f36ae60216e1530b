"""devices/leds.py through gpiozero's MockFactory: steady and blinking patterns, beeps, pins not fitted."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from mpqr_kiosk.core.model import Beep, LedPattern
from mpqr_kiosk.devices.leds import Leds

GREEN, YELLOW, RED, BUZZER = 17, 27, 22, 18
WAIT = 5.0  # generous: background threads are slow on a loaded CI box


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    pins = MockFactory()
    yield pins
    pins.reset()


@pytest.fixture
def leds(factory: MockFactory) -> Iterator[Leds]:
    device = Leds(green=GREEN, yellow=YELLOW, red=RED, buzzer=BUZZER, pin_factory=factory)
    yield device
    device.close()


def eventually(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def states(factory: MockFactory, pin: int) -> list[bool]:
    return [bool(s.state) for s in factory.pin(pin).states]


def lit(factory: MockFactory) -> dict[int, bool]:
    return {pin: bool(factory.pin(pin).state) for pin in (GREEN, YELLOW, RED)}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (LedPattern.READY, {GREEN: True, YELLOW: False, RED: False}),
        (LedPattern.FATAL, {GREEN: False, YELLOW: False, RED: True}),
        (LedPattern.OFF, {GREEN: False, YELLOW: False, RED: False}),
    ],
)
def test_steady_patterns(
    leds: Leds, factory: MockFactory, pattern: LedPattern, expected: dict[int, bool]
) -> None:
    leds.show(LedPattern.FATAL if pattern is not LedPattern.FATAL else LedPattern.READY)
    leds.show(pattern)
    assert lit(factory) == expected


@pytest.mark.parametrize(
    ("pattern", "blinking"),
    [(LedPattern.WAITING, YELLOW), (LedPattern.PAID, GREEN), (LedPattern.TROUBLE, RED)],
)
def test_blinking_patterns(leds: Leds, factory: MockFactory, pattern: LedPattern, blinking: int) -> None:
    leds.show(LedPattern.READY)
    for pin in (GREEN, YELLOW, RED):
        factory.pin(pin).clear_states()
    leds.show(pattern)
    assert eventually(lambda: states(factory, blinking)[-4:] == [True, False, True, False])
    for other in {GREEN, YELLOW, RED} - {blinking}:
        assert not factory.pin(other).state and True not in states(factory, other)[1:]  # [0]: before show


def test_a_new_pattern_stops_the_blinking(leds: Leds, factory: MockFactory) -> None:
    leds.show(LedPattern.WAITING)
    assert eventually(lambda: len(states(factory, YELLOW)) >= 3)
    leds.show(LedPattern.READY)
    settled = len(states(factory, YELLOW))
    time.sleep(1.2)  # longer than a blink period: nothing may change any more
    assert len(states(factory, YELLOW)) == settled and not factory.pin(YELLOW).state
    assert factory.pin(GREEN).state


@pytest.mark.parametrize(("beep", "pulses"), [(Beep.KEY, 1), (Beep.PAID, 1), (Beep.ERROR, 2)])
def test_beeps_drive_the_buzzer(leds: Leds, factory: MockFactory, beep: Beep, pulses: int) -> None:
    leds.beep(beep)  # returns at once: the beep runs in the background
    def done() -> bool:
        history = states(factory, BUZZER)
        return history[-2:] == [True, False] and history.count(True) == pulses

    assert eventually(done)
    time.sleep(0.3)
    assert states(factory, BUZZER).count(True) == pulses and not factory.pin(BUZZER).state


def test_pin_zero_means_not_fitted(factory: MockFactory) -> None:
    leds = Leds(green=0, yellow=YELLOW, red=RED, buzzer=0, pin_factory=factory)
    leds.show(LedPattern.READY)
    leds.show(LedPattern.FATAL)
    leds.beep(Beep.PAID)
    assert sorted(info.name for info in factory.pins) == ["GPIO22", "GPIO27"]
    assert factory.pin(RED).state
    leds.close()
    assert not factory.pin(RED).state


def test_close_switches_everything_off(leds: Leds, factory: MockFactory) -> None:
    leds.show(LedPattern.PAID)
    leds.close()
    assert lit(factory) == {GREEN: False, YELLOW: False, RED: False}
