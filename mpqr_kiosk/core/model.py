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


class CancelReason(StrEnum):
    """Why a sale was cancelled (the journal stores these names)."""

    NONE = ""
    OPERATOR = "operator"  # the operator's cancel key
    REMOTE = "remote"  # ``mpqr-kiosk cancel`` on the control socket
    EXPIRED = "expired"  # the order's time ran out


class SaleState(StrEnum):
    """Where one sale is in its life. The journal stores these names."""

    PUSHING = "pushing"  # journaled; the order is being put on the POS (or its fate is being read back)
    WAITING = "waiting"  # the order is on the POS; the customer may scan and pay
    CANCELLING = "cancelling"  # cancel requested (operator or expiry): delete, then a final read decides
    PAID = "paid"  # closed/processed and approved amount == total: final
    CANCELLED = "cancelled"  # final, no money moved
    EXPIRED = "expired"  # final, no money moved
    FAILED = "failed"  # the API refused the order outright (a definite 4xx): final, no money moved
    REVIEW = "review"  # money moved that is not exactly the total: a person must look; never printed as paid
    REFUNDING = "refunding"  # a refund was asked for; REFUNDED once a read says so
    REFUNDED = "refunded"  # paid (or in review), then refunded in full (``mpqr-kiosk refund``)

    @property
    def final(self) -> bool:
        """Not live on the POS any more (a refund still being confirmed is followed up by itself)."""
        return self not in (SaleState.PUSHING, SaleState.WAITING, SaleState.CANCELLING)


class ReceiptState(StrEnum):
    """Rule 5: an original prints at most once; a print cut short comes back as a COPY."""

    NONE = "none"
    PRINTING = "printing"  # journaled before the first byte goes to the printer
    PRINTED = "printed"


class PaymentStatus(StrEnum):
    """A payment's status, in the Payments API's words (the Orders API's are mapped onto these)."""

    APPROVED = "approved"
    AUTHORIZED = "authorized"
    PENDING = "pending"
    IN_PROCESS = "in_process"
    IN_MEDIATION = "in_mediation"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    CHARGED_BACK = "charged_back"


IN_REVIEW = frozenset({PaymentStatus.PENDING, PaymentStatus.IN_PROCESS, PaymentStatus.AUTHORIZED,
                       PaymentStatus.IN_MEDIATION})


@dataclass(frozen=True)
class Payment:
    id: str
    status: PaymentStatus
    amount: int  # minor units

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", PaymentStatus(self.status))

    @property
    def in_review(self) -> bool:
        """Neither approved nor turned down yet: money that may still arrive."""
        return self.status in IN_REVIEW


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
    cancel_reason: CancelReason = CancelReason.NONE
    order_id: str = ""  # the API's id of the order, where the backend has one
    expires_at: float = 0.0  # when the order expires, on the API server's clock (0 = unknown)
    payment_id: str = ""  # the approved payment's id
    paid_amount: int = 0
    paid_at: float = 0.0  # when the payment was seen, on the API server's clock (the receipt's date)
    rejected_payments: int = 0
    receipt: ReceiptState = ReceiptState.NONE
    copies: int = 0  # receipts printed marked COPY
    ttl: float = 0.0  # seconds the order stays payable, fixed when the sale starts (a replay sends the same)
    watch_until: float = 0.0  # an ended sale is read for late money until then, on the API server's clock
    payments: tuple[Payment, ...] = ()  # every payment the API showed for it, last seen


class OrderPhase(StrEnum):
    """The order's life as the API reports it, whichever backend is in use."""

    ABSENT = "absent"  # the API has no order with this reference
    OPEN = "open"  # waiting for payment (possibly with attempts rejected or in review)
    CLOSED = "closed"  # merchant order closed / order processed: payments cover it
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


@dataclass(frozen=True)
class Observation:
    """A fresh read of one sale's order. The core, not the backend, decides whether it is paid."""

    phase: OrderPhase
    payments: tuple[Payment, ...] = ()  # every payment the API shows for the sale (all its merchant orders)
    order_id: str = ""
    server_time: float = 0.0  # the API server's clock when it answered (Date header; ours until it has said)

    @property
    def approved(self) -> int:
        return sum(p.amount for p in self.payments if p.status is PaymentStatus.APPROVED)

    @property
    def rejected(self) -> int:
        return sum(1 for p in self.payments if p.status is PaymentStatus.REJECTED)

    @property
    def attempted(self) -> bool:
        """A payment attempt exists: the customer is paying (a merchant order alone says nothing, §12.1)."""
        return bool(self.payments)

    @property
    def in_review(self) -> bool:
        return any(p.in_review for p in self.payments)

    @property
    def refunded(self) -> int:
        return sum(p.amount for p in self.payments if p.status is PaymentStatus.REFUNDED)

    def last_approved(self) -> Payment | None:
        """The most recent approved payment (its id goes on the receipt and is what a refund names)."""
        return next((p for p in reversed(self.payments) if p.status is PaymentStatus.APPROVED), None)


class ScreenKind(StrEnum):
    READY = "ready"
    ENTERING = "entering"
    PAY = "pay"
    CUSTOMER_PAYING = "customer_paying"
    PAID = "paid"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REVIEW = "review"  # money taken that is not exactly the total: never "try again"
    OFFLINE = "offline"
    PRINTER_PROBLEM = "printer_problem"


class NoticeKind(StrEnum):
    """A short message the core puts under a screen for a few seconds."""

    UNKNOWN_CODE = "unknown_code"  # a scanned code that is not in the catalog (``detail`` is the code)
    BUSY = "busy"  # a new sale while one is live
    OFFLINE = "offline"  # a new sale while the API does not answer
    REFUSED = "refused"  # the API refused the order
    TOO_MUCH = "too_much"  # more than the site's upper bound for one sale (``detail``: the bound)
    REVIEW = "review"  # a sale that ended went to review (``detail``: its reference)


@dataclass(frozen=True)
class Notice:
    kind: NoticeKind
    detail: str = ""


@dataclass(frozen=True)
class Screen:
    """What the display should show. ``screens.py`` turns it into pixels for the configured panel."""

    kind: ScreenKind
    items: tuple[Item, ...] = ()
    total: int = 0
    entry: int = 0  # the amount being keyed, minor units
    quantity: int = 0  # a pending "N *" multiplier, 0 if none
    seconds_left: int | None = None
    notice: Notice | None = None  # a short extra line, e.g. an unknown barcode
    reference: str = ""


class LedPattern(StrEnum):
    READY = "ready"  # green on
    WAITING = "waiting"  # yellow blinking
    PAID = "paid"  # green blinking
    TROUBLE = "trouble"  # red blinking: offline or printer problem
    REVIEW = "review"  # red and yellow together: a sale needs a person
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
