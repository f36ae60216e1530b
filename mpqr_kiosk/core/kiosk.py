"""One point of sale: the small machines of the core, composed, behind one door.

``Kiosk.handle(event)`` returns the actions the shell must carry out, in order; ``status()`` and ``view()``
are read-only values; ``next_wakeup()`` says when the core next needs a ``Tick``. Nothing here does I/O or
reads the time except through the injected clock, and nothing outside ``core/`` touches the attributes.

The machines, each a frozen value with its own explicit state:

* ``Entry`` (``entry.py``): what the operator has keyed and scanned;
* ``LiveSale`` (``live.py``): at most one sale on the POS (rule 1), in one of five phases;
* the backlog: unfinished sales from the journal, reconciled one by one before any new sale (rule 6);
* ``PrintQueue`` (``printing.py``): receipts, an original at most once (rule 5);
* ``Link`` (``link.py``): whether the API answers (rule 7), a 429's quiet time, the server's clock;
* ``LateWatch`` (``watch.py``): every ended sale, read again for late money (rule 9);
* ``Refunding`` (``refunds.py``): refunds asked for and not yet confirmed by a read.

Ended sales the machines still follow are kept once, in the ledger, so each change is made to the latest
record and every ``Save`` journals the whole truth (a late payment never undoes a printed receipt).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from mpqr_kiosk.core import actions as act
from mpqr_kiosk.core import events as ev
from mpqr_kiosk.core import live as lv
from mpqr_kiosk.core import refunds as rf
from mpqr_kiosk.core.entry import Entry
from mpqr_kiosk.core.link import Link
from mpqr_kiosk.core.model import (
    Beep,
    CancelReason,
    Item,
    LedPattern,
    Notice,
    NoticeKind,
    Observation,
    OrderPhase,
    ReceiptState,
    Sale,
    SaleState,
    Screen,
    ScreenKind,
)
from mpqr_kiosk.core.printing import PrintQueue
from mpqr_kiosk.core.sites import Site
from mpqr_kiosk.core.timing import Clock, Timing
from mpqr_kiosk.core.watch import LateWatch

IN_USE = "a sale is in progress or the operator is keying one"
OFFLINE = "offline: no QR sales until the Mercado Pago API answers"
REFUNDABLE = (SaleState.PAID, SaleState.REVIEW)


@dataclass(frozen=True)
class View:
    """What the box shows: the screen and the LEDs."""

    screen: Screen
    leds: LedPattern


@dataclass(frozen=True)
class Status:
    """The core, read-only, for ``mpqr-kiosk status`` and systemd's status line."""

    online: bool
    busy: bool  # a sale is live or being reconciled: no new sale may start
    view: View
    sale: Sale | None  # the live sale, as journaled
    phase: str  # the live sale's phase
    seconds_left: int | None
    reconciling: tuple[str, ...]
    printing: str  # the receipt at the printer ("" if none)
    print_queue: tuple[str, ...]  # every receipt not printed yet, the one at the printer first
    printer_ok: bool
    watching: tuple[str, ...]  # ended sales still read for late payments
    refunding: tuple[str, ...]  # refunds asked for and not confirmed yet
    server_now: float = 0.0  # now on Mercado Pago's clock, once an answer said (0: not yet)


