"""The imperative shell: carries out the core's actions on the adapters and feeds their results back.

One thread runs the core (``Runtime.step``); the API and the printer each get a worker thread so a slow
request or a slow printer never freezes the keypad or the display. Journal writes happen inline, in
order, before any action that follows them (rule 2).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

from mpqr_kiosk import report, retention
from mpqr_kiosk.core import actions as act
from mpqr_kiosk.core import events as ev
from mpqr_kiosk.core.kiosk import Kiosk, Status
from mpqr_kiosk.core.model import Observation, OrderPhase, Sale, Shop
from mpqr_kiosk.core.sites import Site
from mpqr_kiosk.journal import Journal
from mpqr_kiosk.mercadopago.errors import ApiError
from mpqr_kiosk.ports import Backend, Display, Indicators, InputSource, Printer, PrinterError
from mpqr_kiosk.receipt import build_closing_ticket, build_receipt

log = logging.getLogger(__name__)
HEARTBEAT = 1.0  # seconds between the Ticks that keep the core loop going whatever its queue does


class SystemClock:
    """The real clocks."""

    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)


@dataclass
class Devices:
    """The adapters behind each port (real or fake, as the config chose)."""

    display: Display
    printer: Printer
    leds: Indicators
    inputs: list[InputSource] = field(default_factory=list)

    def close(self) -> None:
        for source in self.inputs:
            source.stop()
        for device in (self.leds, self.display, self.printer):
            try:
                device.close()
            except Exception:  # noqa: BLE001 - closing must reach every device
                log.exception("closing %s failed", type(device).__name__)


class Worker:
    """A thread that runs jobs one at a time and posts each job's resulting event."""

    def __init__(self, name: str, post: Callable[[ev.Event], None]):
        self.jobs: queue.Queue[Callable[[], ev.Event] | None] = queue.Queue()
        self.post = post
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def submit(self, job: Callable[[], ev.Event]) -> None:
        self.jobs.put(job)

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            try:
                result = job()
            except Exception:  # a job's own bug must not stop the worker every later job needs
                log.exception("%s: a job failed", self.thread.name)
                continue
            self.post(result)

    def stop(self, timeout: float = 5.0) -> None:
        self.jobs.put(None)
        self.thread.join(timeout)


def api_job(backend: Backend, action: act.ApiRequest | act.Probe | act.Refund) -> ev.Event:
    """Carry out one API action; turn the answer or the error into the event the core expects."""
    if isinstance(action, act.Probe):
        try:
            server_time = backend.probe()
        except ApiError as exc:
            return ev.Connectivity(False, str(exc), retry_after=exc.retry_after)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the API is not usable now
            return ev.Connectivity(False, type(exc).__name__)
        return ev.Connectivity(True, server_time=server_time)
    sale = action.sale
    if isinstance(action, act.Refund):
        try:
            backend.refund(sale)
        except ApiError as exc:
            return ev.RefundFailed(sale.reference, str(exc), action.request_id, definite=not exc.indeterminate,
                                   retry_after=exc.retry_after)
        except Exception as exc:  # noqa: BLE001 - an answer our code did not expect: the outcome is unknown
            log.exception("sale %s: refund failed unexpectedly", sale.reference)
            return ev.RefundFailed(sale.reference, f"unexpected {type(exc).__name__}", action.request_id,
                                   definite=False)
        return ev.Refunded(sale.reference, action.request_id)
    try:
        if isinstance(action, act.Push):
            pushed = backend.push(sale, action.ttl)
            return ev.Pushed(sale.reference, pushed.order_id, pushed.server_time)
        if isinstance(action, act.Recover):
            return ev.Observed(sale.reference, backend.recover(sale, action.ttl))
        if isinstance(action, act.Read):
            return ev.Observed(sale.reference, backend.read(sale))
        backend.cancel(sale)
        return ev.CancelSent(sale.reference)
    except ApiError as exc:
        if isinstance(action, act.Push) and not exc.indeterminate:
            return ev.PushRefused(sale.reference, str(exc))
        return ev.ApiUnsure(sale.reference, str(exc), exc.retry_after)
    except Exception as exc:  # an answer our code did not expect: the outcome is unknown, never a refusal
        log.exception("sale %s: %s failed unexpectedly", sale.reference, type(action).__name__.lower())
        return ev.ApiUnsure(sale.reference, f"unexpected {type(exc).__name__}")


