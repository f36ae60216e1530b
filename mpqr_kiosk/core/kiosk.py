"""The sale state machine and the money rules (PRODUCT.md, "Rules that keep money safe").

``Kiosk.handle(event)`` returns the actions the shell must carry out, in order. Nothing here does I/O or
reads the time except through the injected clock, so every transition is a plain function call in tests.

The operator side is READY → ENTERING → (a sale). A sale is PUSHING → WAITING → PAID, or →
CANCELLING → CANCELLED/EXPIRED (or PAID, when a payment raced the cancel). A rejected payment keeps
the sale WAITING: the customer may retry. Only one sale is live at a time (rule 1).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from mpqr_kiosk.core import events as ev
from mpqr_kiosk.core.model import (
    Beep,
    Item,
    LedPattern,
    Observation,
    OrderPhase,
    ReceiptState,
    Sale,
    SaleState,
    Screen,
    ScreenKind,
)
from mpqr_kiosk.core.sites import Site

MAX_ENTRY_DIGITS = 9
KEYED_TITLE = {"pt": "Valor digitado", "es": "Importe"}


class Clock(Protocol):
    """Where the core reads time: ``monotonic`` for every duration; ``time`` only to date a sale when the API
    has not told us its own clock."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...


@dataclass(frozen=True)
class Timing:
    """Every duration the core uses, in seconds."""

    ttl: float = 600.0  # how long an order stays payable
    poll_interval: float = 1.0  # reads while waiting...
    poll_backoff_after: float = 60.0  # ...for this long, then
    poll_slow: float = 5.0  # ...at this interval (or poll_interval, if that is longer)
    retry_max: float = 30.0  # the longest back-off after failed requests
    cancel_grace: float = 15.0  # after a cancel, keep reading this long while a customer is mid-payment
    result_seconds: float = 3.0  # Paid / Cancelled / Rejected stay on screen this long
    probe_interval: float = 10.0  # how often an offline box checks the API again
    health_interval: float = 60.0  # how often an idle, online box checks it is still online
    late_watch: float = 600.0  # after a cancel or expiry with a customer mid-payment, look for late payments...
    late_interval: float = 30.0  # ...this often
    print_retry: float = 10.0  # how often a queued receipt is tried again


