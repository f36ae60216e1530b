"""Each small machine of the core alone: the operator's entry, connectivity, the print queue, the late-payment
watch and the live sale's phases (every (phase, answer) pair either has a transition or is stale)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from mpqr_kiosk.core import actions as act
from mpqr_kiosk.core import events as ev
from mpqr_kiosk.core import live as lv
from mpqr_kiosk.core.entry import Entry
from mpqr_kiosk.core.kiosk import Kiosk
from mpqr_kiosk.core.link import Link
from mpqr_kiosk.core.model import (
    CancelReason,
    Item,
    Observation,
    OrderPhase,
    Payment,
    ReceiptState,
    Sale,
    SaleState,
    ScreenKind,
)
from mpqr_kiosk.core.printing import PrintQueue
from mpqr_kiosk.core.sites import site
from mpqr_kiosk.core.timing import Timing
from mpqr_kiosk.core.watch import LateWatch

BREAD = Item("Medialuna", 350, sku="MED", code="7790001")
T = Timing()


def a_sale(reference: str = "ref1", state: SaleState = SaleState.PAID, **kw) -> Sale:
    return Sale(reference, f"key-{reference}", "MLA", (Item("Importe", 1250),), 1250, 1.0, state=state, **kw)


# ================================================================ the operator's entry


def keyed(entry: Entry | None, *keys: str) -> Entry | None:
    for key in keys:
        if entry is None:
            return None
        if key == "*":
            entry = entry.multiply()
        elif key == "D":
            entry = entry.delete()
        elif key == "S":
            entry = entry.add(BREAD)
        else:
            entry = entry.digit(int(key))
    return entry


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ("1250", Entry((), 1250, 0)),
        ("3*S", Entry((replace(BREAD, quantity=3),), 0, 0)),
        ("3*SS", Entry((replace(BREAD, quantity=3), BREAD), 0, 0)),
        ("S12D", Entry((BREAD,), 1, 0)),
        ("S3*D", Entry((BREAD,), 0, 0)),
        ("SD", Entry((), 0, 0)),
        ("D", Entry()),
        ("*", Entry(stars=1)),  # on an empty entry: the start of "* * #" (the closing ticket)
        ("**", Entry(stars=2)),
        ("***", None),
        ("S*", None),  # a multiplier needs a number
        ("*1", Entry((), 1, 0)),  # a digit ends "* * #"
        ("1234567890", None),  # nine digits at most
    ],
)
def test_entry_keys(keys: str, expected: Entry | None) -> None:
    assert keyed(Entry(), *keys) == expected


def test_entry_lines_add_the_keyed_amount_times_the_multiplier() -> None:
    entry = keyed(Entry(), "S", "2", "*")
    assert entry.lines("pt", 500) == (BREAD, Item("Valor digitado", 500, 2))
    assert entry.lines("es", 0) == (BREAD,)
    assert entry.total == 350 and not entry.empty and Entry().empty


def test_entry_gives_back_a_refused_sale_in_front() -> None:
    assert Entry((BREAD,)).give_back((Item("x", 1),)).items == (Item("x", 1), BREAD)


# ================================================================ connectivity


def test_link_probes_at_once_only_when_it_thought_it_was_online() -> None:
    online = Link().probed(True, now=100.0, timing=T)
    assert online.next_probe == 100.0 + T.health_interval
    assert online.unsure(now=105.0) == Link(online=False, next_probe=105.0)
    offline = Link().probed(False, now=100.0, timing=T)
    assert offline.unsure(now=105.0).next_probe == 100.0 + T.probe_interval


@pytest.mark.parametrize(("online", "busy", "wakeup"), [(True, False, 160.0), (False, True, 110.0), (True, True, None)])
def test_link_wakes_only_for_a_probe_that_can_go_out(online: bool, busy: bool, wakeup: float | None) -> None:
    link = Link().probed(online, now=100.0, timing=T)
    assert link.wakeup(busy) == wakeup
    assert link.due(1000.0, busy) is (wakeup is not None)
    assert link.probing().wakeup(busy) is None and not link.probing().due(1000.0, busy)


def test_a_sale_waiting_past_the_health_interval_does_not_spin_the_loop() -> None:
    clock = type("Clock", (), {"mono": 0.0, "monotonic": lambda s: s.mono, "time": lambda s: 1e9})()
    kiosk = Kiosk(site("MLA"), {}, clock, lambda: ("ref1", "key1"))
    kiosk.start()
    kiosk.handle(ev.Connectivity(True))
    kiosk.handle(ev.ChargeRequested(1250))
    kiosk.handle(ev.Pushed("ref1", "ORD1", 0.0))
    for _ in range(int(T.health_interval) * 2):
        clock.mono += 1.0
        for action in kiosk.handle(ev.Tick()):
            if isinstance(action, act.Read):
                kiosk.handle(ev.Observed("ref1", Observation(OrderPhase.OPEN)))
    assert clock.mono > T.health_interval and kiosk.status().sale is not None
    assert kiosk.next_wakeup() > 0.0


# ================================================================ the print queue


def test_an_original_is_marked_printing_and_a_copy_is_not() -> None:
    queue, job = PrintQueue().add(a_sale()).start(0.0)
    assert job == queue.printing and not job.copy and job.sale.receipt is ReceiptState.PRINTING
    _, copy = PrintQueue().add(a_sale(receipt=ReceiptState.PRINTED)).start(0.0)
    assert copy.copy and copy.sale.receipt is ReceiptState.PRINTED


def test_one_receipt_at_a_time_and_none_while_the_printer_waits_out_a_failure() -> None:
    queue, _ = PrintQueue().add(a_sale("a")).add(a_sale("b")).start(0.0)
    assert queue.start(0.0) == (queue, None)
    assert queue.references == ("a", "b")
    queue, job = queue.failed("a", started=True, retry_at=10.0)
    assert job.sale.receipt is ReceiptState.PRINTING and not queue.printer_ok
    assert queue.references == ("a", "b") and queue.wakeup() == 10.0
    assert queue.start(9.0)[1] is None
    queue, again = queue.start(10.0)
    assert again.sale.reference == "a" and again.copy  # it may have started: never a second original


def test_a_receipt_that_never_started_is_still_the_original() -> None:
    queue, _ = PrintQueue().add(a_sale()).start(0.0)
    queue, job = queue.failed("ref1", started=False, retry_at=0.0)
    assert job.sale.receipt is ReceiptState.NONE
    assert not queue.start(0.0)[1].copy


def test_printed_counts_copies_and_ignores_other_receipts() -> None:
    queue, _ = PrintQueue().add(a_sale(receipt=ReceiptState.PRINTED, copies=1)).start(0.0)
    assert queue.printed("other") == (queue, None)
    queue, sale = queue.printed("ref1")
    assert (sale.receipt, sale.copies, queue.printing, queue.printer_ok) == (ReceiptState.PRINTED, 2, None, True)


def test_a_refund_empties_the_queue_and_a_refunded_receipt_that_fails_is_not_tried_again() -> None:
    queue, _ = PrintQueue().add(a_sale("a")).add(a_sale("b")).start(0.0)
    queue = queue.refunded("a").refunded("b")
    assert queue.waiting == () and queue.printing.sale.state is SaleState.REFUNDED
    queue, _ = queue.failed("a", started=True, retry_at=0.0)
    assert queue.references == ()


# ================================================================ the late-payment watch


def test_the_watch_reads_the_soonest_due_one_at_a_time_and_spaced() -> None:
    watch = LateWatch().add("a", first_read=T.poll_interval, grace_until=T.cancel_grace)  # just ended
    watch = watch.add("b", first_read=0.0)  # from the journal: read at once
    assert watch.wakeup() == 0.0
    watch, first = watch.due(0.0, T)
    assert first == "b" and watch.wakeup() is None  # one read at a time
    assert watch.due(5.0, T)[1] == ""
    assert watch.answered("a", 1.0, T) == (watch, False)  # not the read in flight
    watch, ours = watch.answered("b", 1.0, T)
    assert ours and watch.wakeup() == max(T.watch_spacing, T.poll_interval)  # spaced, however many are due
    watch, second = watch.due(T.watch_spacing, T)
    assert second == "a"
    watch, _ = watch.answered("a", 3.0, T)
    nexts = {w.reference: w.next_read for w in watch.sales}
    assert nexts == {"a": 3.0 + T.poll_interval, "b": 1.0 + T.late_interval}  # a is in its grace, b is not
    assert watch.forget("a").references == ("b",)


def test_a_sale_watched_again_is_watched_once() -> None:
    watch = LateWatch().add("a", 0.0).add("a", 5.0)
    assert watch.references == ("a",) and watch.wakeup() == 5.0


# ================================================================ the live sale's phases

CTX = lv.Context(now=1000.0, server_now=1.7e9, timing=T, site=site("MLA"))
PHASES = [lv.Pushing(), lv.Waiting(900.0), lv.Waiting(), lv.ReadingBack(), lv.SendingCancel(), lv.FinalRead(1010.0)]
ANSWERS = [
    ev.Pushed("ref1", "ORD1", 1.7e9),
    ev.PushRefused("ref1", "400 bad_request"),
    ev.ApiUnsure("ref1", "timeout"),
    ev.Observed("ref1", Observation(OrderPhase.OPEN)),
    ev.Observed("ref1", Observation(OrderPhase.ABSENT)),
    ev.Observed("ref1", Observation(OrderPhase.CLOSED, (Payment("p1", "approved", 1250),))),
    ev.Observed("ref1", Observation(OrderPhase.EXPIRED)),
    ev.CancelSent("ref1"),
]


def live_in(phase: lv.Phase, out: lv.Request | None) -> lv.LiveSale:
    sale = a_sale(state=lv.STATE[type(phase)], order_id="ORD1", cancel_reason=CancelReason.NONE)
    return lv.LiveSale(sale, phase, lv.Origin.OPERATOR, expires=1600.0, out=out, due=1000.0)


@pytest.mark.parametrize(("phase", "out", "answer"), list(itertools.product(PHASES, [None, *lv.Request], ANSWERS)))
def test_every_phase_and_answer_has_a_transition_or_is_stale(phase, out, answer) -> None:
    live = live_in(phase, out)
    result = lv.answer(live, answer, CTX)
    fits = (type(phase), type(answer)) in lv.TRANSITIONS and out in lv.ANSWERS[type(answer)]
    assert (result is not None) is fits
    if result is None:
        return
    outcome, actions = result
    assert all(isinstance(a, act.Save | act.Log | act.Sound | act.Push) for a in actions)
    if isinstance(outcome, lv.LiveSale):
        assert outcome.sale.state is lv.STATE[type(outcome.phase)]  # the journaled state follows the phase
        assert outcome.out is (lv.Request.PUSH if any(isinstance(a, act.Push) for a in actions) else None)
    else:
        assert outcome.sale.state.final
        assert [a.sale for a in actions if isinstance(a, act.Save)][-1] == outcome.sale  # journaled as it ends
        if not isinstance(outcome, lv.Refused):
            assert outcome.sale.watch_until > 0  # every sale that reached the POS is watched afterwards


def test_an_answer_for_another_sale_is_stale_in_every_phase() -> None:
    for phase, out in itertools.product(PHASES, lv.Request):
        for answer in ANSWERS:
            assert lv.answer(live_in(phase, out), replace(answer, reference="ref0"), CTX) is None


def test_a_live_sale_whose_state_does_not_follow_its_phase_cannot_exist() -> None:
    with pytest.raises(ValueError, match="phase"):
        lv.LiveSale(a_sale(state=SaleState.WAITING), lv.Pushing(), lv.Origin.OPERATOR, expires=0.0)


@pytest.mark.parametrize("phase", PHASES)
def test_each_phase_sends_its_own_next_request_when_due(phase) -> None:
    live, actions = lv.step(live_in(phase, None), replace(CTX, now=1000.0))
    assert lv.step(live_in(phase, None), replace(CTX, quiet=True))[1] == []  # a 429 holds every request back
    expected = {lv.Request.RECOVER: act.Recover, lv.Request.READ: act.Read, lv.Request.CANCEL: act.Cancel}
    assert [type(a) for a in actions] == [expected[lv.NEXT_REQUEST[type(phase)]]]
    assert live.out is lv.NEXT_REQUEST[type(phase)]
    assert lv.step(live, CTX) == (live, [])  # one request at a time


@pytest.mark.parametrize("out", [None, lv.Request.READ])
@pytest.mark.parametrize("phase", [lv.Waiting(900.0), lv.Waiting()])
def test_a_waiting_sale_expires_on_time_whatever_is_in_flight(phase, out) -> None:
    live, actions = lv.step(live_in(phase, out), replace(CTX, now=1600.0, quiet=True))
    assert isinstance(live.phase, lv.SendingCancel) and live.sale.cancel_reason is CancelReason.EXPIRED
    assert [type(a) for a in actions] == [act.Save, act.Log]  # the cancel goes when the slot and the API allow
    live, actions = lv.step(replace(live, out=None), replace(CTX, now=1600.0))
    assert [type(a) for a in actions] == [act.Cancel]


@pytest.mark.parametrize("phase", [lv.Pushing(), lv.ReadingBack(), lv.SendingCancel(), lv.FinalRead(1010.0)])
def test_a_sale_the_api_never_settles_ends_after_its_expiry_and_is_watched(phase) -> None:
    live = live_in(phase, lv.Request.RECOVER)
    assert lv.step(live, replace(CTX, now=1600.0 + T.unanswered - 1))[0] is not None
    outcome, actions = lv.step(live, replace(CTX, now=1600.0 + T.unanswered))
    assert isinstance(outcome, lv.Unpaid) and outcome.sale.state is SaleState.EXPIRED
    assert outcome.sale.watch_until == CTX.server_now + T.late_watch
    assert [type(a) for a in actions] == [act.Save, act.Log]


@pytest.mark.parametrize(("phase", "after"), [(lv.Pushing(), lv.ReadingBack), (lv.Waiting(900.0), lv.SendingCancel)])
def test_cancel_reads_back_an_unconfirmed_order_first(phase, after) -> None:
    live, actions = lv.cancel(live_in(phase, None), CancelReason.OPERATOR, CTX)
    assert isinstance(live.phase, after) and live.sale.state is SaleState.CANCELLING
    assert actions[0] == act.Save(live.sale)


@pytest.mark.parametrize(
    ("state", "order_id", "phase"),
    [(SaleState.PUSHING, "", lv.Pushing()), (SaleState.WAITING, "ORD1", lv.Waiting()),
     (SaleState.CANCELLING, "ORD1", lv.SendingCancel()), (SaleState.CANCELLING, "", lv.ReadingBack())],
)
def test_a_journaled_sale_resumes_in_the_phase_its_state_allows(state, order_id, phase) -> None:
    live = lv.resumed(a_sale(state=state, order_id=order_id), CTX)
    assert live.phase == phase and live.origin is lv.Origin.JOURNAL and live.out is None


@pytest.mark.parametrize("status", ["in_process", "rejected"])
def test_the_final_read_keeps_reading_while_a_payment_is_under_way_until_the_grace_ends(status) -> None:
    paying = ev.Observed("ref1", Observation(OrderPhase.OPEN, (Payment("p1", status, 1250),)))
    live = live_in(lv.FinalRead(1010.0), lv.Request.READ)
    outcome, _ = lv.answer(live, paying, CTX)
    assert isinstance(outcome, lv.LiveSale)
    outcome, _ = lv.answer(live, paying, replace(CTX, now=1010.0))
    assert isinstance(outcome, lv.Unpaid) and outcome.screen is ScreenKind.CANCELLED
    assert outcome.sale.payments == paying.observation.payments  # journaled with what was seen


def test_the_final_read_without_an_attempt_ends_at_once_and_is_watched() -> None:
    outcome, _ = lv.answer(live_in(lv.FinalRead(1010.0), lv.Request.READ),
                           ev.Observed("ref1", Observation(OrderPhase.OPEN)), CTX)
    assert isinstance(outcome, lv.Unpaid) and outcome.sale.state is SaleState.CANCELLED
    assert outcome.sale.watch_until == CTX.server_now + T.late_watch
