"""The live sale: at most one at a time (rule 1), from the push to a final state.

A ``LiveSale`` is a frozen value whose ``phase`` is one of five frozen dataclasses. The phase alone says
which request about the sale comes next and which answers it expects, so no combination of flags can be
invalid (the design follows h11's ``_state.py``: named states, transitions in one table, stale input
refused rather than guessed at)::

    Pushing ──Pushed / read back OPEN──▶ Waiting ──CLOSED, approved == total──▶ (paid)
       │  └─PushRefused──▶ (failed)        │  └─EXPIRED / CANCELLED──▶ (ended)
       │ cancel                            │ cancel or time up
       ▼                                   ▼
    ReadingBack ──read back / Pushed──▶ SendingCancel ──CancelSent──▶ FinalRead ──read──▶ (paid | ended)

The journaled ``SaleState`` is derived from the phase (``STATE``). Transitions are plain functions keyed
by (phase, answer) in ``TRANSITIONS``; an answer that is for another sale, that answers no request in
flight, or that does not fit the phase is stale: ``answer`` returns ``None`` and nothing changes.

No sale can wedge the box: a waiting order is cancelled when its time is up, whatever is in flight, and a
sale the API has not settled ``unanswered`` seconds after its expiry ends anyway (the order cannot be paid
any more) and is left to the late watch, like every ended sale.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from mpqr_kiosk.core import actions as act
from mpqr_kiosk.core import events as ev
from mpqr_kiosk.core.model import (
    Beep,
    CancelReason,
    Observation,
    OrderPhase,
    Sale,
    SaleState,
    ScreenKind,
)
from mpqr_kiosk.core.sites import Site
from mpqr_kiosk.core.timing import Timing


class Origin(StrEnum):
    """Where the live sale came from."""

    OPERATOR = "operator"  # keyed or scanned at the box
    REMOTE = "remote"  # ``mpqr-kiosk sale``
    JOURNAL = "journal"  # unfinished when the daemon last stopped (rule 6)


class Request(StrEnum):
    """The request about the sale that is in flight."""

    PUSH = "push"
    RECOVER = "recover"
    READ = "read"
    CANCEL = "cancel"


# ---------------------------------------------------------------------------------------------- phases


@dataclass(frozen=True)
class Pushing:
    """The create is out, or its fate is being read back: never a blind second create (rule 3)."""


@dataclass(frozen=True)
class Waiting:
    """The order is on the POS; the customer may scan and pay."""

    since: float | None = None  # monotonic; None: resumed from the journal and not read yet


@dataclass(frozen=True)
class ReadingBack:
    """A cancel came before we knew whether the create landed: read back, then cancel whatever did."""


@dataclass(frozen=True)
class SendingCancel:
    """Deleting / cancelling the order on the POS."""


@dataclass(frozen=True)
class FinalRead:
    """The cancel was answered; a fresh read decides (a payment that raced the cancel still wins)."""

    grace_until: float  # monotonic; while a customer is mid-payment, keep reading until then


Phase = Pushing | Waiting | ReadingBack | SendingCancel | FinalRead
PHASES: tuple[type, ...] = (Pushing, Waiting, ReadingBack, SendingCancel, FinalRead)

STATE: dict[type, SaleState] = {
    Pushing: SaleState.PUSHING,
    Waiting: SaleState.WAITING,
    ReadingBack: SaleState.CANCELLING,
    SendingCancel: SaleState.CANCELLING,
    FinalRead: SaleState.CANCELLING,
}
NEXT_REQUEST: dict[type, Request] = {  # what goes out when the phase's next request is due
    Pushing: Request.RECOVER,
    Waiting: Request.READ,
    ReadingBack: Request.RECOVER,
    SendingCancel: Request.CANCEL,
    FinalRead: Request.READ,
}
ANSWERS: dict[type, frozenset[Request]] = {  # which requests in flight each answer can answer
    ev.Pushed: frozenset({Request.PUSH, Request.RECOVER}),
    ev.PushRefused: frozenset({Request.PUSH}),
    ev.Observed: frozenset({Request.RECOVER, Request.READ}),
    ev.CancelSent: frozenset({Request.CANCEL}),
    ev.ApiUnsure: frozenset(Request),
}


@dataclass(frozen=True)
class LiveSale:
    sale: Sale  # as journaled; its ``state`` always follows the phase
    phase: Phase
    origin: Origin
    expires: float  # monotonic: when the order stops being payable
    out: Request | None = None  # the request in flight (one at a time)
    due: float = 0.0  # monotonic: when the phase's next request may go out
    failures: int = 0  # unsure answers in a row (back-off)
    attempted: bool = False  # a payment attempt was seen: the customer is paying
    rejected_until: float = 0.0  # monotonic: "Rejected, try again" shows until then

    def __post_init__(self) -> None:
        if self.sale.state is not STATE[type(self.phase)]:
            raise ValueError(f"sale {self.sale.reference} is {self.sale.state} but its phase is {self.phase}")

    def entering(self, phase: Phase, **changes) -> LiveSale:
        """The same sale in ``phase`` (its journaled state follows)."""
        sale = replace(changes.pop("sale", self.sale), state=STATE[type(phase)])
        return replace(self, sale=sale, phase=phase, **changes)

    @property
    def cancellable(self) -> bool:
        return isinstance(self.phase, Pushing | Waiting)

    @property
    def unread(self) -> bool:
        """Resumed from the journal as waiting, and not read since: its clock has not started."""
        return isinstance(self.phase, Waiting) and self.phase.since is None


@dataclass(frozen=True)
class Context:
    """What a transition may read besides the sale: the time and the rules."""

    now: float  # monotonic
    server_now: float  # now on the API server's clock, as far as the box knows it
    timing: Timing
    site: Site
    quiet: bool = False  # a 429's Retry-After holds every request back


# ---------------------------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Paid:
    """Closed and approved == total (rule 4): print the receipt."""

    sale: Sale


@dataclass(frozen=True)
class Unpaid:
    """Over without being paid: cancelled, expired, or REVIEW when money moved that is not the total.
    Watched for late money either way."""

    sale: Sale
    screen: ScreenKind


@dataclass(frozen=True)
class Refused:
    """The API refused the order outright: no order, no money."""

    sale: Sale
    give_back: bool  # the operator's lines go back to the entry, to fix and charge again


Outcome = LiveSale | Paid | Unpaid | Refused
Result = tuple[Outcome, list[act.Action]]
MIN_PAYABLE = 30.0  # seconds: a sale with less left than this (or half its time to live) is never pushed again


# ---------------------------------------------------------------------------------------------- starting


def charged(sale: Sale, origin: Origin, ctx: Context) -> tuple[LiveSale, list[act.Action]]:
    """A new sale: its expiry fixed (on the API server's clock), journaled, then pushed at once (rule 2)."""
    ttl = ctx.timing.ttl
    sale = replace(sale, ttl=ttl, expires_at=ctx.server_now + ttl)
    live = LiveSale(sale, Pushing(), origin, expires=ctx.now + ttl, out=Request.PUSH, due=ctx.now)
    return live, [act.Save(sale), act.Push(sale, ttl)]


def resumed(sale: Sale, ctx: Context) -> LiveSale:
    """An unfinished sale from the journal (rule 6): its first request is a read, never a create. Until a read
    says how long the order has left, it is given its whole time to live from now (never less than it has)."""
    phase: Phase
    if sale.state is SaleState.PUSHING:
        phase = Pushing()
    elif sale.state is SaleState.WAITING:
        phase = Waiting()
    elif sale.order_id:
        phase = SendingCancel()
    else:
        phase = ReadingBack()
    return LiveSale(sale, phase, Origin.JOURNAL, expires=ctx.now + (sale.ttl or ctx.timing.ttl), due=ctx.now)


def cancel(live: LiveSale, reason: CancelReason, ctx: Context) -> tuple[LiveSale, list[act.Action]]:
    """Operator, remote or expiry: journal CANCELLING, then cancel (after a read-back if unconfirmed)."""
    phase = ReadingBack() if isinstance(live.phase, Pushing) else SendingCancel()
    live = live.entering(phase, sale=replace(live.sale, cancel_reason=reason), due=ctx.now)
    return live, [act.Save(live.sale), act.Log(logging.INFO, f"cancelling ({reason})", live.sale.reference)]


def hint(live: LiveSale, ctx: Context) -> LiveSale:
    """A notification arrived: read a waiting sale now (it decides nothing by itself)."""
    return replace(live, due=ctx.now) if isinstance(live.phase, Waiting) else live


# ---------------------------------------------------------------------------------------------- time


def step(live: LiveSale, ctx: Context) -> Result:
    """What is due now: the expiry of a waiting order (on time, whatever is in flight), the end of a sale the
    API has not settled long after its expiry, then the phase's next request (unless a 429 holds it back)."""
    actions: list[act.Action] = []
    if isinstance(live.phase, Waiting) and ctx.now >= live.expires:
        live, actions = cancel(live, CancelReason.EXPIRED, ctx)
    elif not isinstance(live.phase, Waiting) and ctx.now >= live.expires + ctx.timing.unanswered:
        return _unanswered(live, ctx)
    if live.out is None and ctx.now >= live.due and not ctx.quiet:
        request = NEXT_REQUEST[type(live.phase)]
        due = ctx.now + _poll_interval(live, ctx) if request is Request.READ else live.due
        live = replace(live, out=request, due=due)
        actions.append(_request(live, ctx))
    return live, actions


def _unanswered(live: LiveSale, ctx: Context) -> Result:
    """Long past its expiry the order can no longer be paid on Mercado Pago's side; the API never settled the
    sale: it ends, and the late watch reads it until it does."""
    sale = live.sale
    cancelled = sale.cancel_reason in (CancelReason.OPERATOR, CancelReason.REMOTE)
    state = SaleState.CANCELLED if cancelled else SaleState.EXPIRED
    log = act.Log(logging.WARNING, f"Mercado Pago did not settle the sale in time: {state}, watched for late money",
                  sale.reference)
    return _unpaid(live, state, ScreenKind.CANCELLED if cancelled else ScreenKind.EXPIRED, log, ctx)


def wakeups(live: LiveSale, now: float, timing: Timing, quiet_until: float) -> list[float]:
    """The times the live sale needs a ``Tick``."""
    times = [live.rejected_until] if live.rejected_until > now else []
    if live.out is None:
        times.append(max(live.due, quiet_until))
    if isinstance(live.phase, Waiting):
        times += [live.expires, now + 1.0]  # the countdown moves every second
    else:
        times.append(live.expires + timing.unanswered)
    return times


def _request(live: LiveSale, ctx: Context) -> act.ApiRequest:
    sale = live.sale
    if live.out is Request.RECOVER:
        return act.Recover(sale, sale.ttl or ctx.timing.ttl)
    if live.out is Request.CANCEL:
        return act.Cancel(sale)
    return act.Read(sale)


def _poll_interval(live: LiveSale, ctx: Context) -> float:
    t, phase = ctx.timing, live.phase
    slow = isinstance(phase, Waiting) and phase.since is not None and ctx.now - phase.since > t.poll_backoff_after
    return max(t.poll_interval, t.poll_slow) if slow else t.poll_interval


# ---------------------------------------------------------------------------------------------- answers


def answer(live: LiveSale, event: ev.SaleAnswer, ctx: Context) -> Result | None:
    """Feed an answer about the live sale; ``None`` when it is stale (and then nothing changes)."""
    if event.reference != live.sale.reference or live.out not in ANSWERS[type(event)]:
        return None
    transition = TRANSITIONS.get((type(live.phase), type(event)))
    if transition is None:
        return None
    answered = replace(live, out=None) if isinstance(event, ev.ApiUnsure) else replace(live, out=None, failures=0)
    return transition(answered, event, ctx)


def _confirmed(live: LiveSale, event: ev.Pushed, ctx: Context) -> Result:
    """The order is on the POS: wait for the customer, or go on to cancel it. Its expiry stays the one fixed
    when the sale started."""
    sale = replace(live.sale, order_id=event.order_id or live.sale.order_id)
    if isinstance(live.phase, ReadingBack):
        live = live.entering(SendingCancel(), sale=sale, due=ctx.now)
    else:
        live = live.entering(Waiting(ctx.now), sale=sale, due=ctx.now + ctx.timing.poll_interval)
    return live, [act.Save(live.sale)]


def _refused(live: LiveSale, event: ev.PushRefused, ctx: Context) -> Result:
    sale = replace(live.sale, state=SaleState.FAILED)
    give_back = isinstance(live.phase, Pushing) and live.origin is Origin.OPERATOR  # a remote sale leaves nothing
    return Refused(sale, give_back), [
        act.Save(sale),
        act.Sound(Beep.ERROR),
        act.Log(logging.ERROR, f"order refused by the API: {event.reason}", sale.reference),
    ]


def _unsure(live: LiveSale, event: ev.ApiUnsure, ctx: Context) -> Result:
    """Outcome unknown: back off, then read back or try again; never a blind second create."""
    failures = live.failures + 1
    backoff = min(ctx.timing.poll_interval * 2**failures, ctx.timing.retry_max)
    live = replace(live, failures=failures, due=ctx.now + max(backoff, event.retry_after))
    return live, [act.Log(logging.WARNING, f"outcome unknown ({event.reason}); will read back", event.reference)]


def _reading(then: Callable[[LiveSale, Observation, ev.Observed, Context], Result]) -> Callable[..., Result]:
    """A fresh read: learn what it teaches, let it decide the sale (paid, or over); if it does not, ``then``."""

    def transition(live: LiveSale, event: ev.Observed, ctx: Context) -> Result:
        obs = event.observation
        live, actions = _learn(live, obs, ctx)
        outcome, more = _decided(live, obs, ctx) or then(live, obs, event, ctx)
        return outcome, actions + more

    return transition


@_reading
def _recovered(live: LiveSale, obs: Observation, event: ev.Observed, ctx: Context) -> Result:
    """A read-back of an unsure create: there — or absent, and pushed again while the sale is still fresh."""
    if obs.phase is not OrderPhase.ABSENT:
        return _confirmed(live, ev.Pushed(event.reference, obs.order_id, obs.server_time), ctx)
    left = live.expires - ctx.now
    if live.origin is Origin.JOURNAL or left < min(MIN_PAYABLE, (live.sale.ttl or ctx.timing.ttl) / 2):
        return _unpaid(live, SaleState.EXPIRED, ScreenKind.EXPIRED, act.Log(  # never an old total on the QR
            logging.INFO, "the order never reached the POS and the sale is stale: expired, no money moved",
            live.sale.reference), ctx)
    live = replace(live, out=Request.PUSH)  # the create never landed: send it again, same reference, key, expiry
    return live, [act.Log(logging.INFO, "read-back found no order; pushing it again", live.sale.reference),
                  act.Push(live.sale, live.sale.ttl or ctx.timing.ttl)]


@_reading
def _waiting_read(live: LiveSale, obs: Observation, event: ev.Observed, ctx: Context) -> Result:
    """Still open: start the clock after a restart, and say when the customer pays or is rejected (a payment
    attempt is the only sign of a customer: a merchant order may exist from the start, §12.1)."""
    actions: list[act.Action] = []
    if live.unread:
        live = live.entering(Waiting(ctx.now))
    reference = live.sale.reference
    if obs.attempted and not live.attempted:
        actions.append(act.Log(logging.INFO, "a payment attempt: the customer is paying", reference))
        live = replace(live, attempted=True)
    if obs.rejected > live.sale.rejected_payments:
        live = replace(live, sale=replace(live.sale, rejected_payments=obs.rejected),
                       rejected_until=ctx.now + ctx.timing.result_seconds)
        actions += [act.Save(live.sale), act.Sound(Beep.ERROR),
                    act.Log(logging.INFO, "payment rejected; the customer may try again", reference)]
    return live, actions


@_reading
def _read_back(live: LiveSale, obs: Observation, event: ev.Observed, ctx: Context) -> Result:
    """Before cancelling: found or not, cancel it (a create that timed out may still land)."""
    return live.entering(SendingCancel()), []


@_reading
def _read_before_cancel(live: LiveSale, obs: Observation, event: ev.Observed, ctx: Context) -> Result:
    """A read that was already out when the cancel came: unless it decided the sale, the cancel goes."""
    return live, []


def _cancel_sent(live: LiveSale, event: ev.CancelSent, ctx: Context) -> Result:
    return live.entering(FinalRead(ctx.now + ctx.timing.cancel_grace), due=ctx.now), []


@_reading
def _final_read(live: LiveSale, obs: Observation, event: ev.Observed, ctx: Context) -> Result:
    """While a payment attempt is under way (in review, or a customer who was rejected may retry) keep reading
    through the grace; then the sale ends, and the late watch carries on reading it."""
    assert isinstance(live.phase, FinalRead)
    paying = obs.in_review or obs.attempted or live.attempted
    if paying and ctx.now < live.phase.grace_until:
        return live, []
    return _ended_unpaid(live, obs, ctx)


TRANSITIONS: dict[tuple[type, type], Callable[..., Result]] = {
    (Pushing, ev.Pushed): _confirmed,
    (Pushing, ev.PushRefused): _refused,
    (Pushing, ev.Observed): _recovered,
    (Pushing, ev.ApiUnsure): _unsure,
    (Waiting, ev.Observed): _waiting_read,
    (Waiting, ev.ApiUnsure): _unsure,
    (ReadingBack, ev.Pushed): _confirmed,
    (ReadingBack, ev.PushRefused): _refused,
    (ReadingBack, ev.Observed): _read_back,
    (ReadingBack, ev.ApiUnsure): _unsure,
    (SendingCancel, ev.Observed): _read_before_cancel,
    (SendingCancel, ev.CancelSent): _cancel_sent,
    (SendingCancel, ev.ApiUnsure): _unsure,
    (FinalRead, ev.Observed): _final_read,
    (FinalRead, ev.ApiUnsure): _unsure,
}


# ---------------------------------------------------------------------------------------------- deciding


def _learn(live: LiveSale, obs: Observation, ctx: Context) -> tuple[LiveSale, list[act.Action]]:
    """What any read teaches besides the decision: the order's id, and after a restart how long is left."""
    actions: list[act.Action] = []
    sale = live.sale
    if obs.order_id and not sale.order_id:
        live = replace(live, sale=replace(sale, order_id=obs.order_id))
        if not isinstance(live.phase, Pushing):  # (a push confirmed next journals it anyway)
            actions.append(act.Save(live.sale))
    if obs.server_time and sale.expires_at and live.unread:
        left = min(ctx.timing.ttl, max(0.0, sale.expires_at - obs.server_time))  # on the API server's clock
        live = replace(live, expires=ctx.now + left)
    return live, actions


def _decided(live: LiveSale, obs: Observation, ctx: Context) -> Result | None:
    """Paid only when closed and exactly the total is approved across everything the API shows (rule 4);
    more than the total approved is REVIEW at once; an order that is over ends the sale."""
    total = live.sale.total
    if obs.approved > total:
        return _review(live, obs, f"{obs.approved} approved for a total of {total} (a double or over-payment)", ctx)
    if obs.phase is OrderPhase.CLOSED:
        if obs.approved == total:
            return _paid(live, obs, ctx)
        return _review(live, obs, f"closed with approved {obs.approved} != total {total}", ctx)
    if obs.phase in (OrderPhase.EXPIRED, OrderPhase.CANCELLED, OrderPhase.REFUNDED):
        return _ended_unpaid(live, obs, ctx)
    return None


def _paid(live: LiveSale, obs: Observation, ctx: Context) -> Result:
    approved = obs.last_approved()
    sale = replace(live.sale, state=SaleState.PAID, paid_amount=obs.approved, payments=obs.payments,
                   payment_id=approved.id if approved else "", paid_at=obs.server_time or ctx.server_now,
                   watch_until=ctx.server_now + ctx.timing.late_watch)  # a second payment is still caught
    message = f"paid: payment {sale.payment_id}, {ctx.site.format(sale.paid_amount)}"
    return Paid(sale), [act.Save(sale), act.Sound(Beep.PAID), act.Log(logging.INFO, message, sale.reference)]


def _review(live: LiveSale, obs: Observation, why: str, ctx: Context) -> Result:
    live = replace(live, sale=replace(live.sale, paid_amount=obs.approved, payments=obs.payments))
    return _unpaid(live, SaleState.REVIEW, ScreenKind.REVIEW,
                   act.Log(logging.ERROR, f"{why}: needs review", live.sale.reference), ctx)


def _ended_unpaid(live: LiveSale, obs: Observation, ctx: Context) -> Result:
    """The order is over without being paid in full. Any money approved (or approved and returned) means a
    person must look."""
    sale = replace(live.sale, payments=obs.payments)
    if obs.approved or obs.refunded:
        why = f"ended with {obs.approved} approved and {obs.refunded} refunded of {sale.total}"
        return _review(live, obs, why, ctx)
    expired = sale.cancel_reason is CancelReason.EXPIRED or obs.phase is OrderPhase.EXPIRED
    state = SaleState.EXPIRED if expired else SaleState.CANCELLED
    note = ", a payment still in review" if obs.in_review else ""
    return _unpaid(replace(live, sale=sale), state, ScreenKind.EXPIRED if expired else ScreenKind.CANCELLED,
                   act.Log(logging.INFO, f"{state}: no money moved{note}; watched for late payments", sale.reference),
                   ctx)


def _unpaid(live: LiveSale, state: SaleState, screen: ScreenKind, log: act.Log, ctx: Context) -> Result:
    """Journaled as over, and watched for late money until ``late_watch`` from now (server clock)."""
    sale = replace(live.sale, state=state, watch_until=ctx.server_now + ctx.timing.late_watch)
    return Unpaid(sale, screen), [act.Save(sale), log]