class Kiosk:
    """One point of sale: the operator's entry, at most one live sale, the receipts to print, the ended sales
    still watched and the refunds still to confirm."""

    def __init__(
        self,
        site: Site,
        catalog: Mapping[str, Item],
        clock: Clock,
        new_ids: Callable[[], tuple[str, str]],
        timing: Timing | None = None,
    ) -> None:
        self._site = site
        self._catalog = catalog
        self._clock = clock
        self._new_ids = new_ids
        self._timing = timing or Timing()
        self._entry = Entry()
        self._notice: Notice | None = None
        self._notice_until = 0.0
        self._live: lv.LiveSale | None = None
        self._backlog: tuple[Sale, ...] = ()
        self._link = Link()
        self._prints = PrintQueue()
        self._watch = LateWatch()
        self._refunds: dict[str, rf.Refunding] = {}
        self._ledger: dict[str, Sale] = {}  # ended sales the machines above still follow, as last journaled
        self._result: Screen | None = None
        self._result_until = 0.0
        self._shown: View | None = None

    # ------------------------------------------------------------------ the door

    def start(self, journaled: Iterable[Sale] = ()) -> list[act.Action]:
        """Begin with what the journal holds: unfinished sales are reconciled before any new sale (rule 6);
        receipts, watches and refunds carry on where they were."""
        actions: list[act.Action] = []
        backlog = []
        now = self._clock.monotonic()
        for sale in journaled:
            if not sale.state.final:
                backlog.append(sale)
                actions.append(act.Log(logging.INFO, f"reconciling {sale.state} sale after restart", sale.reference))
                continue
            self._ledger[sale.reference] = sale
            if sale.state is SaleState.PAID and sale.receipt is not ReceiptState.PRINTED:
                self._prints = self._prints.add(sale)
            if sale.state is SaleState.REFUNDING:
                self._refunds[sale.reference] = rf.resumed(sale.reference, now, self._timing)
            elif sale.watch_until:
                self._watch = self._watch.add(sale.reference, now)
        self._backlog = tuple(backlog)
        self._next_from_backlog()
        return actions + self._step()

    def handle(self, event: ev.Event) -> list[act.Action]:
        """Feed one event; get back what to do, in order."""
        return self._HANDLERS[type(event)](self, event) + self._step()

    def next_wakeup(self) -> float:
        """Seconds until the core needs a ``Tick`` (the shell may sleep that long when nothing happens)."""
        now = self._clock.monotonic()
        times = [t for t in (self._notice_until, self._result_until) if t > now]
        quiet = self._link.quiet_until
        if self._live:
            times += lv.wakeups(self._live, now, self._timing, quiet)
        times += [t for t in (self._link.wakeup(self._busy), self._prints.wakeup(), self._watch.wakeup())
                  if t is not None]
        times += [max(r.due, quiet) for r in self._refunds.values() if not r.out]
        times += [r.reply_by for r in self._refunds.values() if r.request_id]
        return max(0.0, min(times, default=now + 60.0) - now)

    def view(self) -> View:
        """What the display and the LEDs should show now."""
        now = self._clock.monotonic()
        return View(self._screen(now), self._leds(now))

    def status(self) -> Status:
        """The kiosk now; its ``view`` is what the last Show and Light put on the display and the LEDs."""
        live, prints = self._live, self._prints
        view = self._shown or self.view()
        return Status(
            online=self._link.online,
            busy=self._busy,
            view=view,
            sale=live.sale if live else None,
            phase=type(live.phase).__name__ if live else "",
            seconds_left=view.screen.seconds_left if live else None,
            reconciling=tuple(s.reference for s in self._backlog),
            printing=prints.printing.sale.reference if prints.printing else "",
            print_queue=prints.references,
            printer_ok=prints.printer_ok,
            watching=self._watch.references,
            refunding=tuple(self._refunds),
            server_now=self._link.server_now(self._clock.time()) if self._link.clock_known else 0.0,
        )

    # ------------------------------------------------------------------ the operator

    def _on_key(self, event: ev.Key) -> list[act.Action]:
        key = event.key
        if self._live:
            if key == ev.CLEAR and self._live.cancellable:
                return [act.Sound(Beep.KEY)] + self._cancel(CancelReason.OPERATOR)
            return [act.Sound(Beep.ERROR)]
        self._result = None
        entry: Entry | None = self._entry
        if key in ev.DIGITS:
            entry = self._entry.digit(int(key))
            if entry is not None and entry.amount > self._site.max_amount:
                self._say(NoticeKind.TOO_MUCH, self._site.format(self._site.max_amount))
                entry = None
        elif key == ev.MULTIPLY:
            entry = self._entry.multiply()
        elif key == ev.DELETE:
            entry = self._entry.delete()
        elif key == ev.CLEAR:
            entry = Entry()
        elif key == ev.ENTER and self._entry.report_asked:
            self._entry = Entry()
            return [act.Sound(Beep.KEY), act.Log(logging.INFO, "closing ticket asked for at the keypad"),
                    act.PrintReport()]
        elif key == ev.ENTER:
            return self._charge(self._entry.amount, lv.Origin.OPERATOR)
        if entry is None:
            return [act.Sound(Beep.ERROR)]
        self._entry = entry
        return [act.Sound(Beep.KEY)]

    def _on_scan(self, event: ev.Scan) -> list[act.Action]:
        if self._live:
            return [act.Sound(Beep.ERROR)]
        item = self._catalog.get(event.code)
        if item is None:
            self._say(NoticeKind.UNKNOWN_CODE, event.code)
            return [act.Sound(Beep.ERROR), act.Log(logging.WARNING, f"unknown code {event.code!r}")]
        self._result = None
        self._entry = self._entry.add(item)
        return [act.Sound(Beep.KEY)]

    def _on_bad_scan(self, event: ev.BadScan) -> list[act.Action]:
        return [act.Sound(Beep.ERROR), act.Log(logging.WARNING, f"scan refused: {event.reason}")]

    def _on_charge_requested(self, event: ev.ChargeRequested) -> list[act.Action]:
        if event.amount <= 0 or self._live or not self._entry.empty:
            reason = "the amount must be more than zero" if event.amount <= 0 else IN_USE
            return [act.Sound(Beep.ERROR), act.Log(logging.WARNING, f"remote sale refused: {reason}"),
                    *self._reply(event.request_id, False, reason)]
        return self._charge(event.amount, lv.Origin.REMOTE, event.request_id)

    def _on_cancel_requested(self, event: ev.CancelRequested) -> list[act.Action]:
        if self._live and self._live.cancellable:
            reference = self._live.sale.reference
            return self._cancel(CancelReason.REMOTE) + self._reply(event.request_id, True, reference=reference)
        return [act.Log(logging.WARNING, "cancel requested with no waiting sale"),
                *self._reply(event.request_id, False, "no sale is waiting for payment")]

    def _charge(self, keyed: int, origin: lv.Origin, request_id: str = "") -> list[act.Action]:
        """Start a sale of the entry plus ``keyed``; a refusal changes nothing the operator entered."""
        items = self._entry.lines(self._site.language, keyed)
        total = sum(item.amount for item in items)
        if total <= 0:
            return [act.Sound(Beep.ERROR), *self._reply(request_id, False, "nothing to charge")]
        if total > self._site.max_amount:
            bound = self._site.format(self._site.max_amount)
            self._say(NoticeKind.TOO_MUCH, bound)
            return [act.Sound(Beep.ERROR), act.Log(logging.WARNING, f"new sale refused: more than {bound}"),
                    *self._reply(request_id, False, f"the total is more than {bound}, the most one sale may be")]
        if self._busy:
            self._say(NoticeKind.BUSY)
            return [act.Sound(Beep.ERROR), act.Log(logging.WARNING, "new sale refused: a sale is still live"),
                    *self._reply(request_id, False, IN_USE)]
        if not self._link.online:
            self._say(NoticeKind.OFFLINE)
            return [act.Sound(Beep.ERROR), act.Log(logging.WARNING, "new sale refused: offline (rule 7)"),
                    *self._reply(request_id, False, OFFLINE)]
        reference, key = self._new_ids()
        sale = Sale(reference, key, self._site.id, items, total, self._clock.time())
        self._entry = Entry()
        self._result = None
        self._live, actions = lv.charged(sale, origin, self._context())
        return [act.Sound(Beep.KEY), *actions, *self._reply(request_id, True, reference=reference)]

    def _cancel(self, reason: CancelReason) -> list[act.Action]:
        assert self._live is not None
        self._live, actions = lv.cancel(self._live, reason, self._context())
        return actions

    # ------------------------------------------------------------------ requests about ended sales

    def _on_reprint_requested(self, event: ev.ReprintRequested) -> list[act.Action]:
        sale = self._ledger.get(event.sale.reference, event.sale)
        if sale.state is not SaleState.PAID:
            return [act.Log(logging.WARNING, f"not reprinted: the sale is {sale.state}", sale.reference),
                    *self._reply(event.request_id, False, f"sale {sale.reference} is {sale.state}, not paid")]
        self._ledger[sale.reference] = sale
        self._prints = self._prints.add(replace(sale, receipt=ReceiptState.PRINTED))
        return self._reply(event.request_id, True, reference=sale.reference)

    def _on_report_requested(self, event: ev.ReportRequested) -> list[act.Action]:
        return [act.PrintReport(event.day, event.request_id)]

    def _on_report_printed(self, event: ev.ReportPrinted) -> list[act.Action]:
        if not event.ok:
            return [act.Log(logging.ERROR, f"closing ticket not printed: {event.reason}"),
                    *self._reply(event.request_id, False, event.reason)]
        return self._reply(event.request_id, True)

    def _on_refund_requested(self, event: ev.RefundRequested) -> list[act.Action]:
        sale = self._ledger.get(event.sale.reference, event.sale)
        if sale.reference in self._refunds:
            return self._reply(event.request_id, False, f"a refund of {sale.reference} is already under way")
        if sale.state not in REFUNDABLE:
            return self._reply(event.request_id, False, f"sale {sale.reference} is {sale.state}: nothing to refund")
        now = self._clock.monotonic()
        self._refunds[sale.reference] = rf.started(sale.reference, sale.state, event.request_id, now, self._timing)
        self._watch = self._watch.forget(sale.reference)
        sale = replace(sale, state=SaleState.REFUNDING)
        self._prints = self._prints.refunded(sale.reference)
        return [self._save(sale), act.Log(logging.INFO, "refund asked for", sale.reference),
                act.Refund(sale, event.request_id)]

    def _on_refunded(self, event: ev.Refunded) -> list[act.Action]:
        refund = self._refunds.get(event.reference)
        if refund is None or not refund.out:
            return []
        self._refunds[event.reference] = replace(refund, accepted=True, out=False, failures=0,
                                                 due=self._clock.monotonic())
        return [act.Log(logging.INFO, "refund accepted; reading until Mercado Pago confirms it", event.reference)]

    def _on_refund_failed(self, event: ev.RefundFailed) -> list[act.Action]:
        refund = self._refunds.get(event.reference)
        if refund is None or not refund.out:
            return []
        now = self._clock.monotonic()
        if not event.definite:  # it may have gone through: read before anything else
            self._link = self._link.hush(now, event.retry_after, self._timing)
            self._refunds[event.reference] = rf.backed_off(refund, now, self._timing, event.retry_after)
            return [act.Log(logging.WARNING, f"refund outcome unknown ({event.reason}); will read", event.reference)]
        del self._refunds[event.reference]
        sale = replace(self._ledger[event.reference], state=refund.before)
        return [self._save(sale), act.Log(logging.ERROR, f"refund refused: {event.reason}", event.reference),
                *self._reply(refund.request_id, False, f"refund refused: {event.reason}", event.reference)]

    def _refund_read(self, refund: rf.Refunding, obs: Observation) -> list[act.Action]:
        reference, now = refund.reference, self._clock.monotonic()
        if rf.refunded(obs):
            del self._refunds[reference]
            sale = replace(self._ledger[reference], state=SaleState.REFUNDED, payments=obs.payments)
            return [self._save(sale), act.Log(logging.INFO, f"refunded {self._site.format(sale.paid_amount)}",
                                              reference), *self._reply(refund.request_id, True, reference=reference)]
        if not refund.accepted:  # no answer ever accepted it, and the money is still there: send it again
            self._refunds[reference] = replace(refund, out=True)
            return [act.Refund(self._ledger[reference], "")]
        self._refunds[reference] = rf.read_again(refund, now, self._timing)
        return []

    def _on_reconfigure(self, event: ev.Reconfigure) -> list[act.Action]:
        self._timing, self._catalog = event.timing, event.catalog
        return []

    # ------------------------------------------------------------------ the API

    def _on_hint(self, event: ev.Hint) -> list[act.Action]:
        if self._live:
            self._live = lv.hint(self._live, self._context())
        return []

    def _on_sale_answer(self, event: ev.SaleAnswer) -> list[act.Action]:
        now = self._clock.monotonic()
        if isinstance(event, ev.Observed):
            self._link = self._link.clock(event.observation.server_time, self._clock.time())
        if isinstance(event, ev.ApiUnsure):
            self._link = self._link.hush(now, event.retry_after, self._timing)
        if isinstance(event, ev.Observed | ev.ApiUnsure):
            self._watch, watched = self._watch.answered(event.reference, now, self._timing)
            if watched:
                return self._late(event.reference, event.observation) if isinstance(event, ev.Observed) else []
            refund = self._refunds.get(event.reference)
            if refund is not None and refund.out:
                if isinstance(event, ev.Observed):
                    return self._refund_read(refund, event.observation)
                self._refunds[event.reference] = rf.backed_off(refund, now, self._timing, event.retry_after)
                return []
        if isinstance(event, ev.Pushed):
            self._link = self._link.clock(event.server_time, self._clock.time())
        if self._live is None:
            return []
        result = lv.answer(self._live, event, self._context())
        if result is None:
            return []  # stale: for another sale, no request out it answers, or not fitting the phase
        outcome, actions = result
        self._link = self._link.unsure(now) if isinstance(event, ev.ApiUnsure) else self._link.answered()
        return actions + self._settle(outcome)

    def _on_connectivity(self, event: ev.Connectivity) -> list[act.Action]:
        was, now = self._link.online, self._clock.monotonic()
        link = self._link.probed(event.online, now, self._timing).clock(event.server_time, self._clock.time())
        self._link = link.hush(now, event.retry_after, self._timing)
        if was == event.online:
            return []
        if event.online:
            return [act.Log(logging.INFO, "online")]
        return [act.Log(logging.WARNING, f"offline: {event.detail}")]

    def _settle(self, outcome: lv.Outcome) -> list[act.Action]:
        """Keep a sale that is still live; otherwise do what its end asks and take the next one."""
        if isinstance(outcome, lv.LiveSale):
            self._live = outcome
            return []
        actions: list[act.Action] = []
        sale = outcome.sale
        if isinstance(outcome, lv.Refused):
            if outcome.give_back:  # nothing the operator keyed is lost: fix and charge again
                self._entry = self._entry.give_back(sale.items)
            self._say(NoticeKind.REFUSED)
        else:  # every sale that reached the POS is watched for late money, paid ones too (rule 9)
            self._ledger[sale.reference] = sale
            self._watch = self._watched(sale.reference, isinstance(outcome, lv.Paid))
            if isinstance(outcome, lv.Paid):
                self._prints = self._prints.add(sale)
            self._show_result(ScreenKind.PAID if isinstance(outcome, lv.Paid) else outcome.screen, sale)
        self._live = None
        self._next_from_backlog()
        return actions

    def _watched(self, reference: str, paid: bool) -> LateWatch:
        """A paid sale is looked at again a while after it is printed (a second payment); any other ended sale
        is read through the cancel grace (unless the final read already spent it), then every late_interval."""
        now, t, live = self._clock.monotonic(), self._timing, self._live
        if paid:
            return self._watch.add(reference, now + t.late_interval)
        grace = live.phase.grace_until if live and isinstance(live.phase, lv.FinalRead) else now + t.cancel_grace
        return self._watch.add(reference, now + t.poll_interval, grace)

    def _late(self, reference: str, obs: Observation) -> list[act.Action]:
        """A late look at an ended sale: money that arrives after the end is never lost; a watch ends only
        after a read made once it was over."""
        sale = self._ledger[reference]
        over = (obs.server_time or self._link.server_now(self._clock.time())) >= sale.watch_until
        total, approved = sale.total, obs.approved
        actions: list[act.Action] = []
        if sale.state in (SaleState.CANCELLED, SaleState.EXPIRED) and approved:
            if obs.phase is OrderPhase.CLOSED and approved == total:
                paid = obs.last_approved()
                sale = replace(sale, state=SaleState.PAID, paid_amount=approved, payments=obs.payments,
                               payment_id=paid.id if paid else "", paid_at=obs.server_time or sale.watch_until)
                self._prints = self._prints.add(sale)
                late = f"paid after it ended ({sale.cancel_reason}): printing the receipt now"
                actions += [self._save(sale), act.Sound(Beep.PAID), act.Log(logging.ERROR, late, reference)]
            else:
                actions += self._late_review(sale, obs, f"{approved} approved of {total} after the sale ended")
        elif sale.state is SaleState.PAID and approved > total:
            actions += self._late_review(sale, obs, f"{approved} approved for a paid total of {total}")
        elif sale.state is SaleState.REVIEW and obs.payments != sale.payments:
            actions.append(self._save(replace(sale, paid_amount=approved, payments=obs.payments)))
        elif over and obs.in_review and sale.state in (SaleState.CANCELLED, SaleState.EXPIRED):
            actions += self._late_review(sale, obs, "a payment was still in review when the watch ended")
        if over:
            self._watch = self._watch.forget(reference)
            actions.append(self._save(replace(self._ledger[reference], watch_until=0.0)))
            self._prune(reference)
        return actions

    def _late_review(self, sale: Sale, obs: Observation, why: str) -> list[act.Action]:
        sale = replace(sale, state=SaleState.REVIEW, paid_amount=obs.approved, payments=obs.payments)
        if self._live is None:
            self._show_result(ScreenKind.REVIEW, sale)
        else:
            self._say(NoticeKind.REVIEW, sale.reference)
        return [self._save(sale), act.Log(logging.ERROR, f"{why}: needs review", sale.reference)]

    # ------------------------------------------------------------------ printing

    def _on_printed(self, event: ev.Printed) -> list[act.Action]:
        job = self._prints.printing
        self._prints, done = self._prints.printed(event.reference)
        if done is None or job is None:
            return []
        latest = self._ledger.get(event.reference, done)
        sale = replace(latest, receipt=ReceiptState.PRINTED, copies=latest.copies + job.copy)
        actions = [self._save(sale)]
        self._prune(event.reference)
        return actions

    def _on_print_failed(self, event: ev.PrintFailed) -> list[act.Action]:
        retry_at = self._clock.monotonic() + self._timing.print_retry
        self._prints, job = self._prints.failed(event.reference, event.started, retry_at)
        if job is None:
            return []
        actions: list[act.Action] = []
        if not event.started and not job.copy:  # nothing printed: the original is still due
            actions.append(self._save(replace(self._ledger.get(event.reference, job.sale),
                                              receipt=ReceiptState.NONE)))
        return actions + [act.Log(logging.ERROR, f"receipt not printed, queued: {event.reason}", event.reference)]

    def _on_tick(self, event: ev.Tick) -> list[act.Action]:
        return []

    _HANDLERS: dict[type, Callable[[Kiosk, ev.Event], list[act.Action]]] = {
        ev.Key: _on_key,
        ev.Scan: _on_scan,
        ev.BadScan: _on_bad_scan,
        ev.Tick: _on_tick,
        ev.ChargeRequested: _on_charge_requested,
        ev.CancelRequested: _on_cancel_requested,
        ev.ReprintRequested: _on_reprint_requested,
        ev.RefundRequested: _on_refund_requested,
        ev.ReportRequested: _on_report_requested,
        ev.ReportPrinted: _on_report_printed,
        ev.Reconfigure: _on_reconfigure,
        ev.Hint: _on_hint,
        ev.Pushed: _on_sale_answer,
        ev.PushRefused: _on_sale_answer,
        ev.ApiUnsure: _on_sale_answer,
        ev.Observed: _on_sale_answer,
        ev.CancelSent: _on_sale_answer,
        ev.Refunded: _on_refunded,
        ev.RefundFailed: _on_refund_failed,
        ev.Printed: _on_printed,
        ev.PrintFailed: _on_print_failed,
        ev.Connectivity: _on_connectivity,
    }

    # ------------------------------------------------------------------ what is due

    def _step(self) -> list[act.Action]:
        """Whatever is due now, then the screen and LEDs if they changed."""
        now = self._clock.monotonic()
        quiet = self._link.quiet(now)
        actions: list[act.Action] = []
        if self._live:
            outcome, due = lv.step(self._live, self._context())
            actions += due + self._settle(outcome)
        if not quiet:
            self._watch, watched = self._watch.due(now, self._timing)
            if watched:
                actions.append(act.Read(self._ledger[watched]))
            actions += self._refund_requests(now)
        if self._link.due(now, self._busy):
            self._link = self._link.probing()
            actions.append(act.Probe())
        actions += self._refund_replies(now)
        self._prints, job = self._prints.start(now)
        if job is not None:
            sale = replace(self._ledger.get(job.sale.reference, job.sale), receipt=job.sale.receipt)
            actions += ([] if job.copy else [self._save(sale)]) + [act.Print(sale, copy=job.copy)]
        view = View(self._screen(now), self._leds(now))
        if self._shown is None or view.screen != self._shown.screen:
            actions.append(act.Show(view.screen))
        if self._shown is None or view.leds != self._shown.leds:
            actions.append(act.Light(view.leds))
        self._shown = view
        return actions

    def _refund_requests(self, now: float) -> list[act.Action]:
        actions: list[act.Action] = []
        for reference, refund in list(self._refunds.items()):
            if now >= refund.until:
                del self._refunds[reference]
                sale = replace(self._ledger[reference], state=SaleState.REVIEW)
                why = "refund not confirmed by Mercado Pago in time: check it there"
                actions += [self._save(sale), act.Log(logging.ERROR, f"{why}: needs review", reference),
                            *self._reply(refund.request_id, False, why, reference)]
            elif not refund.out and now >= refund.due:
                self._refunds[reference] = replace(refund, out=True)
                sale = self._ledger[reference]
                actions.append(act.Read(sale) if refund.next_request() == "read" else act.Refund(sale, ""))
        return actions

    def _refund_replies(self, now: float) -> list[act.Action]:
        """A refund taking long is answered before it is confirmed (``status`` keeps showing it)."""
        actions: list[act.Action] = []
        for reference, refund in self._refunds.items():
            if refund.request_id and now >= refund.reply_by and refund.accepted:
                self._refunds[reference] = replace(refund, request_id="")
                actions += self._reply(refund.request_id, True, "Mercado Pago is still processing the refund",
                                       reference)
        return actions

    @property
    def _busy(self) -> bool:
        """A sale is live or an old one is being reconciled: no new sale may start (rule 1)."""
        return self._live is not None or bool(self._backlog)

    def _next_from_backlog(self) -> None:
        if self._live is None and self._backlog:
            sale, self._backlog = self._backlog[0], self._backlog[1:]
            self._live = lv.resumed(sale, self._context())
            self._result = None

    def _save(self, sale: Sale) -> act.Save:
        """Journal ``sale``; an ended one is kept in the ledger while a machine still follows it."""
        if sale.state.final:
            self._ledger[sale.reference] = sale
        return act.Save(sale)

    def _prune(self, reference: str) -> None:
        followed = (reference in self._watch.references or reference in self._prints.references
                    or reference in self._refunds)
        if not followed:
            self._ledger.pop(reference, None)

    def _context(self) -> lv.Context:
        now = self._clock.monotonic()
        return lv.Context(now, self._link.server_now(self._clock.time()), self._timing, self._site,
                          quiet=self._link.quiet(now))

    def _reply(self, request_id: str, ok: bool, reason: str = "", reference: str = "") -> list[act.Action]:
        return [act.Reply(request_id, ok, reason, reference)] if request_id else []

    def _say(self, kind: NoticeKind, detail: str = "") -> None:
        self._notice = Notice(kind, detail)
        self._notice_until = self._clock.monotonic() + self._timing.result_seconds

    def _show_result(self, kind: ScreenKind, sale: Sale) -> None:
        self._result = Screen(kind, sale.items, sale.total, reference=sale.reference)
        hold = self._timing.review_seconds if kind is ScreenKind.REVIEW else self._timing.result_seconds
        self._result_until = self._clock.monotonic() + hold

    # ------------------------------------------------------------------ the view

    def _screen(self, now: float) -> Screen:
        notice = self._notice if now < self._notice_until else None
        live = self._live
        if live:
            sale = live.sale
            left = max(0, int(live.expires - now + 0.999))
            base = dict(items=sale.items, total=sale.total, reference=sale.reference, notice=notice)
            if sale.state is SaleState.CANCELLING:
                return Screen(ScreenKind.CANCELLED, **base)
            if not self._link.online and live.failures >= 2:  # one blip keeps the QR up
                return Screen(ScreenKind.OFFLINE, **base)
            if now < live.rejected_until:
                return Screen(ScreenKind.REJECTED, seconds_left=left, **base)
            if live.attempted:
                return Screen(ScreenKind.CUSTOMER_PAYING, seconds_left=left, **base)
            counting = isinstance(live.phase, lv.Waiting) and not live.unread
            return Screen(ScreenKind.PAY, seconds_left=left if counting else None, **base)
        if self._result and now < self._result_until:
            return self._result
        entry = self._entry
        if not entry.empty:
            return Screen(ScreenKind.ENTERING, entry.items, entry.total, entry.amount, entry.quantity, notice=notice)
        if not self._link.online:
            return Screen(ScreenKind.OFFLINE, notice=notice)
        if not self._prints.printer_ok and self._prints.references:
            return Screen(ScreenKind.PRINTER_PROBLEM, notice=notice)
        return Screen(ScreenKind.READY, notice=notice)

    def _leds(self, now: float) -> LedPattern:
        if self._live:
            return LedPattern.WAITING if self._link.online or self._live.failures < 2 else LedPattern.TROUBLE
        if self._result and now < self._result_until and self._result.kind in (ScreenKind.PAID, ScreenKind.REVIEW):
            return LedPattern.PAID if self._result.kind is ScreenKind.PAID else LedPattern.REVIEW
        if not self._link.online or not self._prints.printer_ok:
            return LedPattern.TROUBLE
        return LedPattern.READY
