"""One point of sale: the small machines of the core, composed, behind one door.

``Kiosk.handle(event)`` returns the actions the shell must carry out, in order; ``status()`` and ``view()``
are read-only values; ``next_wakeup()`` says when the core next needs a ``Tick``. Nothing here does I/O or
reads the time except through the injected clock, and nothing outside ``core/`` touches the attributes.

The machines, each a frozen value with its own explicit state:

* ``Entry`` (``entry.py``): what the operator has keyed and scanned;
* ``LiveSale`` (``live.py``): at most one sale on the POS (rule 1), in one of five phases;
* the backlog: unfinished sales from the journal, reconciled one by one before any new sale (rule 6);
* ``PrintQueue`` (``printing.py``): receipts, an original at most once (rule 5);
* ``Link`` (``link.py``): whether the API answers (rule 7);
* ``LateWatch`` (``watch.py``): ended sales a customer may still pay;
* refunds asked for and not yet answered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from mpqr_kiosk.core import actions as act
from mpqr_kiosk.core import events as ev
from mpqr_kiosk.core import live as lv
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
    watching: tuple[str, ...]  # ended sales still looked at for late payments
    refunding: tuple[str, ...]


class Kiosk:
    """One point of sale: the operator's entry, at most one live sale, and the receipts to print."""

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
        self._refunds: dict[str, tuple[Sale, str]] = {}  # reference -> (sale, request id)
        self._result: Screen | None = None
        self._result_until = 0.0
        self._shown: View | None = None

    # ------------------------------------------------------------------ the door

    def start(self, journaled: Iterable[Sale] = ()) -> list[act.Action]:
        """Begin with what the journal holds: unfinished sales are reconciled before any new sale (rule 6)."""
        actions: list[act.Action] = []
        backlog = []
        for sale in journaled:
            if not sale.state.final:
                backlog.append(sale)
                actions.append(act.Log(logging.INFO, f"reconciling {sale.state} sale after restart", sale.reference))
            elif sale.state is SaleState.PAID and sale.receipt is not ReceiptState.PRINTED:
                self._prints = self._prints.add(sale)
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
        if self._live:
            times += lv.wakeups(self._live, now)
        times += [t for t in (self._link.wakeup(self._busy), self._prints.wakeup(), self._watch.wakeup())
                  if t is not None]
        return max(0.0, min(times, default=now + 60.0) - now)

    def view(self) -> View:
        """What the display and the LEDs should show now."""
        now = self._clock.monotonic()
        return View(self._screen(now), self._leds(now))

    def status(self) -> Status:
        live, prints = self._live, self._prints
        view = self.view()
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
        elif key == ev.MULTIPLY:
            entry = self._entry.multiply()
        elif key == ev.DELETE:
            entry = self._entry.delete()
        elif key == ev.CLEAR:
            entry = Entry()
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
            return [act.Sound(Beep.ERROR), act.Log(logging.WARNING, "remote sale refused: the kiosk is in use"),
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
        sale = event.sale
        if sale.state is not SaleState.PAID:
            return [act.Log(logging.WARNING, f"not reprinted: the sale is {sale.state}", sale.reference),
                    *self._reply(event.request_id, False, f"sale {sale.reference} is {sale.state}, not paid")]
        self._prints = self._prints.add(replace(sale, receipt=ReceiptState.PRINTED))
        return self._reply(event.request_id, True, reference=sale.reference)

    def _on_refund_requested(self, event: ev.RefundRequested) -> list[act.Action]:
        sale = event.sale
        if sale.state is not SaleState.PAID:
            return self._reply(event.request_id, False, f"sale {sale.reference} is {sale.state}, not paid")
        if sale.reference in self._refunds:
            return self._reply(event.request_id, False, f"a refund of {sale.reference} is already under way")
        self._refunds[sale.reference] = (sale, event.request_id)
        return [act.Refund(sale, event.request_id)]

    def _on_refunded(self, event: ev.Refunded) -> list[act.Action]:
        asked = self._refunds.pop(event.reference, None)
        if asked is None:
            return []
        sale, request_id = asked
        job = self._prints.printing
        queued = [s for s in self._prints.waiting if s.reference == sale.reference]
        latest = job.sale if job and job.sale.reference == sale.reference else queued[0] if queued else sale
        sale = replace(latest, state=SaleState.REFUNDED)
        self._prints = self._prints.refunded(sale.reference)
        return [act.Save(sale), act.Log(logging.INFO, f"refunded {self._site.format(sale.paid_amount)}",
                                        sale.reference), *self._reply(request_id, True, reference=sale.reference)]

    def _on_refund_failed(self, event: ev.RefundFailed) -> list[act.Action]:
        asked = self._refunds.pop(event.reference, None)
        if asked is None:
            return []
        return [act.Log(logging.ERROR, f"refund failed: {event.reason}", event.reference),
                *self._reply(asked[1], False, f"refund failed: {event.reason}", event.reference)]

    def _on_reconfigure(self, event: ev.Reconfigure) -> list[act.Action]:
        self._timing, self._catalog = event.timing, event.catalog
        return []

    # ------------------------------------------------------------------ the API

    def _on_hint(self, event: ev.Hint) -> list[act.Action]:
        if self._live:
            self._live = lv.hint(self._live, self._context())
        return []

    def _on_sale_answer(self, event: ev.SaleAnswer) -> list[act.Action]:
        if isinstance(event, ev.Observed | ev.ApiUnsure):
            self._watch, watched = self._watch.answered(event.reference)
            if watched is not None:
                return self._late(watched, event.observation) if isinstance(event, ev.Observed) else []
        if self._live is None:
            return []
        result = lv.answer(self._live, event, self._context())
        if result is None:
            return []  # stale: for another sale, no request out it answers, or not fitting the phase
        outcome, actions = result
        if isinstance(event, ev.ApiUnsure):
            self._link = self._link.unsure(self._clock.monotonic())
        else:
            self._link = self._link.answered()
        return actions + self._settle(outcome)

    def _on_connectivity(self, event: ev.Connectivity) -> list[act.Action]:
        was = self._link.online
        self._link = self._link.probed(event.online, self._clock.monotonic(), self._timing)
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
        sale = outcome.sale
        if isinstance(outcome, lv.Paid):
            self._prints = self._prints.add(sale)
            self._show_result(ScreenKind.PAID, sale)
        elif isinstance(outcome, lv.Unpaid):
            if outcome.watch:
                now = self._clock.monotonic()
                self._watch = self._watch.add(sale, now + self._timing.late_watch, now, self._timing.late_interval)
            self._show_result(outcome.screen, sale)
        else:
            if outcome.give_back:  # nothing the operator keyed is lost: fix and charge again
                self._entry = self._entry.give_back(sale.items)
            self._say(NoticeKind.REFUSED)
        self._live = None
        self._next_from_backlog()
        return []

    def _late(self, sale: Sale, obs: Observation) -> list[act.Action]:
        """A late look at an ended sale: money that arrived after the end is never lost."""
        if not obs.approved:
            return []
        self._watch = self._watch.forget(sale.reference)
        if obs.phase is OrderPhase.CLOSED and obs.approved == sale.total:
            approved = obs.last_approved()
            sale = replace(sale, state=SaleState.PAID, paid_amount=obs.approved,
                           payment_id=approved.id if approved else "", paid_at=obs.server_time or self._clock.time())
            self._prints = self._prints.add(sale)
            late = f"paid after it ended ({sale.cancel_reason}): printing the receipt now"
            return [act.Save(sale), act.Sound(Beep.PAID), act.Log(logging.ERROR, late, sale.reference)]
        sale = replace(sale, state=SaleState.REVIEW)
        return [act.Save(sale), act.Log(logging.ERROR, f"{obs.approved} approved after the sale ended: needs review",
                                        sale.reference)]

    # ------------------------------------------------------------------ printing

    def _on_printed(self, event: ev.Printed) -> list[act.Action]:
        self._prints, sale = self._prints.printed(event.reference)
        if sale is None:
            return []
        if sale.reference in self._refunds:
            self._refunds[sale.reference] = (sale, self._refunds[sale.reference][1])
        return [act.Save(sale)]

    def _on_print_failed(self, event: ev.PrintFailed) -> list[act.Action]:
        retry_at = self._clock.monotonic() + self._timing.print_retry
        self._prints, job = self._prints.failed(event.reference, event.started, retry_at)
        if job is None:
            return []
        actions: list[act.Action] = [act.Save(job.sale)] if not event.started and not job.copy else []
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
        actions: list[act.Action] = []
        if self._live:
            self._live, due = lv.step(self._live, self._context())
            actions += due
        self._watch, watched = self._watch.due(now, self._timing.late_interval)
        if watched is not None:
            actions.append(act.Read(watched))
        if self._link.due(now, self._busy):
            self._link = self._link.probing()
            actions.append(act.Probe())
        self._prints, job = self._prints.start(now)
        if job is not None:
            actions += ([] if job.copy else [act.Save(job.sale)]) + [act.Print(job.sale, copy=job.copy)]
        view = View(self._screen(now), self._leds(now))
        if self._shown is None or view.screen != self._shown.screen:
            actions.append(act.Show(view.screen))
        if self._shown is None or view.leds != self._shown.leds:
            actions.append(act.Light(view.leds))
        self._shown = view
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

    def _context(self) -> lv.Context:
        return lv.Context(self._clock.monotonic(), self._clock.time(), self._timing, self._site)

    def _reply(self, request_id: str, ok: bool, reason: str = "", reference: str = "") -> list[act.Action]:
        return [act.Reply(request_id, ok, reason, reference)] if request_id else []

    def _say(self, kind: NoticeKind, detail: str = "") -> None:
        self._notice = Notice(kind, detail)
        self._notice_until = self._clock.monotonic() + self._timing.result_seconds

    def _show_result(self, kind: ScreenKind, sale: Sale) -> None:
        self._result = Screen(kind, sale.items, sale.total, reference=sale.reference)
        self._result_until = self._clock.monotonic() + self._timing.result_seconds

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
            if live.scanned:
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
        if self._result and now < self._result_until and self._result.kind is ScreenKind.PAID:
            return LedPattern.PAID
        if not self._link.online or not self._prints.printer_ok:
            return LedPattern.TROUBLE
        return LedPattern.READY
