"""Money stays right under Mercado Pago's real behaviour (mp_api.md §12): the assembled kiosk, in this process,
against the emulator over real HTTP, for the in-store API under each merchant-order mode and for the Orders
API. Numbers in the test names refer to the money-safety issue's points."""

from __future__ import annotations

import pytest
from flavours import FLAVOURS, INSTORE, ids
from gpiozero import Device
from rig import FAST, TOKEN, Rig

from mpqr_kiosk.core.model import LedPattern, PaymentStatus, SaleState
from mpqr_kiosk.emulator.server import EmulatorServer
from mpqr_kiosk.emulator.state import Emulator


@pytest.fixture
def kiosk(request, tmp_path):
    """A rig in the flavour (API, merchant-order mode) the test is parametrised with, on fast timings."""
    api, mode = getattr(request, "param", FLAVOURS[0])
    emulator = Emulator(site="MLB", user_id=123456789, merchant_order=mode)
    with EmulatorServer(emulator) as server:
        emulator.url = server.url
        rig = Rig(emulator, tmp_path, api=api, order_ttl="60s")
        rig.api = api
        rig.reconfigure(**FAST)
        yield rig
        rig.stop()
        Device.pin_factory.reset()


def waiting_sale(rig: Rig) -> str:
    reference = rig.charge()
    assert rig.waiting(reference)
    return reference


def ends(rig: Rig, reference: str, state: SaleState, timeout: float = 15.0) -> None:
    assert rig.until(lambda: rig.state(reference) is state, timeout), rig.journal.get(reference)


def receipts(rig: Rig) -> int:
    return rig.receipt_bytes().count(b"\x1dV")  # paper cuts: one per receipt


def payment_in_review(rig: Rig) -> str:
    """The emulator's id of the payment in review (in-store: the payment; Orders API: the order's PAY id)."""
    state = rig.emulator.snapshot()
    if rig.api == "orders":
        return state["orders"][-1]["transactions"]["payments"][0]["id"]
    return str(next(p["id"] for mo in state["merchant_orders"] for p in mo["payments"] if p["status"] == "in_process"))


# ---------------------------------------------------------------- 2. no paid sale is lost after a cancel or expiry


@pytest.mark.parametrize("kiosk", FLAVOURS, ids=ids, indirect=True)
@pytest.mark.parametrize("end", ["cancel", "expiry"])
def test_2_a_payment_in_review_when_the_sale_ends_prints_when_approved_minutes_later(kiosk, end):
    if end == "expiry":
        kiosk.reconfigure(**FAST, ttl=2.0)
    reference = waiting_sale(kiosk)
    kiosk.emulator.pay("POS001", "in_process")
    assert kiosk.until(lambda: kiosk.status.view.screen.kind.value == "customer_paying")  # an attempt: paying
    if end == "cancel":
        kiosk.keys("C")
    ends(kiosk, reference, SaleState.CANCELLED if end == "cancel" else SaleState.EXPIRED)
    assert receipts(kiosk) == 0 and not kiosk.status.busy  # ended; the box is free for the next customer
    kiosk.emulator.decide(payment_in_review(kiosk), "approved")  # Mercado Pago's review, later
    ends(kiosk, reference, SaleState.PAID)
    assert kiosk.printed(reference) and receipts(kiosk) == 1
    sale = kiosk.journal.get(reference)
    assert sale.paid_amount == sale.total and sale.copies == 0


@pytest.mark.parametrize("kiosk", INSTORE, ids=ids, indirect=True)
def test_2_a_customer_who_pays_after_the_cancel_with_no_attempt_before_is_still_found(kiosk):
    reference = waiting_sale(kiosk)
    kiosk.emulator.scan("POS001", phone="late")  # the checkout is open on a phone: the box cannot see that
    kiosk.keys("C")
    ends(kiosk, reference, SaleState.CANCELLED)
    assert kiosk.journal.get(reference).watch_until > 0
    kiosk.emulator.pay("POS001", "approved", phone="late")  # the in-store API takes it [inferred worst case]
    ends(kiosk, reference, SaleState.PAID)
    assert kiosk.printed(reference) and receipts(kiosk) == 1


@pytest.mark.parametrize("kiosk", [("instore", "at_create")], ids=ids, indirect=True)
def test_2_a_payment_still_in_review_when_the_watch_ends_goes_to_review(kiosk):
    reference = waiting_sale(kiosk)
    kiosk.emulator.pay("POS001", "in_process")
    kiosk.keys("C")
    ends(kiosk, reference, SaleState.CANCELLED)
    ends(kiosk, reference, SaleState.REVIEW, timeout=FAST["late_watch"] + 10)
    assert kiosk.journal.get(reference).watch_until == 0 and receipts(kiosk) == 0


