"""The ports: what the shell needs from each adapter, as Protocols, and the values that cross them.

Each port has real adapters and fakes chosen in ``assemble.py`` (the one place that reads the config);
adapters take plain arguments. Like gpiozero's pin factories and python-escpos's printer classes, the
code that uses a port never knows which adapter is behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from mpqr_kiosk.core.model import Beep, LedPattern, Observation, Sale, Screen
from mpqr_kiosk.core.timing import Clock

if TYPE_CHECKING:
    from mpqr_kiosk.receipt import Receipt

__all__ = ["Backend", "Clock", "Display", "Indicators", "InputSource", "Printer", "PrinterError",
           "PrinterStatus", "PushResult"]


class Display(Protocol):
    """Shows screens. ``healthy`` is False while the panel cannot be drawn on; ``error`` says why."""

    healthy: bool
    error: str

    def show(self, screen: Screen) -> None: ...

    def close(self) -> None: ...


Paper = Literal["ok", "near_end", "out", "unknown"]


@dataclass(frozen=True)
class PrinterStatus:
    online: bool | None  # None: the printer cannot say (write-only transport, or no reply)
    paper: Paper

    @property
    def problem(self) -> str:
        """Why the printer cannot print now ("" when it can, or cannot say)."""
        return "printer out of paper" if self.paper == "out" else "printer offline" if self.online is False else ""


class PrinterError(Exception):
    """A receipt could not be printed; the message says which printer and why. ``started`` tells whether
    any byte of it may have reached the printer (then only a COPY may follow, never a second original)."""

    def __init__(self, message: str, started: bool = True) -> None:
        super().__init__(message)
        self.started = started


class Printer(Protocol):
    """Prints receipts; ``print`` raises ``PrinterError``."""

    def print(self, receipt: Receipt) -> None: ...

    def status(self) -> PrinterStatus: ...

    def close(self) -> None: ...


class Indicators(Protocol):
    """The LEDs and the buzzer."""

    def show(self, pattern: LedPattern) -> None: ...

    def beep(self, kind: Beep) -> None: ...

    def close(self) -> None: ...


class InputSource(Protocol):
    """A running input device. ``start()`` runs it in its own daemon thread; nothing raises from it."""

    name: str

    @property
    def healthy(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class PushResult:
    """A create that answered: the API's order id ("" where the API has none) and the API server's clock."""

    order_id: str
    server_time: float


class Backend(Protocol):
    """Mercado Pago, whichever API is configured. Every method raises ``mercadopago.errors.ApiError``
    (``.indeterminate`` says whether the outcome is unknown)."""

    def push(self, sale: Sale, ttl: float) -> PushResult:
        """Put the sale's order on the POS."""

    def recover(self, sale: Sale, ttl: float) -> Observation:
        """After an indeterminate push: is the order there? ``ABSENT`` means it never landed."""

    def read(self, sale: Sale) -> Observation:
        """A fresh read of the order's payments."""

    def on_pos(self, sale: Sale) -> bool:
        """Does the POS carry the sale's order right now?"""

    def cancel(self, sale: Sale) -> None:
        """Delete/cancel the order on the POS; an order already gone is not an error."""

    def refund(self, sale: Sale) -> None:
        """Refund a paid sale in full."""

    def probe(self) -> float:
        """``GET /users/me``: proves the token works; returns the API server's clock."""
