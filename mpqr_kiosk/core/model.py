"""The values the core works with: items, sales, what the API was seen to say, and what the screen shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class Item:
    """One receipt line: a catalog product times a quantity, or an amount keyed by the operator."""

    title: str
    unit_price: int  # minor units
    quantity: int = 1
    sku: str = ""
    code: str = ""  # the scanned barcode, empty for a keyed amount

    @property
    def amount(self) -> int:
        return self.unit_price * self.quantity


class SaleState(StrEnum):
    """Where one sale is in its life. The journal stores these names."""

    PUSHING = "pushing"  # journaled; the order is being put on the POS (or its fate is being read back)
    WAITING = "waiting"  # the order is on the POS; the customer may scan and pay
    CANCELLING = "cancelling"  # cancel requested (operator or expiry): delete, then a final read decides
    PAID = "paid"  # closed/processed and approved amount == total: final
    CANCELLED = "cancelled"  # final, no money moved
    EXPIRED = "expired"  # final, no money moved
    FAILED = "failed"  # the API refused the order outright (a definite 4xx): final, no money moved
    REVIEW = "review"  # closed, but the approved amount differs from the total: never printed as paid
    REFUNDED = "refunded"  # paid, then refunded in full (``mpqr-kiosk refund``)

    @property
    def final(self) -> bool:
        return self not in (SaleState.PUSHING, SaleState.WAITING, SaleState.CANCELLING)


class ReceiptState(StrEnum):
    """Rule 5: an original prints at most once; a print cut short comes back as a COPY."""

    NONE = "none"
    PRINTING = "printing"  # journaled before the first byte goes to the printer
    PRINTED = "printed"


@dataclass(frozen=True)
class Sale:
    """One attempt to charge a total on the POS. ``reference`` is its ``external_reference``."""

    reference: str
    idempotency_key: str
    site: str
    items: tuple[Item, ...]
    total: int
    created_at: float  # wall-clock seconds (for the receipt); never used for timing
    state: SaleState = SaleState.PUSHING
    cancel_reason: str = ""  # "operator", "expired", "remote"
    order_id: str = ""  # the API's id of the order, where the backend has one
    expires_at: float = 0.0  # when the order expires, on the API server's clock (0 = unknown)
    payment_id: str = ""  # the approved payment's id
    paid_amount: int = 0
    paid_at: float = 0.0  # when the payment was seen, on the API server's clock (the receipt's date)
    rejected_payments: int = 0
    receipt: ReceiptState = ReceiptState.NONE
    copies: int = 0  # receipts printed marked COPY


class OrderPhase(StrEnum):
    """The order's life as the API reports it, whichever backend is in use."""

    ABSENT = "absent"  # the API has no order with this reference
    OPEN = "open"  # waiting for payment (possibly scanned, possibly with rejected attempts)
    CLOSED = "closed"  # merchant order closed / order processed: payments cover it
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


@dataclass(frozen=True)
class Payment:
    id: str
    status: str  # the API's word: approved, rejected, pending, in_process, refunded, ...
    amount: int  # minor units


@dataclass(frozen=True)
class Observation:
    """A fresh read of one sale's order. The core, not the backend, decides whether it is paid."""

    phase: OrderPhase
    scanned: bool = False  # the customer has the order open in the app
    payments: tuple[Payment, ...] = ()
    order_id: str = ""
    server_time: float = 0.0  # the API server's clock when it answered (Date header; ours until it has said)

    @property
    def approved(self) -> int:
        return sum(p.amount for p in self.payments if p.status == "approved")

    @property
    def rejected(self) -> int:
        return sum(1 for p in self.payments if p.status == "rejected")


class ScreenKind(StrEnum):
    READY = "ready"
    ENTERING = "entering"
    PAY = "pay"
    CUSTOMER_PAYING = "customer_paying"
    PAID = "paid"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    OFFLINE = "offline"
    PRINTER_PROBLEM = "printer_problem"


@dataclass(frozen=True)
class Screen:
    """What the display should show. ``screens.py`` turns it into pixels for the configured panel."""

    kind: ScreenKind
    items: tuple[Item, ...] = ()
    total: int = 0
    entry: int = 0  # the amount being keyed, minor units
    quantity: int = 0  # a pending "N *" multiplier, 0 if none
    seconds_left: int | None = None
    notice: str = ""  # a short extra line, e.g. an unknown barcode
    reference: str = ""


class LedPattern(StrEnum):
    READY = "ready"  # green on
    WAITING = "waiting"  # yellow blinking
    PAID = "paid"  # green blinking
    TROUBLE = "trouble"  # red blinking: offline or printer problem
    FATAL = "fatal"  # red on: configuration error
    OFF = "off"


class Beep(StrEnum):
    KEY = "key"  # short
    PAID = "paid"  # long
    ERROR = "error"  # two short


@dataclass(frozen=True)
class Shop:
    """The shop's identity as printed on receipts (config ``[shop]``)."""

    name: str
    address: str = ""
    tax_id: str = ""
    receipt_header: tuple[str, ...] = ()
    receipt_footer: tuple[str, ...] = field(default=("Obrigado!",))