# ---------------------------------------------------------------- 3. an empty or lying answer is never a decision


@pytest.mark.parametrize("kiosk", FLAVOURS, ids=ids, indirect=True)
@pytest.mark.parametrize("kind", ["empty", "foreign", "absurd", "malformed"])
def test_3_an_empty_or_unbelievable_answer_never_ends_a_sale_the_customer_paid(kiosk, kind):
    reference = waiting_sale(kiosk)
    kiosk.emulator.inject("read", kind, count=3)
    kiosk.emulator.pay("POS001", "approved")  # paid, but the box's next reads get nonsense
    kiosk.keys("C")  # and the operator cancels meanwhile
    ends(kiosk, reference, SaleState.PAID)  # not "cancelled, no money moved"
    assert kiosk.printed(reference) and receipts(kiosk) == 1
    assert [r.get("fault") for r in kiosk.emulator.requests() if r.get("fault")] == [kind] * 3


# ---------------------------------------------------------------- 4. every approved cent is seen


@pytest.mark.parametrize("kiosk", INSTORE, ids=ids, indirect=True)
def test_4_two_phones_paying_one_qr_go_to_review_never_unnoticed(kiosk):
    reference = waiting_sale(kiosk)
    kiosk.emulator.scan("POS001", phone="a")
    kiosk.emulator.scan("POS001", phone="b")
    kiosk.emulator.pay("POS001", "approved", phone="a")
    kiosk.emulator.pay("POS001", "approved", phone="b")
    ends(kiosk, reference, SaleState.REVIEW)
    sale = kiosk.journal.get(reference)
    assert sale.paid_amount == 2 * sale.total
    assert [p.status for p in sale.payments] == [PaymentStatus.APPROVED, PaymentStatus.APPROVED]


@pytest.mark.parametrize("kiosk", INSTORE, ids=ids, indirect=True)
def test_4_a_second_payment_after_the_sale_was_paid_and_printed_goes_to_review(kiosk):
    reference = waiting_sale(kiosk)
    kiosk.emulator.scan("POS001", phone="b")  # a second phone has the checkout open...
    kiosk.emulator.pay("POS001", "approved", phone="a")
    assert kiosk.printed(reference) and kiosk.state(reference) is SaleState.PAID
    kiosk.emulator.pay("POS001", "approved", phone="b")  # ...and pays later: looked at again after printing
    ends(kiosk, reference, SaleState.REVIEW)
    assert kiosk.journal.get(reference).paid_amount == 2 * kiosk.journal.get(reference).total
    assert receipts(kiosk) == 1  # the receipt that printed stays the only one


@pytest.mark.parametrize("kiosk", INSTORE, ids=ids, indirect=True)
@pytest.mark.parametrize("delta", [+100, -100], ids=["over", "partial"])
def test_4_over_or_partial_payment_goes_to_review(kiosk, delta):
    reference = waiting_sale(kiosk)
    kiosk.emulator.pay("POS001", "approved", amount=1250 + delta)
    if delta < 0:
        kiosk.keys("C")  # nothing more comes: the operator cancels
    ends(kiosk, reference, SaleState.REVIEW)
    assert kiosk.journal.get(reference).paid_amount == 1250 + delta and receipts(kiosk) == 0


# ---------------------------------------------------------------- 5. REVIEW is its own screen and LEDs


@pytest.mark.parametrize("kiosk", [("instore", "at_scan")], ids=ids, indirect=True)
def test_5_review_shows_its_own_screen_and_leds_is_listed_and_refunds_every_payment(kiosk):
    reference = waiting_sale(kiosk)
    for phone in ("a", "b"):
        kiosk.emulator.scan("POS001", phone=phone)
    for phone in ("a", "b"):
        kiosk.emulator.pay("POS001", "approved", phone=phone)
    ends(kiosk, reference, SaleState.REVIEW)
    assert kiosk.until(lambda: "review" in kiosk.frames())
    assert "rejected" not in kiosk.frames()  # never "try again" for money already taken
    assert kiosk.status.view.leds is LedPattern.REVIEW
    red, yellow = kiosk.config.leds.red, kiosk.config.leds.yellow
    assert kiosk.pin_states(red)[-1] and kiosk.pin_states(yellow)[-1]  # red and yellow together
    assert kiosk.command({"command": "status"})["review"] == [reference]
    listed = kiosk.command({"command": "review"})["sales"]
    assert [(s["reference"], s["total"], s["approved"]) for s in listed] == [(reference, "R$ 12,50", "R$ 25,00")]
    answer = kiosk.command({"command": "refund", "reference": reference})
    assert answer["ok"], answer
    ends(kiosk, reference, SaleState.REFUNDED)
    payments = [p for mo in kiosk.emulator.snapshot()["merchant_orders"] for p in mo["payments"]]
    assert [p["status"] for p in payments] == ["refunded", "refunded"]  # both phones get their money back
    assert kiosk.command({"command": "review"})["sales"] == []


