"""``mpqr-kiosk certify``: the technician's live validation of the attended model on an account with test
users, the seven events Mercado Pago asks integrators to show:

1. a scan before the order waits (the waiting app gets the order once it is put on the POS),
2. a scan after the order shows its checkout,
3. an approved payment closes the order,
4. a rejected payment keeps the order on the POS,
5. a second attempt, without scanning again, is approved,
6. a refund,
7. a cancel when the customer pays cash.

The technician plays the test buyer with the Mercado Pago app; each outcome is decided by reading the API,
never by what the technician says (Enter only paces the steps that the API cannot see, such as a scan with
no order on the POS). The daemon must be stopped: certify puts its own orders on the POS, cancels those
left open, and keeps its progress in ``certify.json`` in the state directory so that an interrupted run
resumes. The report (``certify-report.md`` and ``.json`` beside it) names each event's order and payment
ids, which Mercado Pago asks for; the token never appears in it.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from mpqr_kiosk import __version__, exits
from mpqr_kiosk import config as cfg
from mpqr_kiosk.assemble import backend_of, display_of
from mpqr_kiosk.control import request
from mpqr_kiosk.core.model import Item, Observation, OrderPhase, Sale, SaleState, Screen, ScreenKind
from mpqr_kiosk.core.sites import Site, site
from mpqr_kiosk.mercadopago import answers
from mpqr_kiosk.mercadopago.errors import ApiError, BadResponse
from mpqr_kiosk.mercadopago.http import HttpClient
from mpqr_kiosk.ports import Backend
from mpqr_kiosk.redact import redact_all
from mpqr_kiosk.token import load_token

EVENTS = {
    1: "a scan before the order waits",
    2: "a scan after the order shows its checkout",
    3: "an approved payment closes the order",
    4: "a rejected payment keeps the order on the POS",
    5: "a second attempt is approved",
    6: "a refund",
    7: "a cancel when the customer pays cash",
}
# What the technician is asked to do (tests play the buyer on these words).
SCAN_BEFORE = "scan the QR now with the test buyer's app: no order is on the POS, the app must wait; then press Enter"
PAY_APPROVED = "pay it in the app with a test card that is APPROVED"
SCAN_REJECTED = "scan the QR now: the app shows the checkout of {total}; pay with the test card that is REJECTED"
SAY_REJECTED = "once the app says the payment was rejected, press Enter"
PAY_AGAIN = "pay again in the app, without scanning, with a test card that is APPROVED"
SCAN_CASH = "scan the QR now: the app shows the checkout of {total}; the customer pays cash instead: press Enter"
STATE_FILE, REPORT_FILE = "certify.json", "certify-report"
AMOUNTS = {"A": 15, "B": 27, "C": 32}  # small, different totals in whole units (x100 where there are no cents)


class Failed(Exception):
    """An event's outcome is not what Mercado Pago requires."""