class Runtime:
    """Runs the core against real or fake adapters. Other threads talk to it only through ``post`` (an
    event), ``ask`` (an event, then the core's ``Reply``) and ``status`` (the core's latest ``Status``)."""

    def __init__(self, kiosk: Kiosk, backend: Backend, journal: Journal, devices: Devices, shop: Shop, site: Site,
                 zone: tzinfo | None = None, retention_days: int = 400):
        self.kiosk = kiosk
        self.backend = backend
        self.journal = journal
        self.devices = devices
        self.shop = shop
        self.site = site
        self.zone = zone  # the shop's time zone (None: the system's), for the day of a closing ticket
        self.retention_days = retention_days
        self._next_prune = 0.0  # monotonic: the journal is pruned once the API has said the time, then daily
        self.events: queue.SimpleQueue[ev.Event] = queue.SimpleQueue()  # put() is safe from a signal handler
        self.api = Worker("mp-api", self.post)
        self.printer = Worker("printer", self.post)
        self.last_errors: list[str] = []
        self.status: Status = kiosk.status()  # refreshed after every step, read from any thread
        self._waiting: dict[str, queue.Queue[act.Reply]] = {}
        self._waiting_lock = threading.Lock()
        self._stopping = threading.Event()
        threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True).start()

    def _heartbeat(self) -> None:
        """A Tick every second, whatever else happens. CPython 3.11's ``SimpleQueue.get(timeout=...)`` can miss
        its deadline and wait for the next ``put`` however long (_queuemodule.c: once it has taken the lock of an
        empty queue, a remainder already below zero is passed on as "block forever"); the soak caught a live sale
        frozen that way with no event to come. A ``put`` ends such a wait."""
        while not self._stopping.wait(HEARTBEAT):
            self.events.put(ev.Tick())

    def post(self, event: ev.Event) -> None:
        """Hand an event to the core (from any thread)."""
        self.events.put(event)

    def ask(self, request: Callable[[str], ev.Event], timeout: float = 10.0) -> act.Reply:
        """Post the event ``request(request_id)`` and wait for the core's ``Reply`` to it (from any thread but
        the core's). ``queue.Empty`` when no answer came in ``timeout`` seconds."""
        request_id = uuid.uuid4().hex[:12]
        answer: queue.Queue[act.Reply] = queue.Queue(maxsize=1)
        with self._waiting_lock:
            self._waiting[request_id] = answer
        try:
            self.post(request(request_id))
            return answer.get(timeout=timeout)
        finally:
            with self._waiting_lock:
                self._waiting.pop(request_id, None)

    def start(self) -> None:
        for source in self.devices.inputs:
            source.start()
        self.dispatch(self.kiosk.start(self.journal.unfinished()))

    def step(self, timeout: float = 1.0) -> None:
        """Wait for one event (or the core's next deadline), handle it, carry out the actions."""
        wait = min(timeout, self.kiosk.next_wakeup())
        try:  # nothing due yet: wait; due now: only look (a timed get of 0 is where CPython's slip is likeliest)
            event = self.events.get(timeout=wait) if wait > 0 else self.events.get_nowait()
        except queue.Empty:
            event = ev.Tick()
        if not isinstance(event, ev.Tick):
            _log_event(event)
        self.dispatch(self.kiosk.handle(event))
        if self.status.server_now and time.monotonic() >= self._next_prune:  # by Mercado Pago's clock, not ours
            self._next_prune = time.monotonic() + retention.DAY
            try:
                retention.prune(self.journal, self.zone, self.site.id, self.retention_days, self.status.server_now)
            except Exception:  # noqa: BLE001 - pruning can wait a day; selling cannot
                log.exception("journal: pruning old sales failed")

    def run_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Step until ``done()`` or ``timeout`` seconds pass; return whether ``done()`` held."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.step(left)
        return True

    def dispatch(self, actions: list[act.Action]) -> None:
        for action in actions:
            self._do(action)
        self.status = self.kiosk.status()

    def _do(self, action: act.Action) -> None:
        match action:
            case act.Save(sale):
                self.journal.save(sale)
                log.info("sale %s: %s, receipt %s, total %s", sale.reference, sale.state, sale.receipt,
                         self.site.format(sale.total))
            case act.Push() | act.Recover() | act.Read() | act.Cancel() | act.Refund() | act.Probe():
                if not isinstance(action, act.Probe):  # routine reads only at debug: one a second adds up
                    log.log(logging.DEBUG if isinstance(action, act.Read) else logging.INFO, "sale %s: %s",
                            action.sale.reference, type(action).__name__.lower())
                self.api.submit(lambda action=action: api_job(self.backend, action))
            case act.Print(sale, copy):
                log.info("sale %s: printing the receipt%s", sale.reference, " (COPY)" if copy else "")
                self.printer.submit(lambda sale=sale, copy=copy: self._print(sale, copy))
            case act.PrintReport(day, request_id):
                log.info("printing the closing ticket of %s", day or "today")
                self.printer.submit(lambda day=day, request_id=request_id: self._print_report(day, request_id))
            case act.Show(screen):
                self.devices.display.show(screen)
            case act.Light(pattern):
                self.devices.leds.show(pattern)
            case act.Sound(beep):
                self.devices.leds.beep(beep)
            case act.Log(level, message, reference):
                if level >= logging.ERROR:
                    self.last_errors = [*self.last_errors[-9:], message]
                log.log(level, "sale %s: %s" if reference else "%s%s", reference, message)
            case act.Reply():
                with self._waiting_lock:
                    waiter = self._waiting.get(action.request_id)
                if waiter is not None:
                    waiter.put(action)

    def _print(self, sale: Sale, copy: bool) -> ev.Event:
        """Check the printer can print (where it can say), print, and ask again; a failure leaves it queued."""
        printer = self.devices.printer
        try:
            if problem := printer.status().problem:
                return ev.PrintFailed(sale.reference, problem, started=False)
            paid_at = datetime.fromtimestamp(sale.paid_at) if sale.paid_at else datetime.now()
            printer.print(build_receipt(sale, self.shop, self.site, paid_at, copy))
            after = printer.status()  # an Epson that runs out of paper mid-job goes offline: the job "succeeded"
        except PrinterError as exc:
            return ev.PrintFailed(sale.reference, str(exc), exc.started)
        except Exception as exc:  # an unexpected failure may have printed part of it: only a COPY may follow
            log.exception("sale %s: printing failed unexpectedly", sale.reference)
            return ev.PrintFailed(sale.reference, str(exc) or type(exc).__name__)
        if after.problem:
            return ev.PrintFailed(sale.reference, "the printer went offline or ran out of paper during the receipt")
        return ev.Printed(sale.reference)

    def _print_report(self, day: date | None, request_id: str) -> ev.Event:
        """The day's closing ticket from the journal, on the receipt printer (after any receipt before it)."""
        day = day or datetime.now(self.zone).date()
        try:
            days = report.of_journal(self.journal, self.zone, day, day, self.site.id)
            today = next(d for d in days if d.site == self.site.id)
            if problem := self.devices.printer.status().problem:
                return ev.ReportPrinted(False, problem, request_id)
            self.devices.printer.print(build_closing_ticket(today, self.shop, self.site, datetime.now(self.zone)))
        except PrinterError as exc:
            return ev.ReportPrinted(False, str(exc), request_id)
        except Exception as exc:  # noqa: BLE001 - a report must never take the printer worker down
            log.exception("the closing ticket failed")
            return ev.ReportPrinted(False, str(exc) or type(exc).__name__, request_id)
        return ev.ReportPrinted(True, request_id=request_id)

    def stop(self) -> None:
        self._stopping.set()
        self.api.stop()
        self.printer.stop()
        self.devices.close()
        self.journal.close()


def _log_event(event: ev.Event) -> None:
    reference = getattr(event, "reference", "")
    if isinstance(event, ev.Observed):
        obs: Observation = event.observation
        detail = (f"{obs.phase}, approved={obs.approved}, payments={len(obs.payments)}"
                  f"{', one in review' if obs.in_review else ''}")
        level = logging.DEBUG if obs.phase is OrderPhase.OPEN and not obs.payments else logging.INFO
        log.log(level, "sale %s: observed %s", reference, detail)
    elif isinstance(event, ev.Key | ev.Scan):
        log.debug("input %s", event)
    elif reference:
        log.info("sale %s: %s", reference, event)
    else:
        log.info("%s", event)
