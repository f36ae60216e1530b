"""What flows out of the core: actions, the only way out. The shell carries each out, in order, on the
adapters (``ports.py``) and feeds what happened back as events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from mpqr_kiosk.core.model import Beep, LedPattern, Sale, Screen


@dataclass(frozen=True)
class Save:
    """Commit the sale to the journal durably. Always comes before any action that sends the sale anywhere."""

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
class Refund:
    """Refund a paid sale in full; answers ``Refunded`` or ``RefundFailed``."""

    sale: Sale
    request_id: str = ""


@dataclass(frozen=True)
class Probe:
    """Check that the API answers (no sale involved); answers ``Connectivity``."""


@dataclass(frozen=True)
class Print:
    """Print the sale's receipt; answers ``Printed`` or ``PrintFailed``."""

    sale: Sale
    copy: bool = False


@dataclass(frozen=True)
class PrintReport:
    """Print the closing ticket of ``day`` (None: today, shop time) from the journal; answers
    ``ReportPrinted``. Not a receipt: it moves no sale."""

    day: date | None = None
    request_id: str = ""


@dataclass(frozen=True)
class Show:
    """Draw this screen on the display."""

    screen: Screen


@dataclass(frozen=True)
class Light:
    """Set the LEDs to this pattern."""

    pattern: LedPattern


@dataclass(frozen=True)
class Sound:
    """Sound the buzzer."""

    beep: Beep


@dataclass(frozen=True)
class Log:
    """Something worth a journal line that only the core can see (the shell logs every action too)."""

    level: int  # a ``logging`` level
    message: str
    reference: str = ""


@dataclass(frozen=True)
class Reply:
    """The answer to a control-socket request (``request_id`` as the request carried it)."""

    request_id: str
    ok: bool
    reason: str = ""  # why not, in words for the person who asked
    reference: str = ""  # the sale the request started or acted on


ApiRequest = Push | Recover | Read | Cancel
"""The requests about a sale, carried out one at a time by the API worker."""

Action = (Save | Push | Recover | Read | Cancel | Refund | Probe | Print | PrintReport | Show | Light | Sound | Log
          | Reply)
