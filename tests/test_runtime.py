"""The assembled kiosk against the emulator: faults at push, poll and cancel never double-push or lose a
paid sale, Retry-After is honoured, the request rate is bounded, and the display and LEDs tell the truth."""

import queue
import threading
import time

import pytest
from flavours import FLAVOURS, cancels, creates, ids, on_pos, orders_made
from gpiozero import Device
from rig import Rig

from mpqr_kiosk.control import Commands
from mpqr_kiosk.core import events as ev
from mpqr_kiosk.core.model import SaleState
from mpqr_kiosk.emulator.server import EmulatorServer
from mpqr_kiosk.emulator.state import Emulator

KINDS = ["timeout", "http500", "http503", "http429", "reset", "malformed", "http409"]


EVERY_API = pytest.mark.parametrize("flavour", FLAVOURS, ids=ids)


@pytest.fixture
def rig(flavour, tmp_path):
    """The assembled kiosk against an emulator in ``flavour``'s merchant-order mode, on its API."""
    emulator = Emulator(site="MLB", user_id=123456789, merchant_order=flavour[1])
    with EmulatorServer(emulator) as server:
        emulator.url = server.url
        rig = Rig(emulator, tmp_path, api=flavour[0])
        rig.api = flavour[0]
        yield rig
        rig.stop()
        Device.pin_factory.reset()


def pay_and_expect_one_receipt(rig, reference):
    rig.emulator.pay("POS001", "approved")
    assert rig.printed(reference), f"not printed: {rig.journal.get(reference)}"
    sale = rig.journal.get(reference)
    assert sale.state is SaleState.PAID and sale.paid_amount == sale.total and sale.copies == 0
    assert rig.receipt_bytes().count(reference.encode()) >= 1
    assert rig.receipt_bytes().count(b"\x1dV") == 1  # exactly one receipt cut


@EVERY_API
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("after", [True, False], ids=["applied", "not-applied"])
def test_fault_at_push_never_double_pushes(rig, kind, after):
    rig.emulator.inject("push", kind, after=after, delay=1.0, retry_after=1)
    reference = rig.charge()
    assert rig.waiting(reference)
    if kind == "timeout":
        time.sleep(1.0)  # the slow create is logged when its handler ends
    if rig.api == "instore":
        # applied: the read-back found the order, so no second create; not applied: exactly one more
        assert creates(rig.emulator) == (1 if after else 2)
        assert rig.requests("GET", "/merchant_orders/search")  # resolved by reading back
        assert on_pos(rig.emulator) == reference
    else:  # resolved by replaying the same key and body: the API answers with the first order
        assert creates(rig.emulator) == 2 and orders_made(rig.emulator, reference) == 1
    pay_and_expect_one_receipt(rig, reference)


@EVERY_API
@pytest.mark.parametrize("kind", KINDS)
def test_fault_at_poll_loses_no_paid_sale(rig, kind):
    reference = rig.charge()
    assert rig.waiting(reference)
    rig.emulator.inject("read", kind, count=2, delay=1.0, retry_after=1)
    rig.emulator.pay("POS001", "approved")
    assert rig.printed(reference, timeout=20)
    assert rig.journal.get(reference).state is SaleState.PAID
    assert "offline" in rig.frames()  # the display said the API was not answering meanwhile
    assert creates(rig.emulator) == 1


@EVERY_API
@pytest.mark.parametrize("kind", KINDS)
def test_fault_at_cancel_still_cancels(rig, kind):
    reference = rig.charge()
    assert rig.waiting(reference)
    rig.emulator.inject("cancel", kind, after=False, delay=1.0, retry_after=1)
    rig.keys("C")
    assert rig.until(lambda: rig.state(reference) is SaleState.CANCELLED, 20)
    if kind == "timeout":
        time.sleep(1.0)  # the slow cancel is logged when its handler ends
    assert cancels(rig.emulator) >= 2  # the failed cancel was sent again
    assert on_pos(rig.emulator) is None


def test_retry_after_is_honoured(rig):
    reference = rig.charge()
    assert rig.waiting(reference)
    rig.emulator.inject("read", "http429", retry_after=2)
    assert rig.until(lambda: any(r.get("fault") for r in rig.emulator.requests()), 5)
    rig.until(lambda: False, 2.5)
    reads = [r for r in rig.requests("GET", "/merchant_orders/search")]
    limited = next(i for i, r in enumerate(reads) if r.get("fault"))
    assert reads[limited + 1]["t"] - reads[limited]["t"] >= 2.0


def test_request_rate_is_bounded_while_waiting(rig):
    reference = rig.charge()
    assert rig.waiting(reference)
    before = len(rig.emulator.requests())
    rig.until(lambda: False, 2.0)
    made = len(rig.emulator.requests()) - before
    assert 5 <= made <= 2.0 / 0.1 + 2  # polls at the interval: never more, and it does keep polling


def test_payment_that_races_the_cancel_wins_and_prints(rig):
    reference = rig.charge()
    assert rig.waiting(reference)
    rig.emulator.scan("POS001")
    rig.emulator.inject("cancel", "timeout", after=False, delay=0.3)
    rig.keys("C")  # the operator cancels...
    rig.emulator.pay("POS001", "approved")  # ...while the customer's payment goes through
    assert rig.printed(reference)
    assert rig.journal.get(reference).state is SaleState.PAID


