"""Refunds: asked for, then confirmed by a read (Mercado Pago refunds asynchronously, mp_api.md §12.5).

A refund is journaled REFUNDING before it is sent; it becomes REFUNDED only when a read shows no approved money
left, goes back to what it was when the API refuses it outright, and goes to REVIEW when nothing confirms it
within ``refund_confirm``. A refund whose answer was lost is read first and sent again only if no answer ever
accepted it (the backends send each refund with its own idempotency key, so a second one refunds nothing twice).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mpqr_kiosk.core.model import Observation, OrderPhase, PaymentStatus, SaleState
from mpqr_kiosk.core.timing import Timing


@dataclass(frozen=True)
class Refunding:
    reference: str
    before: SaleState  # PAID or REVIEW: where a refused refund leaves the sale
    request_id: str  # the control-socket request still waiting for an answer ("" once answered)
    accepted: bool  # an answer accepted the refund: from now on only reads
    out: bool = False  # a request about it is in flight
    due: float = 0.0  # monotonic: when the next request may go
    failures: int = 0
    since: float = 0.0  # monotonic: when it was asked for (or resumed)
    reply_by: float = 0.0  # monotonic: answer the request by then even if not confirmed yet
    until: float = 0.0  # monotonic: confirmed by then, or review

    def next_request(self) -> str:
        """``"refund"`` while no answer accepted it and a read found money still approved, else ``"read"``."""
        return "read" if self.accepted or self.failures else "refund"


def refunded(obs: Observation) -> bool:
    """Nothing approved is left, and the API shows the money returned."""
    if obs.approved:
        return False
    return obs.phase is OrderPhase.REFUNDED or any(p.status is PaymentStatus.REFUNDED for p in obs.payments)


def started(reference: str, before: SaleState, request_id: str, now: float, timing: Timing) -> Refunding:
    return Refunding(reference, before, request_id, accepted=False, out=True, due=now, since=now,
                     reply_by=now + timing.refund_reply, until=now + timing.refund_confirm)


def resumed(reference: str, now: float, timing: Timing) -> Refunding:
    """From the journal after a restart: read first (it may well be done), send again only if it is not."""
    return Refunding(reference, SaleState.PAID, "", accepted=False, due=now, failures=1, since=now,
                     until=now + timing.refund_confirm)


def backed_off(refund: Refunding, now: float, timing: Timing, retry_after: float = 0.0) -> Refunding:
    failures = refund.failures + 1
    delay = max(min(timing.poll_interval * 2**failures, timing.retry_max), retry_after)
    return replace(refund, out=False, failures=failures, due=now + delay)


def read_again(refund: Refunding, now: float, timing: Timing) -> Refunding:
    """Accepted but not done yet: read again soon, then less often."""
    interval = timing.poll_interval if now < refund.since + timing.poll_backoff_after else timing.late_interval
    return replace(refund, out=False, due=now + interval)