@dataclass
class Run:
    """One certification run: the API, what is asked of the technician, and the progress on disk."""

    backend: Backend
    site: Site
    pos: str
    path: Path  # certify.json
    ask: Callable[[str], None]  # show a step and wait for Enter
    say: Callable[[str], None]
    show: Callable[[Screen], None]
    timeout: float
    poll: float
    orders_api: bool  # the Orders API shows no rejected attempt

    def load(self) -> dict:
        """The progress saved by an interrupted run; a fresh start when there is none or it is not ours."""
        try:
            progress = json.loads(self.path.read_text())
        except (OSError, ValueError, RecursionError):
            progress = None
        if not isinstance(progress, dict) or not all(isinstance(progress.get(k), dict) for k in ("events", "orders")):
            return {"events": {}, "orders": {}}
        return progress

    def save(self, progress: dict) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(progress, indent=2))
        tmp.replace(self.path)

    def sale(self, progress: dict, act: str) -> Sale:
        """The act's order: the one already put (a resumed run), else a new one."""
        reference = progress["orders"].get(act) or f"{self.pos}-cert{act}{secrets.token_hex(6)}"
        progress["orders"][act] = reference
        self.save(progress)
        total = AMOUNTS[act] * (10 ** self.site.decimals if self.site.decimals else 100)
        item = Item("Certificação" if self.site.language == "pt" else "Certificación", total)
        return Sale(reference, reference + "-key", self.site.id, (item,), total, time.time(), ttl=900.0)

    def put(self, progress: dict, act: str, sale: Sale) -> Sale:
        """The act's order on the POS (a resumed run finds it there: an in-store read cannot tell an order
        never put from one nobody scanned yet, so what was put is in the progress file)."""
        put = progress.setdefault("put", {})
        if act not in put:
            put[act] = self.backend.push(sale, sale.ttl).order_id
            self.save(progress)
        return replace(sale, order_id=put[act], state=SaleState.WAITING)

    def read(self, sale: Sale) -> Observation:
        return self.backend.read(sale)

    def until(self, sale: Sale, done: Callable[[Observation], bool], what: str) -> Observation:
        """Read the order until ``done``; an order that left the POS or the time running out fails."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                seen = self.read(sale)
            except ApiError as exc:
                seen = None
                self.say(f"  (Mercado Pago did not answer: {exc}; reading again)")
            if seen is not None and done(seen):
                return seen
            if seen is not None and seen.phase in (OrderPhase.CANCELLED, OrderPhase.EXPIRED, OrderPhase.ABSENT):
                raise Failed(f"the order left the POS ({seen.phase}) while waiting for {what}")
            if time.monotonic() >= deadline:
                raise Failed(f"no {what} within {self.timeout:.0f} s")
            time.sleep(self.poll)


def _closed(total: int) -> Callable[[Observation], bool]:
    return lambda o: o.phase is OrderPhase.CLOSED and o.approved == total


def _ids(sale: Sale, seen: Observation) -> dict:
    return {"reference": sale.reference, "order_id": seen.order_id or sale.order_id,
            "payments": [{"id": p.id, "status": str(p.status), "amount": p.amount} for p in seen.payments]}


def act_a(run: Run, progress: dict) -> dict[int, dict]:
    """Events 1 and 3: a buyer who scanned before the order pays it once it is on the POS."""
    sale = run.sale(progress, "A")
    run.show(Screen(ScreenKind.READY))
    run.ask(SCAN_BEFORE)
    sale = run.put(progress, "A", sale)
    run.show(Screen(ScreenKind.PAY, sale.items, sale.total, reference=sale.reference))
    run.say(f"the order of {run.site.format(sale.total)} is on the POS: the waiting app shows it now; {PAY_APPROVED}")
    seen = run.until(sale, _closed(sale.total), "approved payment")
    ids = _ids(sale, seen)
    return {1: {"detail": "the app that scanned before the order paid it", **ids},
            3: {"detail": f"closed with {run.site.format(seen.approved)} approved", **ids}}


def act_b(run: Run, progress: dict) -> dict[int, dict]:
    """Events 2, 4 and 5: a scan after the order, a rejected payment that keeps it, an approved retry."""
    sale = run.put(progress, "B", run.sale(progress, "B"))
    run.show(Screen(ScreenKind.PAY, sale.items, sale.total, reference=sale.reference))
    run.say(SCAN_REJECTED.format(total=run.site.format(sale.total)))
    if run.orders_api:  # the Orders API shows no rejected attempt: the technician says when it happened
        run.ask(SAY_REJECTED)
        seen = run.read(sale)
    else:
        seen = run.until(sale, lambda o: o.rejected > 0 or o.phase is not OrderPhase.OPEN, "rejected payment")
    time.sleep(run.poll)  # an order Mercado Pago takes off the POS goes right after the rejection
    if seen.phase is not OrderPhase.OPEN or not run.backend.on_pos(sale):
        raise Failed(f"after the rejected payment the order is {seen.phase} and not still on the POS (event 4)")
    rejected = _ids(sale, seen)
    run.say(PAY_AGAIN)
    seen = run.until(sale, _closed(sale.total), "approved second attempt")
    ids = _ids(sale, seen)
    progress["refund"] = {"reference": sale.reference, "order_id": ids["order_id"], "payments": ids["payments"]}
    return {2: {"detail": "a scan after the order reached its checkout and paid it", **ids},
            4: {"detail": "the order stayed on the POS after the rejection", **rejected},
            5: {"detail": f"the retry closed it with {run.site.format(seen.approved)} approved", **ids}}


def act_refund(run: Run, progress: dict) -> dict[int, dict]:
    """Event 6: the approved payment of event 5 refunded in full."""
    paid = progress.get("refund")
    if not paid:
        raise Failed("no approved payment to refund (event 5 did not pass)")
    sale = replace(run.sale(progress, "B"), order_id=paid["order_id"])
    seen = run.read(sale)
    sale = replace(sale, state=SaleState.PAID, payments=seen.payments,
                   payment_id=(seen.last_approved().id if seen.last_approved() else ""), paid_amount=seen.approved)
    if seen.refunded < sale.total:
        try:
            run.backend.refund(sale)
        except ApiError as exc:
            raise Failed(f"Mercado Pago refused the refund: {exc} (refunds may not be testable with test "
                         "credentials: see the report)") from exc
    seen = run.until(sale, lambda o: o.refunded >= sale.total or o.phase is OrderPhase.REFUNDED, "confirmed refund")
    return {6: {"detail": f"{run.site.format(sale.total)} refunded", **_ids(sale, seen)}}


def act_c(run: Run, progress: dict) -> dict[int, dict]:
    """Event 7: the order cancelled when the customer pays cash."""
    sale = run.put(progress, "C", run.sale(progress, "C"))
    run.show(Screen(ScreenKind.PAY, sale.items, sale.total, reference=sale.reference))
    run.ask(SCAN_CASH.format(total=run.site.format(sale.total)))
    if not run.backend.on_pos(sale):
        raise Failed("the order was not on the POS when the customer scanned")
    run.backend.cancel(sale)
    seen = run.read(sale)
    if run.backend.on_pos(sale) or seen.approved:
        raise Failed(f"after the cancel the order is still on the POS or took money ({seen.phase})")
    run.show(Screen(ScreenKind.CANCELLED, sale.items, sale.total))
    return {7: {"detail": "the order is gone from the POS; the app says so", **_ids(sale, seen)}}


ACTS: list[tuple[str, tuple[int, ...], Callable[[Run, dict], dict[int, dict]]]] = [
    ("A", (1, 3), act_a), ("B", (2, 4, 5), act_b), ("R", (6,), act_refund), ("C", (7,), act_c)]


def run(args: argparse.Namespace) -> int:
    try:
        config = cfg.load(args.config)
        token = load_token(config.mercadopago, config.path)
    except cfg.ConfigError as exc:
        sys.stderr.write(f"mpqr-kiosk: {exc}\n")
        return exits.CONFIG
    mp = config.mercadopago
    try:
        request(config.control.socket, {"command": "status"}, timeout=2.0)
    except OSError:
        pass  # no daemon: the POS is ours
    else:
        sys.stderr.write("mpqr-kiosk certify: the daemon is running and owns the POS; stop it first: "
                         "sudo systemctl stop mpqr-kiosk\n")
        return exits.CHECK
    backend = backend_of(mp, token, config.shop.name)
    try:
        me = answers.mapping(HttpClient(mp.api_base, token).request("GET", "/users/me"), "GET /users/me",
                             "the account")
    except BadResponse as exc:
        sys.stderr.write(f"mpqr-kiosk certify: {exc.plain()}; try again\n")
        return exits.TEMPFAIL
    except ApiError as exc:
        sys.stderr.write(f"mpqr-kiosk certify: Mercado Pago did not answer: {exc}\n")
        return exits.TEMPFAIL
    tags = me.get("tags")
    test = token.startswith("TEST-") or answers.text(me.get("nickname")).upper().startswith("TEST") \
        or isinstance(tags, list) and "test_user" in tags
    user_id = me.get("id") if isinstance(me.get("id"), int) and not isinstance(me.get("id"), bool) else mp.user_id
    if not test and not args.production:
        sys.stderr.write("mpqr-kiosk certify: this token is a production account's; certify with test "
                         "credentials or a test user, or add --production to do it with real money\n")
        return exits.CHECK
    state = Path(config.state.dir)
    state.mkdir(parents=True, exist_ok=True)
    display = _display(config, site(mp.site))
    out = sys.stdout

    def say(text: str) -> None:
        out.write(redact_all(text) + "\n")
        out.flush()

    def ask(text: str) -> None:
        say(f"→ {text}")
        if not sys.stdin.readline():
            raise KeyboardInterrupt

    the_run = Run(backend, site(mp.site), mp.external_pos_id, state / STATE_FILE, ask, say, display,
                  args.step_timeout, min(1.0, mp.poll_interval * 5), mp.api == "orders")
    if args.restart:
        the_run.path.unlink(missing_ok=True)
    progress = the_run.load()
    results: dict[str, dict] = progress["events"]
    say(f"mpqr-kiosk certify {__version__}: the attended model on POS {mp.external_pos_id} ({mp.site}, "
        f"{mp.api} API, user {user_id}){' — resuming' if results else ''}")
    try:
        for act, events, play in ACTS:
            if all(str(n) in results and results[str(n)]["result"] == "passed" for n in events):
                continue
            say(f"events {', '.join(map(str, events))}: {'; '.join(EVENTS[n] for n in events)}")
            try:
                done = play(the_run, progress)
                for number, outcome in done.items():
                    results[str(number)] = {"result": "passed", **outcome}
                    say(f"  event {number} passed: {outcome['detail']}")
            except (Failed, ApiError) as exc:
                for number in events:
                    if results.get(str(number), {}).get("result") != "passed":
                        results[str(number)] = {"result": "failed", "detail": str(exc)}
                say(f"  FAILED: {exc}")
            _cleanup(the_run, progress, act)
            the_run.save(progress)
    except KeyboardInterrupt:
        the_run.save(progress)
        say("interrupted: run `mpqr-kiosk certify` again to resume")
        return exits.TEMPFAIL
    passed = sum(1 for n in EVENTS if results.get(str(n), {}).get("result") == "passed")
    _report(state, mp, user_id, results)
    the_run.path.unlink(missing_ok=True)
    say(f"{passed} of {len(EVENTS)} events passed; report: {state / (REPORT_FILE + '.md')}")
    return exits.OK if passed == len(EVENTS) else exits.CHECK


def _cleanup(run: Run, progress: dict, act: str) -> None:
    """An order the act left on the POS is cancelled (the refund act reuses act B's paid one)."""
    if act == "R" or act not in progress.get("put", {}):
        return
    sale = replace(run.sale(progress, act), order_id=progress["put"][act])
    try:
        if run.read(sale).phase is OrderPhase.OPEN:
            run.backend.cancel(sale)
    except ApiError as exc:
        run.say(f"  (could not cancel the order {sale.reference}: {exc}; cancel it in Mercado Pago)")


def _display(config: cfg.Config, the_site: Site) -> Callable[[Screen], None]:
    try:
        display = display_of(config.display, the_site, config.mercadopago.qr_payload)
    except Exception as exc:  # noqa: BLE001 - certify goes on without the display; the terminal says it all
        sys.stderr.write(f"mpqr-kiosk certify: the display is not usable ({exc}); going on without it\n")
        return lambda screen: None

    def show(screen: Screen) -> None:
        try:
            display.show(screen)
        except Exception:  # noqa: BLE001,S110 - a display fault must not stop the certification
            pass

    return show


def _report(state: Path, mp: cfg.MercadoPagoConfig, user_id: int, results: dict) -> None:
    data = {"version": __version__, "site": mp.site, "api": mp.api, "user_id": user_id,
            "pos": mp.external_pos_id, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "events": [{"number": n, "event": EVENTS[n], **results.get(str(n), {"result": "not run"})}
                       for n in EVENTS]}
    text = json.dumps(data, indent=2, ensure_ascii=False)
    (state / (REPORT_FILE + ".json")).write_text(redact_all(text) + "\n")
    lines = [f"# mpqr-kiosk certification — POS {mp.external_pos_id}, {mp.site}, {mp.api} API",
             "", f"mpqr-kiosk {__version__}, user {data['user_id']}, {data['finished']}", "",
             "| # | event | result | order | payments | detail |", "|---|---|---|---|---|---|"]
    for event in data["events"]:
        payments = ", ".join(f"{p['id']} ({p['status']})" for p in event.get("payments", []))
        lines.append(f"| {event['number']} | {event['event']} | {event['result']} | {event.get('order_id', '')} "
                     f"| {payments} | {event.get('detail', '')} |")
    (state / (REPORT_FILE + ".md")).write_text(redact_all("\n".join(lines)) + "\n")
