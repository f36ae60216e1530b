"""What flows into the core: events, the only way in. Frozen values; the core answers each with actions
(``actions.py``). Data flows one way: input → core → actions → adapters → result events → core."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from mpqr_kiosk.core.model import Item, Observation, Sale
from mpqr_kiosk.core.timing import Timing

DIGITS = frozenset("0123456789")
MULTIPLY = "*"
ENTER = "ENTER"  # keypad "#", keyboard Enter
DELETE = "DELETE"  # keypad "D", keyboard Backspace
CLEAR = "CLEAR"  # keypad "C", keyboard Esc: clears the entry, or cancels a waiting sale
KEYS = DIGITS | {MULTIPLY, ENTER, DELETE, CLEAR}

# ---------------------------------------------------------------- the operator and the clock


@dataclass(frozen=True)
class Key:
    """One operator key press, already mapped from the device to one of ``KEYS``."""

    key: str

    def __post_init__(self) -> None:
        if self.key not in KEYS:
            raise ValueError(f"not a kiosk key: {self.key!r}")


@dataclass(frozen=True)
class Scan:
    """A barcode read by a scanner (already decoded to text, at most 64 printable characters)."""

    code: str


@dataclass(frozen=True)
class BadScan:
    """A scanner read something unusable (over 64 characters, non-printable): beep, change nothing."""

    reason: str


@dataclass(frozen=True)
class Tick:
    """Time passed. The core reads the time from its injected clock, not from this event."""


# ---------------------------------------------------------------- requests from the control socket
# Each carries the id the core's ``Reply`` will answer; "" when nobody waits for an answer.


@dataclass(frozen=True)
class ChargeRequested:
    """A sale of a total asked for remotely (``mpqr-kiosk sale --amount``)."""

    amount: int
    request_id: str = ""


@dataclass(frozen=True)
class CancelRequested:
    """Cancel the waiting sale (``mpqr-kiosk cancel``); the operator's key sends ``Key(CLEAR)``."""

    request_id: str = ""


@dataclass(frozen=True)
class ReprintRequested:
    """Print a COPY of a paid sale's receipt (``mpqr-kiosk reprint``); ``sale`` as the journal has it."""

    sale: Sale
    request_id: str = ""


@dataclass(frozen=True)
class RefundRequested:
    """Refund a paid sale in full (``mpqr-kiosk refund``); ``sale`` as the journal has it."""

    sale: Sale
    request_id: str = ""


@dataclass(frozen=True)
class ReportRequested:
    """Print a day's closing ticket (``mpqr-kiosk report --print``); ``day`` None: today, shop time."""

    day: date | None = None
    request_id: str = ""


@dataclass(frozen=True)
class Reconfigure:
    """SIGHUP: new durations and a new catalog; a live sale carries on."""

    timing: Timing
    catalog: Mapping[str, Item]


@dataclass(frozen=True)
class Hint:
    """A Mercado Pago notification arrived: read the live sale now. Never decides anything by itself."""


# ---------------------------------------------------------------- answers from the adapters


@dataclass(frozen=True)
class Pushed:
    """The order is on the POS (the create answered, or a read-back found it)."""

    reference: str
    order_id: str = ""
    server_time: float = 0.0  # the API server's clock (Date header; ours until it has said), 0 if not given


@dataclass(frozen=True)
class PushRefused:
    """The API refused the order outright (a definite 4xx): no order exists, no money can move."""

    reference: str
    reason: str


@dataclass(frozen=True)
class ApiUnsure:
    """A request's outcome is unknown (timeout, 5xx, 409, 429, reset, bad JSON): read back, never re-create."""

    reference: str
    reason: str
    retry_after: float = 0.0


@dataclass(frozen=True)
class Observed:
    """A fresh read of the sale's order."""

    reference: str
    observation: Observation


@dataclass(frozen=True)
class CancelSent:
    """The cancel/delete request was answered (the order may still have been paid: a read decides)."""

    reference: str


@dataclass(frozen=True)
class Refunded:
    """The API accepted the refund of a sale (it may still be processing: a read confirms it)."""

    reference: str
    request_id: str = ""


@dataclass(frozen=True)
class RefundFailed:
    """The refund request failed. ``definite``: the API refused it (nothing changed); otherwise its outcome is
    unknown and a read decides."""

    reference: str
    reason: str
    request_id: str = ""
    definite: bool = True
    retry_after: float = 0.0


@dataclass(frozen=True)
class Printed:
    reference: str


@dataclass(frozen=True)
class PrintFailed:
    reference: str
    reason: str
    started: bool = True  # False: not a byte reached the printer, so the next attempt is still the original


@dataclass(frozen=True)
class ReportPrinted:
    """The answer to ``PrintReport``: the closing ticket came out, or why not."""

    ok: bool
    reason: str = ""
    request_id: str = ""


@dataclass(frozen=True)
class Connectivity:
    """The answer to ``Probe``: can the Mercado Pago API be reached with our token right now?"""

    online: bool
    detail: str = ""
    server_time: float = 0.0  # the API server's clock when it answered (0: unknown)
    retry_after: float = 0.0  # a 429 asked us to wait this long


SaleAnswer = Pushed | PushRefused | ApiUnsure | Observed | CancelSent
"""The answers to the requests about the live sale (``Push``, ``Recover``, ``Read``, ``Cancel``)."""

Event = (
    Key | Scan | BadScan | Tick | ChargeRequested | CancelRequested | ReprintRequested | RefundRequested
    | ReportRequested | Reconfigure | Hint | SaleAnswer | Refunded | RefundFailed | Printed | PrintFailed
    | ReportPrinted | Connectivity
)
