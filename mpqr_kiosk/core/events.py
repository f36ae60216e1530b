"""What flows into the core (events) and out of it (actions). Data flows one way:
input → core → actions → adapters → result events → core."""

from __future__ import annotations

from dataclasses import dataclass

from mpqr_kiosk.core.model import Beep, LedPattern, Observation, Sale, Screen

# ---------------------------------------------------------------- events: the world tells the core

DIGITS = frozenset("0123456789")
MULTIPLY = "*"
ENTER = "ENTER"  # keypad "#", keyboard Enter
DELETE = "DELETE"  # keypad "D", keyboard Backspace
CLEAR = "CLEAR"  # keypad "C", keyboard Esc: clears the entry, or cancels a waiting sale
KEYS = DIGITS | {MULTIPLY, ENTER, DELETE, CLEAR}


@dataclass(frozen=True)
class Key:
    """One operator key press, already mapped from the device to one of ``KEYS``."""

    key: str


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


@dataclass(frozen=True)
class ChargeRequested:
    """A sale of a total asked for remotely (``mpqr-kiosk sale --amount``)."""

    amount: int


@dataclass(frozen=True)
class CancelRequested:
    """Cancel the waiting sale (``mpqr-kiosk cancel``); the operator's key sends ``Key(CLEAR)``."""


@dataclass(frozen=True)
class Hint:
    """A Mercado Pago notification arrived: read the live sale now. Never decides anything by itself."""


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
class Printed:
    reference: str


@dataclass(frozen=True)
class PrintFailed:
    reference: str
    reason: str
    started: bool = True  # False: not a byte reached the printer, so the next attempt is still the original


@dataclass(frozen=True)
class Connectivity:
    """The answer to ``Probe``: can the Mercado Pago API be reached with our token right now?"""

    online: bool
    detail: str = ""


Event = (
    Key | Scan | BadScan | Tick | ChargeRequested | CancelRequested | Hint | Pushed | PushRefused | ApiUnsure | Observed
    | CancelSent | Printed | PrintFailed | Connectivity
)

# ---------------------------------------------------------------- actions: the core asks the shell


@dataclass(frozen=True)
class Journal:
    """Commit the sale durably. Always comes before any action that sends the sale anywhere."""

    sale: Sale


@dataclass(frozen=True)
class Push:
    """Create the order on the POS (first attempt, with the journaled idempotency key)."""

    sale: Sale
    ttl: float  # seconds the order stays payable


@dataclass(frozen=True)
class Recover:
    """Read back an order whose creation is indeterminate; answers ``Observed`` (``ABSENT``: it never landed).
    ``ttl`` is the push's, so a backend that recovers by replaying the create sends the identical body."""

    sale: Sale
    ttl: float


@dataclass(frozen=True)
class Read:
    """Read the order's state fresh from the API; answers ``Observed``."""

    sale: Sale


@dataclass(frozen=True)
class Cancel:
    """Delete/cancel the order on the POS; answers ``CancelSent``."""

    sale: Sale


@dataclass(frozen=True)
class Probe:
    """Check that the API answers (no sale involved); answers ``Connectivity``."""


@dataclass(frozen=True)
class Print:
    sale: Sale
    copy: bool = False


@dataclass(frozen=True)
class Show:
    screen: Screen


@dataclass(frozen=True)
class Leds:
    pattern: LedPattern


@dataclass(frozen=True)
class Sound:
    beep: Beep


@dataclass(frozen=True)
class Log:
    """Something worth a journal line that only the core can see (the shell logs every action too)."""

    level: int  # a ``logging`` level
    message: str
    reference: str = ""


Action = Journal | Push | Recover | Read | Cancel | Probe | Print | Show | Leds | Sound | Log