@pytest.mark.parametrize("emulator", ["at_payment"], indirect=True)  # no merchant order tells it has expired
def test_expiry_cancels_and_rereads(emulator, tmp_path):
    rig = Rig(emulator, tmp_path, order_ttl="30s")
    try:
        rig.reconfigure(ttl=1.0, poll_interval=0.1)
        reference = rig.charge()
        assert rig.until(lambda: rig.state(reference) is SaleState.EXPIRED, 10)
        deletes = rig.requests("DELETE", "/orders")
        reads_after = [r for r in rig.requests("GET", "/merchant_orders/search") if r["t"] >= deletes[0]["t"]]
        assert deletes and reads_after  # cancelled on the POS, then read once more before giving up
        assert "expired" in rig.frames()
    finally:
        rig.stop()


def test_offline_refuses_new_sales_and_lights_red(emulator, tmp_path):
    rig = Rig(emulator, tmp_path)
    try:
        rig.runtime.post(ev.Connectivity(False, "test"))
        rig.keys("1250#")
        assert rig.status.sale is None  # rule 7: no QR sale while offline
        assert rig.journal.recent() == []
        red = rig.config.leds.red
        assert rig.until(lambda: len(rig.pin_states(red)) > 2, 3)  # red is blinking
    finally:
        rig.stop()


@pytest.mark.parametrize("after", [True, False], ids=["applied", "not-applied"])
def test_orders_api_sale_recovers_an_unsure_create_with_the_same_key(emulator, tmp_path, after):
    rig = Rig(emulator, tmp_path, api="orders")
    try:
        rig.emulator.inject("push", "reset", after=after)
        reference = rig.charge()
        assert rig.waiting(reference)
        orders = rig.emulator.snapshot()["orders"]
        assert [o["external_reference"] for o in orders] == [reference]  # exactly one order, however it went
        assert rig.journal.get(reference).order_id == orders[0]["id"]
        pay_and_expect_one_receipt(rig, reference)
    finally:
        rig.stop()


def test_orders_api_cancel(emulator, tmp_path):
    rig = Rig(emulator, tmp_path, api="orders")
    try:
        reference = rig.charge()
        assert rig.waiting(reference)
        rig.keys("C")
        assert rig.until(lambda: rig.state(reference) is SaleState.CANCELLED)
        assert rig.emulator.snapshot()["orders"][0]["status"] == "canceled"
    finally:
        rig.stop()


def test_an_unexpected_answer_never_stops_the_api_worker(rig, monkeypatch):
    reference = rig.charge()
    assert rig.waiting(reference)
    real_read = rig.runtime.backend.read
    calls = []

    def broken_once(sale):
        calls.append(sale.reference)
        if len(calls) == 1:
            raise KeyError("elements")  # e.g. a body shaped unlike the documentation
        return real_read(sale)

    monkeypatch.setattr(rig.runtime.backend, "read", broken_once)
    rig.emulator.pay("POS001", "approved")
    assert rig.printed(reference)  # the worker lived on and the next read saw the payment
    assert len(calls) >= 2


def test_a_refund_while_the_receipt_is_queued_is_never_undone(rig):
    rig.reconfigure(print_retry=0.2)
    rig.runtime.devices.printer.status = lambda: type("S", (), {"online": False, "paper": "unknown"})()
    reference = rig.charge()
    assert rig.waiting(reference)
    rig.emulator.pay("POS001", "approved")
    assert rig.until(lambda: rig.status.print_queue and not rig.status.printer_ok)  # paid, receipt queued
    answers = []
    worker = threading.Thread(target=lambda: answers.append(Commands(rig.runtime, "instore").handle(
        {"command": "refund", "reference": reference})))
    worker.start()
    assert rig.until(lambda: answers, 10)
    worker.join()
    assert answers == [{"ok": True, "reference": reference, "state": "refunded"}]
    assert rig.state(reference) is SaleState.REFUNDED
    assert rig.status.print_queue == ()
    del rig.runtime.devices.printer.status  # the printer is back: a queued receipt would be retried in 0.2 s
    rig.until(lambda: False, 1.0)
    assert rig.state(reference) is SaleState.REFUNDED and rig.receipt_bytes() == b""  # nothing "paid" printed


class MissesItsDeadlines:
    """The core's event queue as CPython 3.11's ``SimpleQueue`` behaves now and then: a timed ``get`` that waits
    for the next ``put`` however long, past its deadline."""

    def __init__(self, events: queue.SimpleQueue) -> None:
        self.events = events

    def put(self, event) -> None:
        self.events.put(event)

    def get(self, timeout: float | None = None):
        return self.events.get()  # the deadline is lost: only a put ends the wait

    def get_nowait(self):
        return self.events.get_nowait()

    def empty(self) -> bool:
        return self.events.empty()


@pytest.mark.timeout(120)  # a hang guard: without the heartbeat the core waits here for an event that never comes
def test_the_core_keeps_polling_when_its_queue_misses_every_deadline(emulator, tmp_path):
    rig = Rig(emulator, tmp_path)
    try:
        rig.runtime.events = MissesItsDeadlines(rig.runtime.events)
        reference = rig.charge()
        assert rig.waiting(reference)
        emulator.pay("POS001", "approved")  # nothing tells the box: only its own polls, each on a deadline
        assert rig.until(lambda: rig.state(reference) is SaleState.PAID, 30)
    finally:
        rig.stop()
