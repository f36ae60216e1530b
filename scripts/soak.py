"""Soak the real daemon: many sales through ``mpqr-kiosk run`` subprocesses against the emulator, with random
buyers (approved, rejected then approved, in review and decided minutes later, paying after the cancel, two
phones on one QR, partial and over payments), random operator cancels, Mercado Pago expiring orders, random
faults at every endpoint (timeouts, 5xx, 429, resets, garbage, empty 200s, applied then reset), and kill -9 at
random moments, mid-print included; then check the money.

It ends with one line: ``soak: N sales, P paid, 0 lost paid, 0 second originals, 0 double orders,
0 unaccounted approvals, max T s to a final state``.

Lanes run side by side, each one daemon on its own POS and emulator, cycling through the in-store API under
each merchant-order mode and the Orders API. Everything binds 127.0.0.1. ``tests/test_random_sales.py`` runs a
short seeded soak; ``scripts/soak --sales 2000`` is the long one.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import harness

from mpqr_kiosk.emulator.faults import OPS, Fault
from mpqr_kiosk.emulator.printer import LoopbackPrinter
from mpqr_kiosk.emulator.server import EmulatorServer
from mpqr_kiosk.emulator.state import Emulator
from mpqr_kiosk.journal import Journal

FLAVOURS = [("instore", "at_create"), ("instore", "at_scan"), ("instore", "at_payment"), ("orders", "at_create")]
EVERYWHERE = ["approve", "reject_approve", "review_approve", "review_reject_cancel", "review_cancel_approve",
              "cancel", "race"]
INSTORE_ONLY = ["late_after_cancel", "double", "partial", "over"]
# Mercado Pago expiring an order early: the box sees it at once where an expired merchant order or order says
# so; under at_scan and at_payment nothing does, and the box waits out its own time to live (bounded, slow).
EXPIRE_SEEN = {("instore", "at_create"), ("orders", "at_create")}
TIMING = 'cancel_grace = "1s"\nlate_watch = "8s"'
LIVE_LIMIT = 90.0  # seconds a sale may stay live before the soak calls it wedged
# What a network and Mercado Pago do wrong (issue 11): an answer late (within the client's read timeout) or never
# (past it), 5xx, 429, a reset before or after the operation was applied, garbage, an empty 200.
REFERENCE = re.compile(rb"POS001-[0-9a-f]{16}")
FAULT_KINDS = ["timeout", "http500", "http503", "http429", "reset", "malformed", "empty"]


@dataclass
class Outcome:
    reference: str
    total: int
    scenario: str
    seconds: float  # from the sale's start to no live sale


@dataclass
class Lane:
    number: int
    api: str
    mode: str
    folder: Path
    rng: random.Random
    kill_chance: float
    fault_chance: float
    outcomes: list[Outcome] = field(default_factory=list)
    kills: int = 0
    faults: int = 0
    cut_receipts: set[str] = field(default_factory=set)  # sales whose receipt a kill -9 cut short
    blind_cuts: int = 0  # receipts a kill -9 cut short before their reference was printed
    problems: list[str] = field(default_factory=list)
    shoppers: str = ""
    reviving: threading.Lock = field(default_factory=threading.Lock)

    def open(self) -> None:
        self.emulator = Emulator(site="MLB", user_id=123456789, merchant_order=self.mode)
        self.server = EmulatorServer(self.emulator).start()
        self.printer = LoopbackPrinter().up()
        config = harness.write_config(self.folder, self.emulator, self.server.url, self.printer, poll="100ms",
                                      ttl="30s", api=self.api, extra=TIMING)
        self.daemon = harness.Daemon(self.folder, config)

    def close(self) -> None:
        self.daemon.stop()
        self.server.stop()
        self.printer.down()

    # -- the driver ------------------------------------------------------------------------------------

    def run(self, sales: int) -> None:
        try:
            for _ in range(sales):
                self.one_sale()
        except Exception as exc:  # noqa: BLE001 - a lane's crash is a finding, reported with the rest
            self.problems.append(f"lane {self.number}: {type(exc).__name__}: {exc}")
            sys.stderr.write(f"  lane {self.number} stopped after {len(self.outcomes)} sales: {self.problems[-1]}\n")

    def one_sale(self) -> None:
        scenarios = EVERYWHERE + (INSTORE_ONLY if self.api == "instore" else [])
        scenarios += ["expire"] if (self.api, self.mode) in EXPIRE_SEEN else []
        scenario = self.rng.choice(scenarios)
        total = self.rng.randint(100, 9999)
        self.fault()
        started = time.monotonic()
        reference = self.start_sale(total)
        self.shoppers = reference  # this sale's buyers: a phone that paid an earlier sale does not pay again
        if self.rng.random() < self.kill_chance * 4:
            self.printer.on_receipt = self.kill_mid_print
        self.until(lambda: self.state(reference) != "pushing", LIVE_LIMIT, "the order on the POS")
        getattr(self, f"_{scenario}")()
        self.until(lambda: not self.live(), LIVE_LIMIT, f"{reference} ({scenario}) to end")
        self.outcomes.append(Outcome(reference, total, scenario, time.monotonic() - started))

    def start_sale(self, total: int) -> str:
        amount = f"{total // 100}.{total % 100:02d}"
        deadline = time.monotonic() + LIVE_LIMIT  # offline while faults on the probe last, or reconciling
        while time.monotonic() < deadline:
            answer = self.control("sale", amount=amount)
            if answer and answer.get("ok"):
                return answer["reference"]
            time.sleep(0.1)  # offline for a moment, or the restarted daemon still reconciling
        raise RuntimeError(f"no sale could start: {answer}")

    # -- what the buyer, the operator and Mercado Pago do ------------------------------------------------

    def _approve(self) -> None:
        self.pause()
        self.buyer("pay", "approved")

    def _reject_approve(self) -> None:
        self.buyer("pay", "rejected")
        self.pause()
        self.buyer("pay", "approved")

    def _review_approve(self) -> None:
        payment = self.in_review()
        self.pause(1.5)
        self.decide(payment, "approved")

    def _review_reject_cancel(self) -> None:
        payment = self.in_review()
        self.pause()
        self.decide(payment, "rejected")
        self.cancel()

    def _review_cancel_approve(self) -> None:
        payment = self.in_review()
        self.cancel()
        self.until(lambda: not self.live(), LIVE_LIMIT, "the cancel")
        self.pause(1.0)
        self.decide(payment, "approved")  # decided minutes later, after the sale ended

    def _cancel(self) -> None:
        self.pause()
        self.cancel()

    def _race(self) -> None:
        racer = threading.Thread(target=self.buyer, args=("pay", "approved"))
        self.cancel()
        racer.start()
        racer.join()

    def _expire(self) -> None:
        self.pause()
        self.buyer("expire")

    def _late_after_cancel(self) -> None:
        self.buyer("scan", phone="late")
        self.cancel()
        self.until(lambda: not self.live(), LIVE_LIMIT, "the cancel")
        self.pause()
        self.buyer("pay", "approved", phone="late")

    def _double(self) -> None:
        self.buyer("scan", phone="a")
        self.buyer("scan", phone="b")
        self.buyer("pay", "approved", phone="a")
        self.pause()
        self.buyer("pay", "approved", phone="b")

    def _partial(self) -> None:
        total = self.outcome_total()
        self.buyer("pay", "approved", amount=max(1, total - self.rng.randint(1, total - 1)))
        self.pause()
        self.cancel()

    def _over(self) -> None:
        self.buyer("pay", "approved", amount=self.outcome_total() + self.rng.randint(1, 500))

    # -- helpers ----------------------------------------------------------------------------------------

    def pause(self, most: float = 0.6) -> None:
        time.sleep(self.rng.uniform(0, most))
        self.fault()
        if self.rng.random() < self.kill_chance:
            self.kill()

    def fault(self) -> None:
        """Now and then, arm a fault on a random endpoint for its next one to three requests."""
        if self.rng.random() >= self.fault_chance:
            return
        op, kind = self.rng.choice(OPS), self.rng.choice(FAULT_KINDS)
        delay = 11.0 if self.rng.random() < 0.1 else self.rng.uniform(0.2, 2.0)  # past the 10 s read timeout
        if any(armed["op"] == op for armed in self.emulator.faults.armed()):
            return  # one spell of trouble per endpoint: a probe once a minute must not meet a queue of them
        self.emulator.faults.arm(Fault(op, kind, count=self.rng.randint(1, 3), after=self.rng.random() < 0.5,
                                       delay=delay, retry_after=self.rng.randint(0, 1)))
        self.faults += 1

    def kill(self) -> None:
        with self.reviving:
            self.kills += 1
            self.daemon.kill9()
            self.note_cut(self.printer.in_progress)
            self.restart()

    def note_cut(self, partial: bytes) -> None:
        """A random kill -9 may land mid-print too: note whose receipt it cut short (if one was printing)."""
        if partial:
            found = REFERENCE.search(partial)
            if found:
                self.cut_receipts.add(found.group().decode())
            else:
                self.blind_cuts += 1

    def kill_mid_print(self, receipt: bytes) -> bool:
        """kill -9 once a receipt's reference is printed and before its cut (on the printer's thread); the lane's
        next look starts the daemon again."""
        found = REFERENCE.search(receipt)
        if not found:
            return False
        self.cut_receipts.add(found.group().decode())
        self.kills += 1
        self.daemon.process.kill()
        return True

    def revive(self) -> None:
        """Start the daemon again if a kill mid-print left it dead."""
        with self.reviving:
            if self.daemon.process.poll() is not None:
                self.daemon.notify.sock.close()
                self.restart()

    def restart(self) -> None:
        """Start the daemon after a random moment; a kill mid-print during its start means starting again."""
        for _ in range(5):
            time.sleep(self.rng.uniform(0, 0.5))
            try:
                self.daemon.start()
                return
            except SystemExit:
                self.daemon.notify.sock.close()
        log = (self.folder / "daemon.log").read_text(errors="replace").splitlines()[-5:]
        raise RuntimeError(f"lane {self.number}: the daemon would not start again: " + " | ".join(log))

    def buyer(self, action: str, result: str = "approved", phone: str = "buyer", amount: int | None = None) -> None:
        phone = f"{self.shoppers}/{phone}"
        try:
            if action == "scan":
                self.emulator.scan("POS001", phone=phone)
            elif action == "expire":
                self.emulator.expire("POS001")
            else:
                self.emulator.pay("POS001", result, amount=amount, phone=phone)
        except Exception:  # noqa: BLE001 - nothing to pay (already paid, cancelled): a buyer too late
            pass

    def in_review(self) -> str | None:
        try:
            answer = self.emulator.pay("POS001", "in_process", phone=f"{self.shoppers}/buyer")
        except Exception:  # noqa: BLE001 - no order on the POS (its push failed): nothing to pay
            return None
        if "payment" in answer:
            return str(answer["payment"]["id"])
        return answer["order"]["transactions"]["payments"][0]["id"]

    def decide(self, payment: str | None, result: str) -> None:
        if payment is None:
            return
        try:
            self.emulator.decide(payment, result)
        except Exception:  # noqa: BLE001 - the order was cancelled first (Orders API): nothing in review
            pass

    def cancel(self) -> None:
        if self.rng.random() < 0.5:
            self.revive()
            try:
                self.daemon.key("C")  # the operator's key
            except OSError:  # killed mid-print a moment ago: the operator presses it again
                self.revive()
                self.daemon.key("C")
        else:
            self.control("cancel")

    def outcome_total(self) -> int:
        status = self.control("status")
        sale = (status or {}).get("sale") or {}
        digits = "".join(ch for ch in sale.get("total", "R$ 1,00") if ch.isdigit())
        return int(digits or 100)

    def control(self, command: str, **fields) -> dict | None:
        self.revive()
        try:
            return self.daemon.control(command, **fields)
        except OSError:
            return None  # down for a moment (a kill): the caller tries again

    def live(self) -> bool:
        status = self.control("status")
        return status is None or bool(status.get("sale") or status.get("reconciling"))

    def state(self, reference: str) -> str | None:
        journal = Journal(self.folder / "state")
        try:
            sale = journal.get(reference)
        finally:
            journal.close()
        return sale.state.value if sale else None

    def until(self, done, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            self.revive()  # a kill mid-print may come at any moment, while the lane only reads the journal
            if time.monotonic() > deadline:
                log = (self.folder / "daemon.log").read_text(errors="replace").splitlines()[-8:]
                raise RuntimeError(f"lane {self.number}: timed out waiting for {what}; the daemon's last lines:\n    "
                                   + "\n    ".join(log))
            time.sleep(0.05)

    # -- the money, checked -----------------------------------------------------------------------------

    def settled(self) -> bool:
        status = self.control("status")
        return bool(status) and not (status["sale"] or status["print_queue"] or status["refunding"]
                                     or status["watching"])

    def audit(self) -> dict[str, int]:
        journal = Journal(self.folder / "state")
        counts = dict(paid=0, lost=0, originals=0, orders=0, unaccounted=0)
        blind = self.blind_cuts
        try:
            state = self.emulator.snapshot()
            for outcome in self.outcomes:
                ref = outcome.reference
                sale = journal.get(ref)
                approved = self.approved(state, ref)
                originals = self.printer.originals(ref)
                copies = self.printer.copies(ref)
                made = (sum(1 for o in state["orders"] if o["external_reference"] == ref) if self.api == "orders"
                        else self.emulator.instore.orders_put(ref))
                journaled = sale.state.value if sale else "missing"
                counts["paid"] += journaled == "paid"
                if approved == sale.total and journaled != "paid" and journaled != "review":
                    counts["lost"] += 1
                    self.problems.append(f"{ref} ({outcome.scenario}): {approved} approved, journal says {journaled}")
                # a receipt cut short by a kill -9 is printed again marked COPY (PRODUCT.md): that is its one receipt
                whole = originals == 1 or (originals == 0 and copies >= 1 and ref in self.cut_receipts)
                if not whole and originals == 0 and copies >= 1 and blind > 0:
                    whole, blind = True, blind - 1  # cut short before its reference reached the paper
                if journaled == "paid" and not whole:
                    counts["lost" if originals == 0 else "originals"] += 1
                    self.problems.append(f"{ref} ({outcome.scenario}): paid with {originals} original receipts "
                                         f"and {copies} copies")
                elif originals > 1:
                    counts["originals"] += 1
                    self.problems.append(f"{ref} ({outcome.scenario}): {originals} original receipts")
                if made > 1:
                    counts["orders"] += 1
                    self.problems.append(f"{ref} ({outcome.scenario}): {made} orders made")
                accounted = (journaled == "paid" and approved == sale.total) or journaled == "review" or not approved
                if not accounted:
                    counts["unaccounted"] += 1
                    self.problems.append(f"{ref} ({outcome.scenario}, {self.api} {self.mode}): {approved} approved of "
                                         f"{sale.total}, journal says {journaled}; {self.payments(state, ref)}")
        finally:
            journal.close()
        return counts

    def payments(self, state: dict, reference: str) -> list[tuple[str, str]]:
        """Every payment Mercado Pago has for the sale: (status, amount)."""
        mos = [mo for mo in state["merchant_orders"] if mo["external_reference"] == reference]
        orders = [o for o in state["orders"] if o["external_reference"] == reference]
        return ([(p["status"], str(p["transaction_amount"])) for mo in mos for p in mo["payments"]]
                + [(o["status"], str(o.get("total_paid_amount"))) for o in orders])

    def approved(self, state: dict, reference: str) -> int:
        site = self.emulator.site
        mos = [mo for mo in state["merchant_orders"] if mo["external_reference"] == reference]
        approved = sum(site.from_api(p["transaction_amount"]) for mo in mos for p in mo["payments"]
                       if p["status"] == "approved")
        orders = [o for o in state["orders"] if o["external_reference"] == reference and o["status"] == "processed"]
        return approved + sum(site.from_api(o["total_paid_amount"]) for o in orders)


def soak(sales: int, seed: int, lanes: int, kill_chance: float, folder: Path,
         fault_chance: float = 0.2) -> tuple[str, list[str], list[str]]:
    """Run the soak; return its summary line, notes on the run, and the problems found (each failing sale)."""
    rng = random.Random(seed)
    runners = []
    for number in range(lanes):
        api, mode = FLAVOURS[number % len(FLAVOURS)]
        lane_dir = folder / f"lane{number}"
        lane_dir.mkdir(parents=True)
        runners.append(Lane(number, api, mode, lane_dir, random.Random(rng.random()), kill_chance, fault_chance))
    for lane in runners:
        lane.open()
    share = [sales // lanes + (i < sales % lanes) for i in range(lanes)]
    threads = [threading.Thread(target=lane.run, args=(n,)) for lane, n in zip(runners, share, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for lane in runners:
        lane.emulator.faults.clear()  # what is still armed would only slow the settling
    deadline = time.monotonic() + 60  # late decisions are found by the watch; then every watch ends
    while time.monotonic() < deadline and not all(lane.settled() for lane in runners):
        time.sleep(0.5)
    totals = dict(paid=0, lost=0, originals=0, orders=0, unaccounted=0)
    problems: list[str] = []
    for lane in runners:
        for key, value in lane.audit().items():
            totals[key] += value
        problems += lane.problems
        lane.close()
    outcomes = [(o, lane) for lane in runners for o in lane.outcomes]
    slowest = max(outcomes, key=lambda pair: pair[0].seconds, default=None)
    kills = sum(lane.kills for lane in runners)
    mid_print = sum(len(lane.cut_receipts) for lane in runners)
    faults = sum(lane.faults for lane in runners)
    line = (f"soak: {len(outcomes)} sales, {totals['paid']} paid, {totals['lost']} lost paid, {totals['originals']} "
            f"second originals, {totals['orders']} double orders, {totals['unaccounted']} unaccounted approvals, "
            f"max {slowest[0].seconds if slowest else 0:.1f} s to a final state")
    notes = [f"{kills} kill -9 across {lanes} lanes ({mid_print} mid-print), {faults} faults armed"]
    if slowest:
        notes.append(f"slowest: {slowest[0].reference} ({slowest[0].scenario}, {slowest[1].api} {slowest[1].mode})")
    if len(outcomes) < sales:
        problems.append(f"only {len(outcomes)} of {sales} sales ran")
    return line, notes, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sales", type=int, default=200, help="how many sales (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="the random seed: the same seed, the same soak")
    parser.add_argument("--lanes", type=int, default=8, help="daemons running side by side (default: %(default)s)")
    parser.add_argument("--kills", type=float, default=0.05, help="chance of a kill -9 at each pause")
    parser.add_argument("--faults", type=float, default=0.2, help="chance of arming a fault at each pause")
    parser.add_argument("--keep", metavar="DIR", help="run in DIR and keep it (each lane's config, journal, log)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mpqr-soak-") as tmp:
        folder = Path(args.keep or tmp)
        line, notes, problems = soak(args.sales, args.seed, args.lanes, args.kills, folder, args.faults)
    for text in notes + problems:
        sys.stderr.write(f"  {text}\n")
    sys.stdout.write(line + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