class Kiosk:
    """One point of sale: the operator's entry, at most one live sale, and the receipts to print."""

    def __init__(
        self,
        site: Site,
        lookup: Callable[[str], Item | None],
        clock: Clock,
        new_ids: Callable[[], tuple[str, str]],
        timing: Timing = Timing(),
    ) -> None:
        self.site = site
        self.lookup = lookup
        self.clock = clock
        self.new_ids = new_ids
        self.timing = timing
        # the operator's entry
        self.items: list[Item] = []
        self.entry = 0
        self.quantity = 0
        self.notice = ""
        self.notice_until = 0.0
        # the live sale, and sales from before a restart still to reconcile (rule 6)
        self.sale: Sale | None = None
        self.backlog: list[Sale] = []
        self.in_flight = False  # one API request about the sale at a time
        self.next_poll = 0.0
        self.waiting_since = 0.0
        self.expires = 0.0  # monotonic deadline of the live sale
        self.confirmed = False  # we know the order reached the POS (a create answered, or a read found it)
        self.resumed = False  # the live sale came from the journal after a restart
        self.cancel_sent = False
        self.grace_until = 0.0
        self.failures = 0
        self.scanned = False
        self.rejected_seen = 0
        self.rejected_until = 0.0
        self.result: Screen | None = None
        self.result_until = 0.0
        # health
        self.online = False
        self.probing = False
        self.next_probe = 0.0
        self.printer_ok = True
        self.watched: dict[str, tuple[Sale, float]] = {}  # ended sales a customer may still pay: (sale, until)
        self.watch_in_flight = ""
        self.next_watch = 0.0
        self.printing: Sale | None = None
        self.printing_copy = False
        self.print_queue: list[Sale] = []
        self.next_print = 0.0
        self._shown: Screen | None = None
        self._leds: LedPattern | None = None

    # ------------------------------------------------------------------ public surface

    def start(self, journaled: Iterable[Sale] = ()) -> list[ev.Action]:
        """Begin with what the journal holds: unfinished sales are reconciled before any new sale (rule 6)."""
        actions: list[ev.Action] = []
        for sale in journaled:
            if not sale.state.final:
                self.backlog.append(sale)
                actions.append(ev.Log(logging.INFO, f"reconciling {sale.state} sale after restart", sale.reference))
            elif sale.state is SaleState.PAID and sale.receipt is not ReceiptState.PRINTED:
                self.print_queue.append(sale)
        self._next_from_backlog()
        return actions + self._step()

    def handle(self, event: ev.Event) -> list[ev.Action]:
        """Feed one event; get back what to do, in order."""
        handler = getattr(self, "_on_" + type(event).__name__)
        return handler(event) + self._step()

    def busy(self) -> bool:
        """True while a sale is live or an old one is being reconciled: no new sale may start (rule 1)."""
        return self.sale is not None or bool(self.backlog)

    def next_wakeup(self) -> float:
        """Seconds until the core needs a ``Tick`` (the shell may sleep that long when nothing happens)."""
        now = self.clock.monotonic()
        times = [t for t in (self.notice_until, self.result_until, self.rejected_until) if t > now]
        if self.sale:
            if not self.in_flight:
                times.append(self.next_poll)
            if self.sale.state is SaleState.WAITING:
                times += [self.expires, now + 1.0]  # the countdown moves every second
        if not self.probing:
            times.append(self.next_probe)
        if self.print_queue and not self.printing:
            times.append(self.next_print)
        if self.watched and not self.watch_in_flight:
            times.append(self.next_watch)
        return max(0.0, min(times, default=now + 60.0) - now)

    # ------------------------------------------------------------------ operator input

    def _on_Key(self, event: ev.Key) -> list[ev.Action]:
        key = event.key
        if self.sale:
            if key == ev.CLEAR and self.sale.state in (SaleState.PUSHING, SaleState.WAITING):
                return [ev.Sound(Beep.KEY)] + self._begin_cancel("operator")
            return [ev.Sound(Beep.ERROR)]
        self.result = None
        if key in ev.DIGITS:
            if len(str(self.entry)) >= MAX_ENTRY_DIGITS:
                return [ev.Sound(Beep.ERROR)]
            self.entry = self.entry * 10 + int(key)
        elif key == ev.MULTIPLY:
            if not self.entry:
                return [ev.Sound(Beep.ERROR)]
            self.quantity, self.entry = self.entry, 0
        elif key == ev.DELETE:
            if self.entry:
                self.entry //= 10
            elif self.quantity:
                self.quantity = 0
            elif self.items:
                self.items.pop()
        elif key == ev.CLEAR:
            self.items, self.entry, self.quantity = [], 0, 0
        elif key == ev.ENTER:
            return self._charge(self.entry)
        return [ev.Sound(Beep.KEY)]

    def _on_Scan(self, event: ev.Scan) -> list[ev.Action]:
        if self.sale:
            return [ev.Sound(Beep.ERROR)]
        item = self.lookup(event.code)
        if item is None:
            self._say(f"unknown_code:{event.code}")
            return [ev.Sound(Beep.ERROR), ev.Log(logging.WARNING, f"unknown code {event.code!r}")]
        self.result = None
        if self.quantity:
            item = replace(item, quantity=self.quantity)
        self.items.append(item)
        self.quantity = 0
        return [ev.Sound(Beep.KEY)]

    def _on_BadScan(self, event: ev.BadScan) -> list[ev.Action]:
        return [ev.Sound(Beep.ERROR), ev.Log(logging.WARNING, f"scan refused: {event.reason}")]

    def _on_ChargeRequested(self, event: ev.ChargeRequested) -> list[ev.Action]:
        if event.amount <= 0 or self.sale or self.items or self.entry or self.quantity:
            return [ev.Sound(Beep.ERROR), ev.Log(logging.WARNING, "remote sale refused: the kiosk is in use")]
        return self._charge(event.amount)

    def _on_CancelRequested(self, event: ev.CancelRequested) -> list[ev.Action]:
        if self.sale and self.sale.state in (SaleState.PUSHING, SaleState.WAITING):
            return self._begin_cancel("remote")
        return [ev.Log(logging.WARNING, "cancel requested with no waiting sale")]

    def _charge(self, keyed: int) -> list[ev.Action]:
        """Start a sale of the entry plus ``keyed``; a refusal changes nothing the operator entered."""
        items = list(self.items)
        if keyed:
            title = KEYED_TITLE.get(self.site.language, KEYED_TITLE["es"])
            items.append(Item(title, keyed, self.quantity or 1))
        total = sum(item.amount for item in items)
        if total <= 0:
            return [ev.Sound(Beep.ERROR)]
        if self.busy():
            self._say("busy")
            return [ev.Sound(Beep.ERROR), ev.Log(logging.WARNING, "new sale refused: a sale is still live")]
        if not self.online:
            self._say("offline")
            return [ev.Sound(Beep.ERROR), ev.Log(logging.WARNING, "new sale refused: offline (rule 7)")]
        reference, key = self.new_ids()
        sale = Sale(reference, key, self.site.id, tuple(items), total, self.clock.time())
        self.items, self.entry, self.quantity = [], 0, 0
        self._take(sale)
        self.in_flight = True
        self.expires = self.clock.monotonic() + self.timing.ttl
        return [ev.Sound(Beep.KEY), ev.Journal(sale), ev.Push(sale, self.timing.ttl)]

    # ------------------------------------------------------------------ API results

    def _on_Pushed(self, event: ev.Pushed) -> list[ev.Action]:
        if not self._current(event.reference):
            return []
        self._answered()
        if self.confirmed:  # a late duplicate answer: nothing new
            return []
        self.confirmed = True
        now = self.clock.monotonic()
        sale = replace(self.sale, order_id=event.order_id or self.sale.order_id)
        if event.server_time:
            sale = replace(sale, expires_at=event.server_time + self.timing.ttl)
        self.expires = now + self.timing.ttl
        self.next_poll = now if sale.state is SaleState.CANCELLING else now + self.timing.poll_interval
        if sale.state is SaleState.PUSHING:
            sale = replace(sale, state=SaleState.WAITING)
            self.waiting_since = now
        self.sale = sale
        return [ev.Journal(sale)]

    def _on_PushRefused(self, event: ev.PushRefused) -> list[ev.Action]:
        if not self._current(event.reference):
            return []
        self._answered()
        operator_sale = self.sale.state is SaleState.PUSHING and not self.resumed
        sale = replace(self.sale, state=SaleState.FAILED)
        if operator_sale:
            self.items = [*sale.items, *self.items]  # nothing the operator keyed is lost: fix and charge again
        self._say("refused")
        self.sale = None
        self._next_from_backlog()
        return [
            ev.Journal(sale),
            ev.Sound(Beep.ERROR),
            ev.Log(logging.ERROR, f"order refused by the API: {event.reason}", sale.reference),
        ]

    def _on_ApiUnsure(self, event: ev.ApiUnsure) -> list[ev.Action]:
        if event.reference == self.watch_in_flight:
            self.watch_in_flight = ""  # try again at the next round
            return []
        if not self._current(event.reference):
            return []
        self.in_flight = False
        if self.online:  # is it the network, or just this request? ask at once
            self.next_probe = self.clock.monotonic()
        self.online = False
        self.failures += 1
        backoff = min(self.timing.poll_interval * 2**self.failures, self.timing.retry_max)
        self.next_poll = self.clock.monotonic() + max(backoff, event.retry_after)
        return [ev.Log(logging.WARNING, f"outcome unknown ({event.reason}); will read back", event.reference)]

    def _on_Hint(self, event: ev.Hint) -> list[ev.Action]:
        if self.sale and self.sale.state is SaleState.WAITING:
            self.next_poll = self.clock.monotonic()
        return []

    def _on_CancelSent(self, event: ev.CancelSent) -> list[ev.Action]:
        if not self._current(event.reference):
            return []
        self._answered()
        self.cancel_sent = True
        now = self.clock.monotonic()
        self.next_poll = now
        self.grace_until = now + self.timing.cancel_grace
        return []

    def _on_Observed(self, event: ev.Observed) -> list[ev.Action]:
        if event.reference == self.watch_in_flight:
            return self._watched(event.observation)
        if not self._current(event.reference):
            return []
        self._answered()
        obs, sale = event.observation, self.sale
        actions: list[ev.Action] = []
        if obs.order_id and not sale.order_id:
            sale = self.sale = replace(sale, order_id=obs.order_id)
            if sale.state is not SaleState.PUSHING:  # (a push confirmed below journals it anyway)
                actions.append(ev.Journal(sale))
        if obs.server_time and sale.expires_at and sale.state is SaleState.WAITING and not self.waiting_since:
            # first read after a restart: the API server's clock says how long the order has left
            left = min(self.timing.ttl, max(0.0, sale.expires_at - obs.server_time))
            self.expires = self.clock.monotonic() + left
        if obs.phase is OrderPhase.CLOSED:
            if obs.approved == sale.total:
                return self._paid(obs)
            return self._finish(
                SaleState.REVIEW,
                ScreenKind.REJECTED,
                ev.Log(logging.ERROR, f"closed with approved {obs.approved} != total {sale.total}", sale.reference),
            )
        if obs.phase in (OrderPhase.EXPIRED, OrderPhase.CANCELLED, OrderPhase.REFUNDED):
            return actions + self._ended_unpaid(obs)
        if sale.state is SaleState.CANCELLING and not self.confirmed:  # a read-back before cancelling
            self.confirmed = True  # found or not, cancel it: a create that timed out may still land
            return actions
        if sale.state is SaleState.PUSHING:
            if obs.phase is OrderPhase.ABSENT:
                if self.resumed or self.clock.monotonic() >= self.expires:  # stale: never put an old total on the QR
                    return actions + self._finish(SaleState.EXPIRED, ScreenKind.EXPIRED, ev.Log(
                        logging.INFO, "the order never reached the POS and the sale is stale: expired, no money moved",
                        sale.reference))
                self.in_flight = True  # the create never landed: send it again, same reference and key
                return [ev.Log(logging.INFO, "read-back found no order; pushing it again", sale.reference),
                        ev.Push(sale, self.timing.ttl)]
            return actions + self._on_Pushed(ev.Pushed(sale.reference, obs.order_id, obs.server_time))
        if sale.state is SaleState.CANCELLING:
            if self.cancel_sent and not (obs.scanned and self.clock.monotonic() < self.grace_until):
                return actions + self._ended_unpaid(obs)
            return actions
        return actions + self._waiting(obs)

    def _waiting(self, obs: Observation) -> list[ev.Action]:
        actions: list[ev.Action] = []
        if not self.waiting_since:  # resumed after a restart
            self.waiting_since = self.clock.monotonic()
            self.confirmed = True
            self.sale = replace(self.sale, state=SaleState.WAITING)
        if obs.scanned and not self.scanned:
            actions.append(ev.Log(logging.INFO, "customer scanned the QR", self.sale.reference))
        self.scanned = self.scanned or obs.scanned
        if obs.rejected > self.rejected_seen:
            self.rejected_seen = obs.rejected
            self.rejected_until = self.clock.monotonic() + self.timing.result_seconds
            self.sale = replace(self.sale, rejected_payments=obs.rejected)
            actions += [ev.Journal(self.sale), ev.Sound(Beep.ERROR),
                        ev.Log(logging.INFO, "payment rejected; the customer may try again", self.sale.reference)]
        return actions

    def _on_Connectivity(self, event: ev.Connectivity) -> list[ev.Action]:
        self.probing = False
        was, self.online = self.online, event.online
        interval = self.timing.health_interval if event.online else self.timing.probe_interval
        self.next_probe = self.clock.monotonic() + interval
        if was != event.online:
            return [ev.Log(logging.INFO if event.online else logging.WARNING,
                           "online" if event.online else f"offline: {event.detail}")]
        return []

    # ------------------------------------------------------------------ printing

    def _on_Printed(self, event: ev.Printed) -> list[ev.Action]:
        if not self.printing or self.printing.reference != event.reference:
            return []
        sale, self.printing = self.printing, None
        sale = replace(sale, receipt=ReceiptState.PRINTED, copies=sale.copies + self.printing_copy)
        self.printer_ok = True
        return [ev.Journal(sale)]

    def _on_PrintFailed(self, event: ev.PrintFailed) -> list[ev.Action]:
        if not self.printing or self.printing.reference != event.reference:
            return []
        sale, self.printing = self.printing, None
        actions: list[ev.Action] = []
        if not event.started and not self.printing_copy:  # nothing printed: the original is still due
            sale = replace(sale, receipt=ReceiptState.NONE)
            actions.append(ev.Journal(sale))
        self.print_queue.insert(0, sale)
        self.printer_ok = False
        self.next_print = self.clock.monotonic() + self.timing.print_retry
        return actions + [ev.Log(logging.ERROR, f"receipt not printed, queued: {event.reason}", event.reference)]

    def refunded(self, sale: Sale) -> list[ev.Action]:
        """A paid sale was refunded (``mpqr-kiosk refund``): journal it, and drop any receipt still queued."""
        sale = replace(sale, state=SaleState.REFUNDED)
        self.print_queue = [s for s in self.print_queue if s.reference != sale.reference]
        if self.printing and self.printing.reference == sale.reference:
            self.printing = replace(self.printing, state=SaleState.REFUNDED)
        return [ev.Journal(sale), ev.Log(logging.INFO, f"refunded {self.site.format(sale.paid_amount)}",
                                         sale.reference)] + self._step()

    def reprint(self, sale: Sale) -> list[ev.Action]:
        """Queue a COPY of a paid sale's receipt (``mpqr-kiosk reprint``)."""
        if sale.state is not SaleState.PAID:
            return [ev.Log(logging.WARNING, f"not reprinted: the sale is {sale.state}", sale.reference)]
        self.print_queue.append(replace(sale, receipt=ReceiptState.PRINTED))
        return self._step()

    # ------------------------------------------------------------------ timers and transitions

    def _on_Tick(self, event: ev.Tick) -> list[ev.Action]:
        return []

    def _step(self) -> list[ev.Action]:
        """Whatever is due now, then the screen and LEDs if they changed."""
        now = self.clock.monotonic()
        actions: list[ev.Action] = []
        sale = self.sale
        if sale and not self.in_flight and sale.state is SaleState.WAITING and self.waiting_since \
                and now >= self.expires:
            actions += self._begin_cancel("expired")
            sale = self.sale
        if sale and not self.in_flight and now >= self.next_poll:
            self.in_flight = True
            if sale.state is SaleState.PUSHING or (sale.state is SaleState.CANCELLING and not self.confirmed):
                actions.append(ev.Recover(sale, self.timing.ttl))
            elif sale.state is SaleState.CANCELLING and not self.cancel_sent:
                actions.append(ev.Cancel(sale))
            else:
                actions.append(ev.Read(sale))
                self.next_poll = now + self._poll_interval(now)
        if self.watched and not self.watch_in_flight and now >= self.next_watch:
            actions += self._watch_round(now)
        if not self.probing and now >= self.next_probe and (not self.online or not self.busy()):
            self.probing = True
            actions.append(ev.Probe())
        if self.print_queue and not self.printing and (self.printer_ok or now >= self.next_print):
            actions += self._print_next()
        return actions + self._view(now)

    def _watch_round(self, now: float) -> list[ev.Action]:
        """Read the oldest watched sale; forget those whose watch is over."""
        self.watched = {ref: (sale, until) for ref, (sale, until) in self.watched.items() if until > now}
        self.next_watch = now + self.timing.late_interval
        if not self.watched:
            return []
        reference, (sale, _) = next(iter(self.watched.items()))
        self.watched[reference] = self.watched.pop(reference)  # round robin
        self.watch_in_flight = reference
        return [ev.Read(sale)]

    def _watched(self, obs: Observation) -> list[ev.Action]:
        """A late look at an ended sale: money that arrived after the cancel is never lost."""
        sale, _ = self.watched.get(self.watch_in_flight, (None, 0.0))
        self.watch_in_flight = ""
        if sale is None or not obs.approved:
            return []
        del self.watched[sale.reference]
        if obs.phase is OrderPhase.CLOSED and obs.approved == sale.total:
            approved = next((p for p in reversed(obs.payments) if p.status == "approved"), None)
            sale = replace(sale, state=SaleState.PAID, paid_amount=obs.approved,
                           payment_id=approved.id if approved else "", paid_at=obs.server_time or self.clock.time())
            self.print_queue.append(sale)
            late = f"paid after it ended ({sale.cancel_reason}): printing the receipt now"
            return [ev.Journal(sale), ev.Sound(Beep.PAID), ev.Log(logging.ERROR, late, sale.reference)]
        sale = replace(sale, state=SaleState.REVIEW)
        return [ev.Journal(sale), ev.Log(logging.ERROR, f"{obs.approved} approved after the sale ended: needs review",
                                         sale.reference)]

    def _poll_interval(self, now: float) -> float:
        t = self.timing
        if self.sale and self.sale.state is SaleState.CANCELLING:
            return t.poll_interval
        slow = bool(self.waiting_since) and now - self.waiting_since > t.poll_backoff_after
        return max(t.poll_interval, t.poll_slow) if slow else t.poll_interval

    def _begin_cancel(self, reason: str) -> list[ev.Action]:
        self.sale = replace(self.sale, state=SaleState.CANCELLING, cancel_reason=reason)
        self.cancel_sent = False
        self.next_poll = self.clock.monotonic()
        return [ev.Journal(self.sale), ev.Log(logging.INFO, f"cancelling ({reason})", self.sale.reference)]

    def _paid(self, obs: Observation) -> list[ev.Action]:
        approved = next((p for p in reversed(obs.payments) if p.status == "approved"), None)
        sale = replace(self.sale, state=SaleState.PAID, paid_amount=obs.approved,
                       payment_id=approved.id if approved else "", paid_at=obs.server_time or self.clock.time())
        self.print_queue.append(sale)
        self._show_result(ScreenKind.PAID, sale)
        self.sale = None
        self._next_from_backlog()
        return [ev.Journal(sale), ev.Sound(Beep.PAID),
                ev.Log(logging.INFO, f"paid: payment {sale.payment_id}, {self.site.format(sale.paid_amount)}",
                       sale.reference)]

    def _ended_unpaid(self, obs: Observation) -> list[ev.Action]:
        """The order is over without being paid in full. Any approved money means a person must look."""
        if obs.approved:
            return self._finish(SaleState.REVIEW, ScreenKind.REJECTED, ev.Log(
                logging.ERROR, f"ended with {obs.approved} approved of {self.sale.total}: needs review",
                self.sale.reference))
        expired = self.sale.cancel_reason == "expired" or obs.phase is OrderPhase.EXPIRED
        state = SaleState.EXPIRED if expired else SaleState.CANCELLED
        return self._finish(state, ScreenKind.EXPIRED if expired else ScreenKind.CANCELLED,
                            ev.Log(logging.INFO, f"{state}: no money moved", self.sale.reference))

    def _finish(self, state: SaleState, kind: ScreenKind, log: ev.Log) -> list[ev.Action]:
        sale = replace(self.sale, state=state)
        if state in (SaleState.CANCELLED, SaleState.EXPIRED) and self.scanned:  # the app may still pay it
            now = self.clock.monotonic()
            if not self.watched:
                self.next_watch = now + self.timing.late_interval
            self.watched[sale.reference] = (sale, now + self.timing.late_watch)
        self._show_result(kind, sale)
        self.sale = None
        self._next_from_backlog()
        return [ev.Journal(sale), log]

    def _print_next(self) -> list[ev.Action]:
        sale = self.print_queue.pop(0)
        copy = sale.receipt is not ReceiptState.NONE  # an original may have started: never a second original
        if not copy:
            sale = replace(sale, receipt=ReceiptState.PRINTING)
        self.printing, self.printing_copy = sale, copy
        return ([] if copy else [ev.Journal(sale)]) + [ev.Print(sale, copy=copy)]

    # ------------------------------------------------------------------ bookkeeping

    def _take(self, sale: Sale) -> None:
        self.sale = sale
        self.resumed = False  # taken from the journal after a restart (set by the caller)
        self.in_flight = False
        self.next_poll = self.clock.monotonic()
        self.waiting_since = 0.0
        self.expires = self.clock.monotonic() + self.timing.ttl
        self.confirmed = sale.state is SaleState.WAITING or (sale.state is SaleState.CANCELLING and bool(sale.order_id))
        self.cancel_sent = False
        self.failures = 0
        self.scanned = False
        self.rejected_seen = sale.rejected_payments
        self.rejected_until = 0.0
        self.result = None

    def _next_from_backlog(self) -> None:
        if self.sale is None and self.backlog:
            self._take(self.backlog.pop(0))
            self.resumed = True

    def _current(self, reference: str) -> bool:
        return self.sale is not None and self.sale.reference == reference

    def _answered(self) -> None:
        self.in_flight = False
        self.failures = 0
        self.online = True

    def _say(self, text: str) -> None:
        self.notice = text
        self.notice_until = self.clock.monotonic() + self.timing.result_seconds

    def _show_result(self, kind: ScreenKind, sale: Sale) -> None:
        self.result = Screen(kind, sale.items, sale.total, reference=sale.reference)
        self.result_until = self.clock.monotonic() + self.timing.result_seconds

    def screen(self) -> Screen:
        """What the display should show now."""
        now = self.clock.monotonic()
        notice = self.notice if now < self.notice_until else ""
        sale = self.sale
        if sale:
            left = max(0, int(self.expires - now + 0.999))
            base = dict(items=sale.items, total=sale.total, reference=sale.reference, notice=notice)
            if sale.state is SaleState.CANCELLING:
                return Screen(ScreenKind.CANCELLED, **base)
            if not self.online and self.failures >= 2:  # one blip keeps the QR up
                return Screen(ScreenKind.OFFLINE, **base)
            if now < self.rejected_until:
                return Screen(ScreenKind.REJECTED, seconds_left=left, **base)
            if self.scanned:
                return Screen(ScreenKind.CUSTOMER_PAYING, seconds_left=left, **base)
            return Screen(ScreenKind.PAY, seconds_left=left if self.waiting_since else None, **base)
        if self.result and now < self.result_until:
            return self.result
        if self.items or self.entry or self.quantity:
            total = sum(item.amount for item in self.items)
            return Screen(ScreenKind.ENTERING, tuple(self.items), total, self.entry, self.quantity, notice=notice)
        if not self.online:
            return Screen(ScreenKind.OFFLINE, notice=notice)
        if not self.printer_ok and (self.print_queue or self.printing):
            return Screen(ScreenKind.PRINTER_PROBLEM, notice=notice)
        return Screen(ScreenKind.READY, notice=notice)

    def leds(self) -> LedPattern:
        """What the LEDs should say now."""
        now = self.clock.monotonic()
        if self.sale:
            return LedPattern.WAITING if self.online or self.failures < 2 else LedPattern.TROUBLE
        if self.result and now < self.result_until and self.result.kind is ScreenKind.PAID:
            return LedPattern.PAID
        if not self.online or not self.printer_ok:
            return LedPattern.TROUBLE
        return LedPattern.READY

    def _view(self, now: float) -> list[ev.Action]:
        actions: list[ev.Action] = []
        screen, leds = self.screen(), self.leds()
        if screen != self._shown:
            self._shown = screen
            actions.append(ev.Show(screen))
        if leds != self._leds:
            self._leds = leds
            actions.append(ev.Leds(leds))
        return actions