# ---------------------------------------------------------------- 6. no sale can wedge the box


@pytest.mark.parametrize("kiosk", FLAVOURS, ids=ids, indirect=True)
def test_6_a_create_that_stays_unsure_past_its_time_ends_and_frees_the_box(kiosk):
    kiosk.reconfigure(**FAST, ttl=2.0)
    kiosk.emulator.inject("push", "http500", count=1000)
    kiosk.emulator.inject("read", "http503", count=1000)
    reference = kiosk.charge()
    ends(kiosk, reference, SaleState.EXPIRED, timeout=2.0 + FAST["unanswered"] + 5)
    assert not kiosk.status.busy
    kiosk.emulator.clear_faults()
    kiosk.reconfigure(**FAST)
    assert kiosk.until(lambda: kiosk.status.online, 15)
    assert kiosk.waiting(kiosk.charge())  # the next sale goes on the QR


@pytest.mark.parametrize("kiosk", FLAVOURS, ids=ids, indirect=True)
def test_6_an_api_failing_for_long_never_wedges_a_waiting_sale(kiosk):
    kiosk.reconfigure(**FAST, ttl=2.0)
    reference = waiting_sale(kiosk)
    for op in ("read", "cancel"):
        kiosk.emulator.inject(op, "http500", count=1000)
    ends(kiosk, reference, SaleState.EXPIRED, timeout=2.0 + FAST["unanswered"] + 5)  # on time, then bounded
    assert not kiosk.status.busy and reference in kiosk.status.watching
    assert "expired" in kiosk.frames() or "cancelled" in kiosk.frames()


@pytest.mark.parametrize("kiosk", [("orders", "at_create")], ids=ids, indirect=True)
def test_6_a_replayed_create_sends_the_same_body_even_after_a_reload_so_it_is_never_a_409(kiosk):
    kiosk.emulator.inject("push", "reset", after=True)
    reference = kiosk.charge()
    kiosk.reconfigure(**FAST, ttl=45.0)  # a SIGHUP with a new order_ttl while the create is unsure
    assert kiosk.waiting(reference)
    statuses = [r["status"] for r in kiosk.requests("POST", "/v1/orders") if r["path"] == "/v1/orders"]
    assert 409 not in statuses and len(kiosk.emulator.snapshot()["orders"]) == 1


@pytest.mark.parametrize("kiosk", FLAVOURS, ids=ids, indirect=True)
def test_6_a_refused_remote_sale_leaves_nothing_behind(kiosk):
    kiosk.emulator.inject("push", "http400")
    first = kiosk.command({"command": "sale", "amount": "12.50"})
    assert first["ok"]
    ends(kiosk, first["reference"], SaleState.FAILED)
    assert kiosk.status.view.screen.kind.value == "ready" and not kiosk.status.view.screen.items
    second = kiosk.command({"command": "sale", "amount": "3.00"})
    assert second["ok"], second  # not "the operator is keying one"
    assert kiosk.waiting(second["reference"])


# ---------------------------------------------------------------- 8. the token never leaks


@pytest.mark.parametrize("kiosk", [("instore", "at_create"), ("orders", "at_create")], ids=ids, indirect=True)
def test_8_a_token_the_api_echoes_back_never_reaches_status_the_socket_or_the_journal(kiosk):
    kiosk.emulator.inject("push", "echo_token")
    answer = kiosk.command({"command": "sale", "amount": "12.50"})
    ends(kiosk, answer["reference"], SaleState.FAILED)
    assert [r["fault"] for r in kiosk.emulator.requests() if r.get("fault")] == ["echo_token"]
    status = kiosk.command({"command": "status"})
    assert status["last_errors"] and "***" in " ".join(status["last_errors"])  # the echo arrived, masked
    everything = str(status) + str(kiosk.command({"command": "review"}))
    assert TOKEN not in everything
    journal = (kiosk.tmp_path / "state" / "sales.sqlite3").read_bytes()
    assert TOKEN.encode() not in journal


# ---------------------------------------------------------------- 10. refunds are confirmed by a read


@pytest.mark.parametrize("kiosk", FLAVOURS, ids=ids, indirect=True)
def test_10_an_asynchronous_refund_is_refunding_until_a_read_says_refunded(kiosk):
    kiosk.emulator.instore.refund_delay = kiosk.emulator.orders.refund_delay = 3.0
    reference = waiting_sale(kiosk)
    kiosk.emulator.pay("POS001", "approved")
    assert kiosk.printed(reference)
    answer = kiosk.command({"command": "refund", "reference": reference})
    assert answer["ok"] and answer["state"] == "refunding", answer  # accepted, not confirmed yet
    assert kiosk.state(reference) is SaleState.REFUNDING
    assert kiosk.command({"command": "status"})["refunding"] == [reference]
    ends(kiosk, reference, SaleState.REFUNDED)
    assert kiosk.command({"command": "status"})["refunding"] == []
    refunds = [r for r in kiosk.emulator.requests() if r["method"] == "POST" and "refund" in r["path"]]
    assert len(refunds) == 1  # asked once; reads did the rest


@pytest.mark.parametrize("kiosk", [("instore", "at_create")], ids=ids, indirect=True)
def test_10_a_refund_whose_answer_is_lost_is_read_and_never_doubled(kiosk):
    reference = waiting_sale(kiosk)
    kiosk.emulator.pay("POS001", "approved")
    assert kiosk.printed(reference)
    kiosk.emulator.inject("refund", "reset", after=True)  # refunded, but the answer is lost
    kiosk.command({"command": "refund", "reference": reference})
    ends(kiosk, reference, SaleState.REFUNDED)
    payment = kiosk.emulator.snapshot()["merchant_orders"][0]["payments"][0]
    assert payment["status"] == "refunded" and payment["amount_refunded"] == payment["transaction_amount"]


@pytest.mark.parametrize("kiosk", [("instore", "at_create")], ids=ids, indirect=True)
def test_10_a_refund_the_api_refuses_leaves_the_sale_paid(kiosk):
    reference = waiting_sale(kiosk)
    kiosk.emulator.pay("POS001", "approved")
    assert kiosk.printed(reference)
    kiosk.emulator.inject("refund", "http400")
    answer = kiosk.command({"command": "refund", "reference": reference})
    assert not answer["ok"] and "refused" in answer["error"]
    assert kiosk.state(reference) is SaleState.PAID


# ---------------------------------------------------------------- 11 and 12. answers, bounds, the rate limit


@pytest.mark.parametrize("kiosk", FLAVOURS, ids=ids, indirect=True)
def test_11_a_retry_after_of_days_is_capped_and_never_stops_a_waiting_sale_expiring_on_time(kiosk):
    kiosk.reconfigure(**FAST, ttl=3.0, retry_after_max=2.0)
    reference = waiting_sale(kiosk)
    kiosk.emulator.inject("read", "http429", retry_after=10**6)
    assert kiosk.until(lambda: kiosk.journal.get(reference).state is SaleState.CANCELLING, 5)  # on time
    ends(kiosk, reference, SaleState.EXPIRED, timeout=10)  # the cancel waited out the capped quiet, then went


@pytest.mark.parametrize("kiosk", [("instore", "at_create")], ids=ids, indirect=True)
def test_12_after_a_429_every_request_probes_included_waits_out_retry_after(kiosk):
    waiting_sale(kiosk)
    kiosk.emulator.requests(clear=True)
    kiosk.emulator.inject("read", "http429", retry_after=2)  # an unsure read makes the box probe at once...
    assert kiosk.until(lambda: any(r.get("fault") for r in kiosk.emulator.requests()), 5)
    kiosk.until(lambda: False, 3.0)
    log = kiosk.emulator.requests()
    limited = next(r["t"] for r in log if r.get("fault"))
    after = [r for r in log if r["t"] > limited]
    assert after and after[0]["t"] - limited >= 2.0  # ...but the probe, like the reads, waited out Retry-After
    assert {r["path"] for r in after} >= {"/users/me"}


@pytest.mark.parametrize("kiosk", [("instore", "at_create")], ids=ids, indirect=True)
def test_11_amounts_beyond_the_sites_bound_are_refused_and_nothing_is_started(kiosk):
    too_much = kiosk.command({"command": "sale", "amount": "250000.01"})  # R$ 250.000,00 is MLB's bound
    assert not too_much["ok"] and "at most R$ 250.000,00" in too_much["error"]
    kiosk.keys("99999999")  # R$ 999.999,99 keyed: the last digit is refused
    assert kiosk.status.view.screen.entry == 9999999 and kiosk.status.view.screen.notice.kind.value == "too_much"
    kiosk.keys("C")
    assert kiosk.journal.recent() == [] and not kiosk.status.busy
    assert kiosk.waiting(kiosk.charge("100"))
