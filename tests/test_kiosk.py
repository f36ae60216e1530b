"""The sale state machine, driven only through events on a fake clock (PRODUCT.md: the flow, what the operator
sees, and the rules that keep money safe). Every test reads the actions the core returns (their types, order
and fields) and what it says the screen and LEDs show."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import pytest

from mpqr_kiosk.core.actions import (
    Action,
    Cancel,
    Light,
    Log,
    Print,
    Probe,
    Push,
    Read,
    Recover,
    Save,
    Show,
    Sound,
)
from mpqr_kiosk.core.events import (
    CLEAR,
    DELETE,
    ENTER,
    MULTIPLY,
    ApiUnsure,
    BadScan,
    CancelRequested,
    CancelSent,
    ChargeRequested,
    Connectivity,
    Event,
    Key,
    Observed,
    Printed,
    PrintFailed,
    Pushed,
    PushRefused,
    ReprintRequested,
    Scan,
    Tick,
)
from mpqr_kiosk.core.kiosk import Kiosk
from mpqr_kiosk.core.model import (
    Beep,
    Item,
    LedPattern,
    Notice,
    NoticeKind,
    Observation,
    OrderPhase,
    Payment,
    ReceiptState,
    Sale,
    SaleState,
    Screen,
    ScreenKind,
)
from mpqr_kiosk.core.sites import site
from mpqr_kiosk.core.timing import Timing

T0 = 1000.0  # the fake monotonic clock starts here (the core uses 0.0 to mean "not yet": see the report)
WALL0 = 1_700_000_000.0  # the box's wall clock
SERVER0 = 1_700_000_321.0  # the API server's clock: deliberately not the box's

BREAD = Item("Medialuna", 350, sku="MED", code="7790001")
COFFEE = Item("Cafe", 1200, sku="CAF", code="7790002")
CATALOG = {item.code: item for item in (BREAD, COFFEE)}
API = (Push, Recover, Read, Cancel)  # the requests about a sale
DEFAULT = Timing()


class FakeClock:
    """Time moves only when a test says so."""

    def __init__(self) -> None:
        self.mono = T0
        self.wall = WALL0

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


# ---------------------------------------------------------------- small readers of action lists


def of(actions: list[Action], cls: type) -> list:
    return [a for a in actions if isinstance(a, cls)]


def kinds(actions: list[Action]) -> list[type]:
    return [type(a) for a in actions]


def api(actions: list[Action]) -> list[Action]:
    return [a for a in actions if isinstance(a, API)]


def journaled(actions: list[Action]) -> list[Sale]:
    return [a.sale for a in of(actions, Save)]


def shown(actions: list[Action]) -> Screen | None:
    shows = of(actions, Show)
    return shows[-1].screen if shows else None


def beeps(actions: list[Action]) -> list[Beep]:
    return [a.beep for a in of(actions, Sound)]


def keyed(amount: int, quantity: int = 1, language: str = "es") -> Item:
    return Item("Importe" if language == "es" else "Valor digitado", amount, quantity)


def ok(amount: int, pid: str = "pay-ok") -> Payment:
    return Payment(pid, "approved", amount)


def no(amount: int, pid: str = "pay-no") -> Payment:
    return Payment(pid, "rejected", amount)


def opened(**kw) -> Observation:
    return Observation(OrderPhase.OPEN, **kw)


def closed(*payments: Payment, **kw) -> Observation:
    return Observation(OrderPhase.CLOSED, payments, **kw)


def paying(**kw) -> Observation:
    """The customer is mid-payment: an attempt in review (the only sign of a customer, §12.1)."""
    return opened(payments=(Payment("p0", "in_process", 1250),), **kw)


# ---------------------------------------------------------------- the rig


class Rig:
    """A Kiosk on a fake clock with deterministic ids; records every action it returns."""

    def __init__(self, site_id: str = "MLA", timing: Timing = DEFAULT) -> None:
        self.clock = FakeClock()
        self.timing = timing
        self.ids = 0
        self.kiosk = Kiosk(site(site_id), CATALOG, self.clock, self._new_ids, timing)
        self.log: list[Action] = []
        self.journal0: list[Sale] = []

    def _new_ids(self) -> tuple[str, str]:
        self.ids += 1
        return f"ref{self.ids}", f"idem{self.ids}"

    def _rec(self, actions: list[Action]) -> list[Action]:
        self.log += actions
        return actions

    def start(self, journal: tuple[Sale, ...] | list[Sale] = ()) -> list[Action]:
        self.journal0 = list(journal)
        return self._rec(self.kiosk.start(journal))

    def do(self, event: Event) -> list[Action]:
        return self._rec(self.kiosk.handle(event))

    def press(self, *keys: str) -> list[Action]:
        out: list[Action] = []
        for key in keys:
            out += self.do(Key(key))
        return out

    def type(self, digits: str) -> list[Action]:
        return self.press(*digits)

    def tick(self, seconds: float = 0.0) -> list[Action]:
        self.clock.advance(seconds)
        return self.do(Tick())

    def reprint(self, sale: Sale) -> list[Action]:
        return self.do(ReprintRequested(sale))

    def run(
        self,
        seconds: float,
        answer: Observation | Callable[[float], Observation] | None = None,
        step: float = 0.5,
    ) -> list[Action]:
        """Tick for ``seconds``; answer every Read at once (``answer`` may depend on the elapsed time)."""
        out: list[Action] = []
        begin, end = self.now, self.now + seconds
        while self.now < end - 1e-9:
            pending = self.tick(step)
            while pending:
                out += pending
                reads = of(pending, Read)
                pending = []
                if answer is not None:
                    for read in reads:
                        obs = answer(self.now - begin) if callable(answer) else answer
                        pending += self.do(Observed(read.sale.reference, obs))
        return out

    def until_api(self, limit: float = 120.0, step: float = 0.5) -> tuple[float, list[Action]]:
        """Tick until the core asks for something about a sale; return how long it took and what it asked."""
        begin = self.now
        while self.now - begin < limit:
            acts = self.tick(step)
            if api(acts):
                return self.now - begin, acts
        raise AssertionError(f"no API request within {limit} s")

    @property
    def now(self) -> float:
        return self.clock.mono

    @property
    def screen(self) -> Screen:
        return self.kiosk.view().screen

    @property
    def leds(self) -> LedPattern:
        return self.kiosk.view().leds

    @property
    def sale(self) -> Sale | None:
        return self.kiosk.status().sale

    @property
    def busy(self) -> bool:
        return self.kiosk.status().busy


def assert_journal_first(rig: Rig) -> None:
    """Rule 2, over a whole run: every request about a sale, and every original receipt, goes out only after
    the state it depends on was journaled."""
    last = {s.reference: s for s in rig.journal0}
    for action in rig.log:
        if isinstance(action, Save):
            last[action.sale.reference] = action.sale
        elif isinstance(action, API):
            seen = last.get(action.sale.reference)
            assert seen is not None, f"{type(action).__name__} for a sale never journaled"
            name = type(action).__name__
            assert seen.state is action.sale.state, f"{name} in {action.sale.state}, journal says {seen.state}"
            assert seen.idempotency_key == action.sale.idempotency_key
            assert seen.total == action.sale.total
        elif isinstance(action, Print) and not action.copy:
            seen = last.get(action.sale.reference)
            assert seen is not None and seen.receipt is ReceiptState.PRINTING
            assert seen.state is SaleState.PAID


# ---------------------------------------------------------------- where a rig starts


def online(site_id: str = "MLA", timing: Timing = DEFAULT) -> Rig:
    rig = Rig(site_id, timing)
    rig.start()
    rig.do(Connectivity(True, server_time=SERVER0))  # the probe's answer tells the API server's clock
    return rig


def pushing(digits: str = "1250", site_id: str = "MLA", timing: Timing = DEFAULT) -> Rig:
    rig = online(site_id, timing)
    rig.type(digits)
    rig.press(ENTER)
    assert rig.sale is not None and rig.sale.state is SaleState.PUSHING
    return rig


def waiting(digits: str = "1250", site_id: str = "MLA", timing: Timing = DEFAULT) -> Rig:
    rig = pushing(digits, site_id, timing)
    rig.do(Pushed("ref1", "ORD1", SERVER0))
    assert rig.sale.state is SaleState.WAITING
    return rig


def read_in_flight(rig: Rig) -> Read:
    reads = of(rig.tick(rig.timing.poll_interval), Read)
    assert len(reads) == 1
    return reads[0]


def paid() -> tuple[Rig, Sale]:
    """A sale just paid; its original receipt is at the printer."""
    rig = waiting()
    read_in_flight(rig)
    acts = rig.do(Observed("ref1", closed(ok(1250))))
    (printing,) = of(acts, Print)
    return rig, printing.sale


def journal_sale(state: SaleState, reference: str = "old1", **kw) -> Sale:
    kw.setdefault("items", (keyed(1250),))
    kw.setdefault("total", 1250)
    return Sale(reference, f"key-{reference}", "MLA", created_at=WALL0 - 300, state=state, **kw)


# ================================================================ start, connectivity (rule 7)


def test_start_probes_the_api_and_shows_offline_until_it_answers():
    rig = Rig()
    assert rig.start() == [Probe(), Show(Screen(ScreenKind.OFFLINE)), Light(LedPattern.TROUBLE)]
    assert rig.screen.kind is ScreenKind.OFFLINE
    assert rig.leds is LedPattern.TROUBLE


def test_connectivity_true_makes_the_box_ready():
    rig = Rig()
    rig.start()
    acts = rig.do(Connectivity(True))
    assert kinds(acts) == [Log, Show, Light]
    assert acts[0].level == logging.INFO
    assert acts[1:] == [Show(Screen(ScreenKind.READY)), Light(LedPattern.READY)]


def test_connectivity_false_probes_again_after_probe_interval():
    rig = Rig()
    rig.start()
    assert rig.do(Connectivity(False, "dns")) == []  # nothing changed: still offline, no second probe yet
    assert rig.kiosk.next_wakeup() == pytest.approx(DEFAULT.probe_interval)
    assert of(rig.tick(DEFAULT.probe_interval - 0.5), Probe) == []
    assert of(rig.tick(0.5), Probe) == [Probe()]
    assert rig.kiosk.next_wakeup() >= 30  # a probe is out: nothing to do until it answers


def test_going_offline_after_being_online_is_shown_and_logged():
    rig = online()
    acts = rig.do(Connectivity(False, "no route"))
    assert kinds(acts) == [Log, Show, Light]
    assert acts[0].level == logging.WARNING and "no route" in acts[0].message
    assert shown(acts).kind is ScreenKind.OFFLINE
    assert rig.leds is LedPattern.TROUBLE


def test_rule7_enter_while_offline_refuses_the_sale_and_keeps_the_entry():
    rig = Rig()
    rig.start()  # the probe has not answered: offline
    rig.type("1250")
    acts = rig.press(ENTER)
    assert beeps(acts) == [Beep.ERROR]
    assert of(acts, Save) == [] and api(acts) == []
    assert rig.ids == 0  # no reference was even drawn
    assert rig.sale is None
    assert any(log.level == logging.WARNING and "offline" in log.message for log in of(acts, Log))
    assert rig.screen.notice == Notice(NoticeKind.OFFLINE)
    assert rig.screen.entry == 1250  # nothing the operator keyed is lost: it is still on the entry line
    # back online, the same entry charges exactly what was keyed
    rig.do(Connectivity(True))
    acts = rig.press(ENTER)
    (push,) = of(acts, Push)
    assert push.sale.total == 1250
    assert push.sale.items == (keyed(1250),)


def test_rule7_connectivity_lost_refuses_a_new_sale():
    rig = online()
    rig.do(Connectivity(False))
    rig.type("500")
    acts = rig.press(ENTER)
    assert beeps(acts) == [Beep.ERROR]
    assert api(acts) == [] and of(acts, Save) == []


def test_rule7_remote_charge_while_offline_is_refused():
    rig = Rig()
    rig.start()
    acts = rig.do(ChargeRequested(1250))
    assert beeps(acts) == [Beep.ERROR]
    assert api(acts) == [] and of(acts, Save) == []
    assert rig.sale is None


def test_rule7_refused_remote_charge_leaves_nothing_behind():
    rig = Rig()
    rig.start()
    rig.do(ChargeRequested(1250))  # refused: offline
    rig.do(Connectivity(True))
    assert rig.screen.kind is ScreenKind.READY
    rig.type("500")
    (push,) = of(rig.press(ENTER), Push)
    assert push.sale.total == 500  # today: 1750 (the refused remote 12,50 plus the operator's 5,00)


def test_remote_charge_of_a_negative_amount_leaves_nothing_behind():
    rig = online()
    acts = rig.do(ChargeRequested(-500))
    assert beeps(acts) == [Beep.ERROR]
    assert rig.screen.kind is ScreenKind.READY
    rig.type("1000")
    (push,) = of(rig.press(ENTER), Push)
    assert push.sale.total == 1000  # today: 500


# ================================================================ the operator's entry


def test_digits_build_the_amount_in_cents():
    rig = online()
    acts = rig.press("1")
    assert acts == [Sound(Beep.KEY), Show(Screen(ScreenKind.ENTERING, entry=1))]
    rig.type("250")
    assert rig.screen == Screen(ScreenKind.ENTERING, entry=1250)
    assert site("MLA").format(rig.screen.entry) == "$ 12,50"
    assert rig.leds is LedPattern.READY


def test_mlc_digits_are_whole_pesos():
    rig = online("MLC")
    rig.type("1250")
    assert rig.screen.entry == 1250
    assert site("MLC").format(rig.screen.entry) == "$ 1.250"
    (push,) = of(rig.press(ENTER), Push)
    assert push.sale.total == 1250
    assert push.sale.site == "MLC"
    assert push.sale.items == (keyed(1250),)


def test_mlb_keyed_line_is_titled_in_portuguese():
    rig = online("MLB")
    rig.type("990")
    (push,) = of(rig.press(ENTER), Push)
    assert push.sale.items == (keyed(990, language="pt"),)
    assert push.sale.site == "MLB"


def test_entry_is_limited_to_nine_digits():
    rig = online()
    rig.type("123456789")
    assert rig.screen.entry == 123456789
    assert rig.press("0") == [Sound(Beep.ERROR)]
    assert rig.screen.entry == 123456789


def test_delete_takes_back_a_digit_then_the_multiplier_then_the_last_line():
    rig = online()
    rig.do(Scan(BREAD.code))
    rig.press("3", MULTIPLY)
    rig.type("12")
    assert rig.screen == Screen(ScreenKind.ENTERING, (BREAD,), 350, entry=12, quantity=3)
    assert rig.press(DELETE)[0] == Sound(Beep.KEY)
    assert (rig.screen.entry, rig.screen.quantity, rig.screen.items) == (1, 3, (BREAD,))
    rig.press(DELETE)
    assert (rig.screen.entry, rig.screen.quantity, rig.screen.items) == (0, 3, (BREAD,))
    rig.press(DELETE)
    assert (rig.screen.entry, rig.screen.quantity, rig.screen.items) == (0, 0, (BREAD,))
    acts = rig.press(DELETE)
    assert shown(acts) == Screen(ScreenKind.READY)
    assert rig.press(DELETE) == [Sound(Beep.KEY)]  # nothing left to delete: harmless


def test_clear_wipes_the_whole_entry():
    rig = online()
    rig.do(Scan(COFFEE.code))
    rig.press("2", MULTIPLY, "5")
    acts = rig.press(CLEAR)
    assert acts == [Sound(Beep.KEY), Show(Screen(ScreenKind.READY))]
    assert rig.press(ENTER) == [Sound(Beep.ERROR)]  # the cleared lines are really gone


def test_n_star_then_scan_multiplies_the_item():
    rig = online()
    acts = rig.press("3", MULTIPLY)
    assert shown(acts) == Screen(ScreenKind.ENTERING, quantity=3)
    acts = rig.do(Scan(BREAD.code))
    assert acts[0] == Sound(Beep.KEY)
    tripled = Item("Medialuna", 350, 3, "MED", "7790001")
    assert shown(acts) == Screen(ScreenKind.ENTERING, (tripled,), 1050)
    rig.do(Scan(COFFEE.code))  # the multiplier applied once only
    assert rig.screen.items == (tripled, COFFEE)
    assert rig.screen.total == 2250
    (push,) = of(rig.press(ENTER), Push)
    assert push.sale.items == (tripled, COFFEE)
    assert push.sale.total == 2250


def test_n_star_then_keyed_amount_multiplies_the_amount():
    rig = online()
    rig.press("3", MULTIPLY)
    rig.type("250")
    (push,) = of(rig.press(ENTER), Push)
    assert push.sale.items == (keyed(250, 3),)
    assert push.sale.total == 750


def test_scanned_items_and_a_keyed_amount_make_one_sale():
    rig = online()
    rig.do(Scan(BREAD.code))
    rig.type("100")
    (push,) = of(rig.press(ENTER), Push)
    assert push.sale.items == (BREAD, keyed(100))
    assert push.sale.total == 450


def test_multiply_without_a_number_is_an_error():
    rig = online()
    rig.do(Scan(BREAD.code))
    assert rig.press(MULTIPLY) == [Sound(Beep.ERROR)]
    assert rig.screen.kind is ScreenKind.ENTERING


def test_a_star_on_the_idle_screen_starts_the_closing_ticket_sequence_and_shows_nothing_new():
    rig = online()
    assert rig.press(MULTIPLY) == [Sound(Beep.KEY)]
    assert rig.screen == Screen(ScreenKind.READY)


def test_unknown_barcode_beeps_shows_a_notice_and_changes_nothing_else():
    rig = online()
    rig.do(Scan(BREAD.code))
    rig.press("2", MULTIPLY)
    before = rig.screen
    acts = rig.do(Scan("0000000"))
    assert kinds(acts) == [Sound, Log, Show]
    assert acts[0] == Sound(Beep.ERROR)
    assert acts[1].level == logging.WARNING and "0000000" in acts[1].message
    screen = shown(acts)
    assert screen.notice == Notice(NoticeKind.UNKNOWN_CODE, "0000000")
    assert (screen.kind, screen.items, screen.total, screen.entry, screen.quantity) == (
        before.kind, before.items, before.total, before.entry, before.quantity)
    assert rig.sale is None and of(acts, Save) == []
    assert 0 < rig.kiosk.next_wakeup() <= DEFAULT.result_seconds
    # the notice goes away by itself; the pending multiplier is still there for the next scan
    assert shown(rig.tick(DEFAULT.result_seconds)) == before
    rig.do(Scan(COFFEE.code))
    assert rig.screen.items == (BREAD, Item("Cafe", 1200, 2, "CAF", "7790002"))


@pytest.mark.parametrize("stage", ["entering", "waiting"])
def test_bad_scan_beeps_and_changes_nothing(stage):
    if stage == "entering":
        rig = online()
        rig.do(Scan(BREAD.code))
        rig.press("2", MULTIPLY)
    else:
        rig = waiting()
    screen, sale = rig.screen, rig.sale
    acts = rig.do(BadScan("too long"))
    assert kinds(acts) == [Sound, Log]
    assert acts[0] == Sound(Beep.ERROR)
    assert acts[1].level == logging.WARNING and "too long" in acts[1].message
    assert rig.screen == screen and rig.sale == sale


def test_enter_with_nothing_keyed_is_an_error():
    rig = online()
    assert rig.press(ENTER) == [Sound(Beep.ERROR)]
    rig.press("4", MULTIPLY)  # a multiplier alone is not an amount either
    acts = rig.press(ENTER)
    assert beeps(acts) == [Beep.ERROR]
    assert rig.ids == 0 and rig.sale is None


# ================================================================ rule 2: a sale starts journaled, then pushed


def test_enter_journals_the_sale_before_pushing_it():
    rig = online()
    rig.type("1250")
    acts = rig.press(ENTER)
    assert kinds(acts) == [Sound, Save, Push, Show, Light]
    sale = acts[1].sale
    # its expiry is fixed before the push, on the API server's clock, so a replay never gets a fresh one
    assert sale == Sale("ref1", "idem1", "MLA", (keyed(1250),), 1250, WALL0, ttl=DEFAULT.ttl,
                        expires_at=SERVER0 + DEFAULT.ttl)
    assert sale.state is SaleState.PUSHING and sale.receipt is ReceiptState.NONE
    assert acts[2] == Push(sale, DEFAULT.ttl)
    assert acts[3] == Show(Screen(ScreenKind.PAY, (keyed(1250),), 1250, reference="ref1"))
    assert acts[3].screen.seconds_left is None  # no countdown before the order is on the POS
    assert acts[4] == Light(LedPattern.WAITING)
    assert rig.busy


def test_remote_charge_starts_a_sale_like_enter():
    rig = online()
    acts = rig.do(ChargeRequested(1250))
    assert kinds(acts) == [Sound, Save, Push, Show, Light]
    assert acts[1].sale.total == 1250
    assert acts[2].sale == acts[1].sale


def test_remote_charge_is_refused_while_the_operator_is_keying():
    rig = online()
    rig.type("5")
    acts = rig.do(ChargeRequested(100))
    assert beeps(acts) == [Beep.ERROR]
    assert of(acts, Log) and of(acts, Log)[0].level == logging.WARNING
    assert api(acts) == [] and rig.screen.entry == 5


def test_push_in_flight_is_not_repeated_or_read():
    rig = pushing()
    assert api(rig.run(20)) == []  # nothing answered: one request in flight, nothing else about the sale
    assert rig.sale.state is SaleState.PUSHING


# ================================================================ pushed → waiting, polling


def test_pushed_journals_waiting_and_shows_the_pay_screen_with_a_countdown():
    rig = pushing()
    acts = rig.do(Pushed("ref1", "ORD1", SERVER0))
    assert kinds(acts) == [Save, Show]
    sale = acts[0].sale
    assert sale.state is SaleState.WAITING
    assert sale.order_id == "ORD1"
    assert sale.expires_at == SERVER0 + DEFAULT.ttl  # on the server's clock
    assert (sale.reference, sale.idempotency_key, sale.total) == ("ref1", "idem1", 1250)
    assert shown(acts) == Screen(ScreenKind.PAY, (keyed(1250),), 1250, seconds_left=600, reference="ref1")
    assert rig.leds is LedPattern.WAITING


def test_countdown_moves_with_the_clock():
    rig = waiting()
    rig.run(10.5, answer=opened())
    assert rig.screen.seconds_left == 590  # 589.5 s left, shown rounded up
    assert rig.screen.kind is ScreenKind.PAY


def test_reads_start_at_poll_interval_one_at_a_time():
    rig = waiting()
    assert api(rig.tick(0.5)) == []
    acts = rig.tick(0.5)
    assert api(acts) == [Read(rig.sale)]
    assert api(rig.tick(1)) == []  # the first read has not answered: no second request
    assert api(rig.tick(5)) == []
    acts = rig.do(Observed("ref1", opened()))
    assert kinds(api(acts)) == [Read]  # overdue: read again at once, and only once
    assert api(rig.tick(0)) == []
    assert api(rig.tick(0.5)) == []


def test_api_unsure_on_a_read_frees_the_slot_after_a_back_off():
    rig = waiting()
    read_in_flight(rig)
    acts = rig.do(ApiUnsure("ref1", "timeout"))
    assert api(acts) == []
    assert of(acts, Log)[0].level == logging.WARNING
    assert rig.sale.state is SaleState.WAITING  # an unsure read does not end or change the sale
    delay, acts = rig.until_api()
    assert delay == pytest.approx(2 * DEFAULT.poll_interval)
    assert kinds(api(acts)) == [Read]


def test_reads_slow_down_after_poll_backoff_after():
    timing = Timing(poll_interval=1, poll_backoff_after=10, poll_slow=5)
    rig = waiting(timing=timing)
    pushed_at = rig.now
    stamps = []
    for _ in range(60):
        for _read in of(rig.tick(0.5), Read):
            stamps.append(rig.now - pushed_at)
            rig.do(Observed("ref1", opened()))
    assert stamps == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 21, 26]


# ================================================================ scanned, rejected, retried


def test_a_payment_attempt_shows_customer_paying():
    rig = waiting()
    read_in_flight(rig)
    assert shown(rig.do(Observed("ref1", opened()))) is None  # a merchant order alone says nothing (§12.1)
    read_in_flight(rig)
    acts = rig.do(Observed("ref1", paying()))
    assert kinds(acts) == [Log, Show]
    assert "payment attempt" in acts[0].message
    assert shown(acts) == Screen(ScreenKind.CUSTOMER_PAYING, (keyed(1250),), 1250, seconds_left=598,
                                 reference="ref1")
    assert rig.leds is LedPattern.WAITING
    assert rig.sale.state is SaleState.WAITING


def test_rejected_payment_keeps_the_sale_and_a_retry_approved_is_paid():
    rig = waiting()
    read_in_flight(rig)
    rig.do(Observed("ref1", paying()))
    read_in_flight(rig)
    bad = opened(payments=(no(1250, "p1"),))
    acts = rig.do(Observed("ref1", bad))
    assert kinds(acts) == [Save, Sound, Log, Show]
    sale = acts[0].sale
    assert sale.state is SaleState.WAITING and sale.rejected_payments == 1
    assert acts[1] == Sound(Beep.ERROR)
    assert shown(acts).kind is ScreenKind.REJECTED
    assert shown(acts).seconds_left is not None
    assert rig.leds is LedPattern.WAITING
    assert rig.kiosk.next_wakeup() <= 1.0
    # the Rejected screen stays result_seconds; the same rejection read again is not announced twice
    acts = rig.run(DEFAULT.result_seconds - 0.5, answer=bad)
    assert of(acts, Save) == [] and of(acts, Sound) == []
    assert rig.screen.kind is ScreenKind.REJECTED
    rig.run(0.5, answer=bad)
    assert rig.screen.kind is ScreenKind.CUSTOMER_PAYING
    assert rig.sale.state is SaleState.WAITING
    # the customer tries again and is approved
    read = read_in_flight(rig)
    acts = rig.do(Observed(read.sale.reference, closed(no(1250, "p1"), ok(1250, "p2"))))
    assert journaled(acts)[0].state is SaleState.PAID
    assert journaled(acts)[0].payment_id == "p2"
    assert journaled(acts)[0].paid_amount == 1250
    assert journaled(acts)[0].rejected_payments == 1
    assert of(acts, Print)[0].copy is False
    assert of(rig.log, Cancel) == []  # a rejection never cancelled anything
    assert_journal_first(rig)


def test_a_second_rejection_is_announced_again():
    rig = waiting()
    read_in_flight(rig)
    rig.do(Observed("ref1", opened(payments=(no(1250, "p1"),))))
    rig.run(DEFAULT.result_seconds + 1, answer=opened(payments=(no(1250, "p1"),)))
    read_in_flight(rig)
    acts = rig.do(Observed("ref1", opened(payments=(no(1250, "p1"), no(1250, "p2")))))
    assert journaled(acts)[0].rejected_payments == 2
    assert beeps(acts) == [Beep.ERROR]
    assert rig.screen.kind is ScreenKind.REJECTED


# ================================================================ rule 4: paid only when closed and covered


def test_closed_and_approved_equal_to_total_is_paid_then_printed():
    rig = waiting()
    read_in_flight(rig)
    acts = rig.do(Observed("ref1", closed(ok(1250, "p9"))))
    assert kinds(acts) == [Save, Sound, Log, Save, Print, Show, Light]
    paid_sale = acts[0].sale
    assert paid_sale.state is SaleState.PAID
    assert (paid_sale.paid_amount, paid_sale.payment_id) == (1250, "p9")
    assert paid_sale.receipt is ReceiptState.NONE
    assert acts[1] == Sound(Beep.PAID)
    printing = acts[3].sale
    assert printing == replace(paid_sale, receipt=ReceiptState.PRINTING)
    assert acts[4] == Print(printing, copy=False)
    assert shown(acts) == Screen(ScreenKind.PAID, (keyed(1250),), 1250, reference="ref1")
    assert acts[6] == Light(LedPattern.PAID)
    assert rig.sale is None and not rig.busy
    # Paid stays result_seconds, then the box is ready again
    assert rig.screen.kind is ScreenKind.PAID
    acts = rig.tick(DEFAULT.result_seconds)
    assert shown(acts) == Screen(ScreenKind.READY)
    assert rig.leds is LedPattern.READY
    assert_journal_first(rig)


def test_after_paid_a_new_sale_may_start():
    rig, _ = paid()
    rig.type("300")
    acts = rig.press(ENTER)
    (push,) = of(acts, Push)
    assert push.sale.reference == "ref2" and push.sale.idempotency_key == "idem2"
    assert push.sale.total == 300


@pytest.mark.parametrize(
    "payments",
    [(ok(1000),), (ok(1500),), (no(1250),), (), (ok(600), ok(600))],
    ids=["less", "more", "only-rejected", "none", "two-short"],
)
def test_closed_with_approved_different_from_total_is_review_never_paid_or_printed(payments):
    rig = waiting()
    read_in_flight(rig)
    acts = rig.do(Observed("ref1", Observation(OrderPhase.CLOSED, payments)))
    assert [s.state for s in journaled(acts)] == [SaleState.REVIEW]
    assert any(log.level == logging.ERROR for log in of(acts, Log))
    assert of(acts, Print) == [] and Beep.PAID not in beeps(acts)
    assert rig.screen.kind is not ScreenKind.PAID
    assert rig.leds is not LedPattern.PAID
    rig.run(60)
    assert of(rig.log, Print) == []


def test_open_with_a_smaller_approved_payment_keeps_waiting():
    rig = waiting()
    read_in_flight(rig)
    acts = rig.do(Observed("ref1", opened(payments=(ok(500),))))
    assert of(acts, Save) == [] and of(acts, Print) == []
    assert rig.sale.state is SaleState.WAITING
    assert kinds(api(rig.run(1.0, answer=opened(payments=(ok(500),))))) == [Read]


def test_an_open_order_never_completes_a_sale_even_fully_approved():
    rig = waiting()
    full = opened(payments=(ok(1250),))
    read_in_flight(rig)
    rig.do(Observed("ref1", full))
    rig.run(20, answer=full)
    assert rig.sale.state is SaleState.WAITING
    assert of(rig.log, Print) == [] and [s.state for s in journaled(rig.log)][-1] is SaleState.WAITING
    # only a fresh read showing it closed decides
    read_in_flight(rig)
    acts = rig.do(Observed("ref1", closed(ok(1250))))
    assert journaled(acts)[0].state is SaleState.PAID


# ================================================================ rule 1: one live sale


@pytest.mark.parametrize("stage", ["pushing", "waiting"])
def test_rule1_no_second_sale_while_one_is_live(stage):
    rig = pushing() if stage == "pushing" else waiting()
    before = rig.sale
    assert rig.press("5") == [Sound(Beep.ERROR)]  # keys do not even build an entry
    assert rig.press(ENTER) == [Sound(Beep.ERROR)]
    acts = rig.do(ChargeRequested(100))
    assert beeps(acts) == [Beep.ERROR]
    assert of(acts, Log)[0].level == logging.WARNING
    acts = rig.do(Scan(BREAD.code))
    assert acts == [Sound(Beep.ERROR)]
    assert rig.sale == before
    assert rig.ids == 1
    assert len(of(rig.log, Push)) == 1


# ================================================================ rule 3: an unsure push is read back


def test_rule3_unsure_push_is_recovered_never_pushed_blind():
    rig = pushing()
    (push,) = of(rig.log, Push)
    acts = rig.do(ApiUnsure("ref1", "timeout"))
    assert api(acts) == []
    assert kinds(acts)[0] is Log and acts[0].level == logging.WARNING
    delay, acts = rig.until_api()
    assert delay == pytest.approx(2 * DEFAULT.poll_interval)
    assert api(acts) == [Recover(push.sale, DEFAULT.ttl)]
    assert len(of(rig.log, Push)) == 1
    assert api(rig.run(20)) == []  # the Recover is in flight: nothing else is asked about the sale


def test_rule3_back_off_honours_retry_after():
    rig = pushing()
    rig.do(ApiUnsure("ref1", "429", retry_after=7))
    assert rig.kiosk.next_wakeup() == pytest.approx(7)
    assert api(rig.tick(6.5)) == []
    assert api(rig.tick(0.5)) == [Recover(rig.sale, DEFAULT.ttl)]


def test_rule3_back_off_grows_and_is_capped():
    rig = pushing()
    delays = []
    for _ in range(6):
        rig.do(ApiUnsure("ref1", "503"))
        delay, acts = rig.until_api()
        assert kinds(api(acts)) == [Recover]
        delays.append(delay)
    assert delays == [2, 4, 8, 16, 30, 30]
    assert len(of(rig.log, Push)) == 1


def test_rule3_recover_finding_nothing_pushes_again_with_the_same_reference_and_key():
    rig = pushing()
    (first,) = of(rig.log, Push)
    rig.do(ApiUnsure("ref1", "connection reset"))
    rig.until_api()
    acts = rig.do(Observed("ref1", Observation(OrderPhase.ABSENT)))
    (again,) = of(acts, Push)
    assert again.sale.reference == "ref1" and again.sale.idempotency_key == "idem1"
    assert again.sale == first.sale
    assert again.ttl == DEFAULT.ttl
    assert of(acts, Save) == []  # still PUSHING, as journaled
    assert rig.ids == 1
    assert api(rig.run(10)) == []  # that push is in flight now
    assert_journal_first(rig)


def test_rule3_recover_finding_the_order_open_moves_to_waiting():
    rig = pushing()
    rig.do(ApiUnsure("ref1", "timeout"))
    rig.until_api()
    acts = rig.do(Observed("ref1", opened(order_id="ORD7", server_time=SERVER0)))
    assert of(acts, Push) == []
    (sale,) = journaled(acts)
    assert sale.state is SaleState.WAITING and sale.order_id == "ORD7"
    assert sale.expires_at == SERVER0 + DEFAULT.ttl
    assert rig.screen.kind is ScreenKind.PAY and rig.screen.seconds_left == 598  # counting from the charge
    delay, acts = rig.until_api()
    assert delay == pytest.approx(DEFAULT.poll_interval)
    assert kinds(api(acts)) == [Read]
    assert_journal_first(rig)


def test_rule3_recover_answered_by_pushed_moves_to_waiting():
    rig = pushing()
    rig.do(ApiUnsure("ref1", "timeout"))
    rig.until_api()
    acts = rig.do(Pushed("ref1", "ORD8"))
    assert [(s.state, s.order_id) for s in journaled(acts)] == [(SaleState.WAITING, "ORD8")]


def test_rule3_recover_finding_it_already_paid_completes_the_sale():
    rig = pushing()
    rig.do(ApiUnsure("ref1", "timeout"))
    rig.until_api()
    acts = rig.do(Observed("ref1", closed(ok(1250))))
    assert [s.state for s in journaled(acts)] == [SaleState.PAID, SaleState.PAID]
    assert of(acts, Print)[0].copy is False
    assert len(of(rig.log, Push)) == 1


def test_unsure_push_shows_offline_and_probes():
    rig = pushing()
    rig.clock.advance(DEFAULT.probe_interval)  # the last probe answer is old
    acts = rig.do(ApiUnsure("ref1", "timeout"))
    assert of(acts, Probe) == [Probe()]
    assert rig.screen.kind is ScreenKind.PAY  # one blip keeps the QR up
    _, acts = rig.until_api()
    assert kinds(api(acts)) == [Recover]
    rig.do(ApiUnsure("ref1", "timeout"))  # a second failure in a row: say so
    assert rig.screen.kind is ScreenKind.OFFLINE
    assert rig.leds is LedPattern.TROUBLE


def test_rule3_unsure_push_is_read_back_even_when_the_operator_cancelled_meanwhile():
    rig = pushing()
    rig.press(CLEAR)
    rig.do(ApiUnsure("ref1", "timeout"))
    _, acts = rig.until_api()
    assert kinds(api(acts)) == [Recover]


# ================================================================ cancel


def test_clear_while_waiting_journals_cancelling_then_cancels():
    rig = waiting()
    acts = rig.press(CLEAR)
    assert kinds(acts) == [Sound, Save, Log, Cancel, Show]
    assert acts[0] == Sound(Beep.KEY)
    sale = acts[1].sale
    assert sale.state is SaleState.CANCELLING and sale.cancel_reason == "operator"
    assert acts[3] == Cancel(sale)
    assert sale.order_id == "ORD1"
    assert shown(acts).kind is ScreenKind.CANCELLED
    assert rig.leds is LedPattern.WAITING  # still live until the final read
    assert rig.busy
    assert rig.press(CLEAR) == [Sound(Beep.ERROR)]  # no second cancel
    assert api(rig.run(10)) == []  # the Cancel is in flight


def test_cancel_sent_is_followed_by_a_read_and_open_unscanned_ends_cancelled():
    rig = waiting()
    rig.press(CLEAR)
    acts = rig.do(CancelSent("ref1"))
    assert kinds(acts) == [Read]
    assert acts[0].sale.state is SaleState.CANCELLING
    acts = rig.do(Observed("ref1", opened()))
    assert kinds(acts) == [Save, Log, Light]  # the screen already said Cancelled while cancelling
    assert acts[0].sale.state is SaleState.CANCELLED
    assert rig.screen == Screen(ScreenKind.CANCELLED, (keyed(1250),), 1250, reference="ref1")
    assert acts[2] == Light(LedPattern.READY)
    assert of(rig.log, Print) == []
    assert not rig.busy
    assert shown(rig.tick(DEFAULT.result_seconds)) == Screen(ScreenKind.READY)
    assert_journal_first(rig)


@pytest.mark.parametrize("phase", [OrderPhase.CANCELLED, OrderPhase.ABSENT])
def test_cancel_read_showing_the_order_gone_ends_cancelled(phase):
    rig = waiting()
    rig.press(CLEAR)
    rig.do(CancelSent("ref1"))
    acts = rig.do(Observed("ref1", Observation(phase)))
    assert [s.state for s in journaled(acts)] == [SaleState.CANCELLED]


def test_a_payment_that_raced_the_cancel_wins_and_prints():
    rig = waiting()
    rig.press(CLEAR)
    rig.do(CancelSent("ref1"))
    acts = rig.do(Observed("ref1", closed(ok(1250))))
    assert [s.state for s in journaled(acts)] == [SaleState.PAID, SaleState.PAID]
    assert journaled(acts)[1].receipt is ReceiptState.PRINTING
    assert of(acts, Print) == [Print(journaled(acts)[1], copy=False)]
    assert Beep.PAID in beeps(acts)
    assert rig.screen.kind is ScreenKind.PAID
    assert_journal_first(rig)


def test_cancel_with_the_customer_mid_payment_keeps_reading_until_cancel_grace():
    rig = waiting()
    rig.press(CLEAR)
    rig.do(CancelSent("ref1"))
    scanned = paying()
    assert of(rig.do(Observed("ref1", scanned)), Save) == []
    acts = rig.run(DEFAULT.cancel_grace - 0.5, answer=scanned)
    assert len(of(acts, Read)) == DEFAULT.cancel_grace - 1  # reading every poll_interval
    assert of(acts, Save) == []
    assert rig.sale.state is SaleState.CANCELLING
    acts = rig.run(0.5, answer=scanned)
    assert [s.state for s in journaled(acts)] == [SaleState.CANCELLED]
    assert_journal_first(rig)


def test_cancel_grace_lets_a_late_payment_win():
    rig = waiting()
    rig.press(CLEAR)
    rig.do(CancelSent("ref1"))
    rig.do(Observed("ref1", paying()))
    rig.run(10, answer=lambda t: paying() if t < 8 else closed(ok(1250)))
    states = [s.state for s in journaled(rig.log)]
    assert SaleState.CANCELLED not in states
    assert states[-2:] == [SaleState.PAID, SaleState.PAID]
    assert of(rig.log, Print)[0].copy is False


def test_clear_with_a_read_in_flight_cancels_after_the_read_answers():
    rig = waiting()
    read_in_flight(rig)
    acts = rig.press(CLEAR)
    assert [s.state for s in journaled(acts)] == [SaleState.CANCELLING]
    assert api(acts) == []  # one request at a time
    acts = rig.do(Observed("ref1", opened()))
    assert of(acts, Save) == []  # the pre-cancel read does not end the sale
    assert kinds(api(acts)) == [Cancel]


def test_clear_with_a_read_in_flight_that_shows_paid_is_paid():
    rig = waiting()
    read_in_flight(rig)
    rig.press(CLEAR)
    acts = rig.do(Observed("ref1", closed(ok(1250))))
    assert journaled(acts)[0].state is SaleState.PAID
    assert of(acts, Cancel) == []


def test_clear_during_pushing_cancels_after_the_push_answers():
    rig = pushing()
    acts = rig.press(CLEAR)
    assert kinds(acts)[:3] == [Sound, Save, Log]
    assert acts[1].sale.state is SaleState.CANCELLING
    assert api(acts) == []  # the push is still in flight
    acts = rig.do(Pushed("ref1", "ORD1", SERVER0))
    assert kinds(acts)[:2] == [Save, Cancel]
    assert acts[0].sale.state is SaleState.CANCELLING and acts[0].sale.order_id == "ORD1"
    assert acts[1] == Cancel(acts[0].sale)
    rig.do(CancelSent("ref1"))
    acts = rig.do(Observed("ref1", Observation(OrderPhase.CANCELLED)))
    assert [s.state for s in journaled(acts)] == [SaleState.CANCELLED]
    assert journaled(acts)[0].cancel_reason == "operator"
    assert_journal_first(rig)


def test_cancel_requested_remotely_works_like_clear():
    rig = waiting()
    acts = rig.do(CancelRequested())
    assert kinds(acts) == [Save, Log, Cancel, Show]
    assert acts[0].sale.state is SaleState.CANCELLING and acts[0].sale.cancel_reason == "remote"
    assert acts[2] == Cancel(acts[0].sale)
    assert kinds(rig.do(CancelSent("ref1"))) == [Read]
    acts = rig.do(Observed("ref1", opened()))
    assert [(s.state, s.cancel_reason) for s in journaled(acts)] == [(SaleState.CANCELLED, "remote")]


def test_cancel_requested_remotely_during_pushing_waits_for_the_push():
    rig = pushing()
    acts = rig.do(CancelRequested())
    assert [s.state for s in journaled(acts)] == [SaleState.CANCELLING] and api(acts) == []
    acts = rig.do(Pushed("ref1", "ORD1"))
    assert kinds(api(acts)) == [Cancel]


def test_cancel_requested_with_no_sale_only_logs():
    rig = online()
    acts = rig.do(CancelRequested())
    assert kinds(acts) == [Log] and acts[0].level == logging.WARNING
    rig2 = waiting()
    rig2.press(CLEAR)
    acts = rig2.do(CancelRequested())  # already cancelling
    assert kinds(acts) == [Log] and of(acts, Save) == []


def test_unsure_cancel_is_sent_again_after_a_back_off():
    rig = waiting()
    rig.press(CLEAR)
    rig.do(ApiUnsure("ref1", "502"))
    delay, acts = rig.until_api()
    assert delay == pytest.approx(2)
    assert kinds(api(acts)) == [Cancel]


@pytest.mark.parametrize("phase", [OrderPhase.OPEN, OrderPhase.CANCELLED, OrderPhase.EXPIRED])
def test_cancel_never_forgets_approved_money(phase):
    rig = waiting()
    read_in_flight(rig)
    rig.do(Observed("ref1", opened(payments=(ok(500),))))
    rig.press(CLEAR)
    rig.do(CancelSent("ref1"))
    acts = rig.do(Observed("ref1", Observation(phase, (ok(500),))))
    if phase is OrderPhase.OPEN:  # still open with money on it: the customer may be completing it, read on
        assert of(acts, Save) == []
        acts = rig.run(DEFAULT.cancel_grace, answer=Observation(phase, (ok(500),)))
    assert of(acts, Print) == []
    assert [s.state for s in journaled(acts)] == [SaleState.REVIEW]
    assert journaled(acts)[0].paid_amount == 500 and journaled(acts)[0].payments == (ok(500),)


# ================================================================ expiry


def test_after_ttl_the_sale_cancels_itself_and_ends_expired():
    timing = Timing(ttl=30)
    rig = waiting(timing=timing)
    acts = rig.run(29.5, answer=opened())
    assert of(acts, Save) == []
    assert rig.screen.seconds_left == 1
    acts = rig.tick(0.5)
    assert kinds(acts)[:3] == [Save, Log, Cancel]  # journaled CANCELLING first, then the cancel at once
    assert acts[0].sale.state is SaleState.CANCELLING and acts[0].sale.cancel_reason == "expired"
    assert api(acts) == [Cancel(rig.sale)]
    assert kinds(rig.do(CancelSent("ref1"))) == [Read]
    acts = rig.do(Observed("ref1", opened()))
    assert [s.state for s in journaled(acts)] == [SaleState.EXPIRED]
    assert journaled(acts)[0].cancel_reason == "expired"
    assert shown(acts).kind is ScreenKind.EXPIRED
    assert of(rig.log, Print) == []
    assert_journal_first(rig)


def test_a_payment_seen_on_the_expiry_re_read_wins():
    rig = waiting(timing=Timing(ttl=30))
    rig.run(30, answer=opened())
    rig.tick(0)
    rig.do(CancelSent("ref1"))
    acts = rig.do(Observed("ref1", closed(ok(1250))))
    assert [s.state for s in journaled(acts)] == [SaleState.PAID, SaleState.PAID]
    assert of(acts, Print)[0].copy is False
    assert rig.screen.kind is ScreenKind.PAID


def test_expiry_with_the_customer_mid_payment_keeps_the_grace_read():
    rig = waiting(timing=Timing(ttl=30))
    rig.run(30, answer=paying())
    rig.tick(0)
    rig.do(CancelSent("ref1"))
    acts = rig.do(Observed("ref1", paying()))
    assert of(acts, Save) == []
    rig.run(DEFAULT.cancel_grace, answer=paying())
    assert [s.state for s in journaled(rig.log)][-1] is SaleState.EXPIRED


def test_api_reporting_expired_ends_the_sale_expired():
    rig = waiting()
    read_in_flight(rig)
    acts = rig.do(Observed("ref1", Observation(OrderPhase.EXPIRED)))
    assert kinds(acts)[:2] == [Save, Log]
    assert acts[0].sale.state is SaleState.EXPIRED
    assert of(acts, Cancel) == []
    assert shown(acts).kind is ScreenKind.EXPIRED
    assert not rig.busy


# ================================================================ push refused


def test_push_refused_fails_the_sale_and_gives_the_items_back():
    rig = online()
    rig.do(Scan(BREAD.code))
    rig.type("100")
    rig.press(ENTER)
    acts = rig.do(PushRefused("ref1", "invalid external_pos_id"))
    assert kinds(acts) == [Save, Sound, Log, Show, Light]
    assert acts[0].sale.state is SaleState.FAILED and acts[0].sale.reference == "ref1"
    assert acts[1] == Sound(Beep.ERROR)
    assert acts[2].level == logging.ERROR
    assert shown(acts) == Screen(ScreenKind.ENTERING, (BREAD, keyed(100)), 450, notice=Notice(NoticeKind.REFUSED))
    assert acts[4] == Light(LedPattern.READY)
    assert not rig.busy
    # fix and charge again: a new attempt, new reference and key, same lines
    (push,) = of(rig.press(ENTER), Push)
    assert (push.sale.reference, push.sale.idempotency_key) == ("ref2", "idem2")
    assert push.sale.items == (BREAD, keyed(100)) and push.sale.total == 450


# ================================================================ rule 5: receipts


def test_printed_journals_the_receipt_printed():
    rig, printing = paid()
    assert printing.receipt is ReceiptState.PRINTING
    acts = rig.do(Printed("ref1"))
    assert kinds(acts) == [Save]
    sale = acts[0].sale
    assert sale.receipt is ReceiptState.PRINTED and sale.copies == 0 and sale.state is SaleState.PAID
    assert rig.do(Printed("ref1")) == []  # a duplicate answer journals nothing


def test_print_failed_queues_the_receipt_shows_the_problem_and_retries_as_a_copy():
    rig, _ = paid()
    acts = rig.do(PrintFailed("ref1", "paper out"))
    assert kinds(acts) == [Log]
    assert acts[0].level == logging.ERROR and "paper out" in acts[0].message
    assert rig.screen.kind is ScreenKind.PAID and rig.leds is LedPattern.PAID  # Paid still shows first
    acts = rig.tick(DEFAULT.result_seconds)
    assert acts == [Show(Screen(ScreenKind.PRINTER_PROBLEM)), Light(LedPattern.TROUBLE)]
    assert rig.kiosk.next_wakeup() == pytest.approx(DEFAULT.print_retry - DEFAULT.result_seconds)
    assert of(rig.tick(DEFAULT.print_retry - DEFAULT.result_seconds - 0.5), Print) == []
    acts = rig.tick(0.5)
    assert kinds(acts) == [Print]  # a copy: nothing to journal before it
    assert acts[0].copy is True and acts[0].sale.reference == "ref1"
    acts = rig.do(Printed("ref1"))
    assert kinds(acts) == [Save, Show, Light]
    assert acts[0].sale.receipt is ReceiptState.PRINTED and acts[0].sale.copies == 1
    assert acts[1:] == [Show(Screen(ScreenKind.READY)), Light(LedPattern.READY)]
    assert [p.copy for p in of(rig.log, Print)] == [False, True]  # never a second original


def test_a_failed_copy_is_retried_as_a_copy_again():
    rig, _ = paid()
    rig.do(PrintFailed("ref1", "jam"))
    rig.tick(DEFAULT.print_retry)
    rig.do(PrintFailed("ref1", "jam"))
    acts = rig.tick(DEFAULT.print_retry)
    assert [p.copy for p in of(acts, Print)] == [True]
    assert [p.copy for p in of(rig.log, Print)] == [False, True, True]


def test_a_receipt_that_never_started_stays_the_original():
    rig, _ = paid()
    acts = rig.do(PrintFailed("ref1", "no paper", started=False))
    assert [s.receipt for s in journaled(acts)] == [ReceiptState.NONE]  # nothing printed: the original is due
    rig.tick(DEFAULT.result_seconds)
    assert rig.screen.kind is ScreenKind.PRINTER_PROBLEM
    acts = rig.tick(DEFAULT.print_retry)
    assert [p.copy for p in of(acts, Print)] == [False]


def test_printer_problem_never_blocks_a_sale():
    rig, _ = paid()
    rig.do(PrintFailed("ref1", "offline"))
    rig.tick(DEFAULT.result_seconds)
    rig.type("100")
    assert kinds(api(rig.press(ENTER))) == [Push]


def test_reprint_prints_a_copy_and_counts_it():
    rig, _ = paid()
    (done,) = journaled(rig.do(Printed("ref1")))
    acts = rig.reprint(done)
    assert kinds(acts) == [Print]
    assert acts[0].copy is True
    acts = rig.do(Printed("ref1"))
    assert journaled(acts)[0].copies == 1
    assert journaled(acts)[0].receipt is ReceiptState.PRINTED
    rig.reprint(journaled(acts)[0])
    assert journaled(rig.do(Printed("ref1")))[0].copies == 2
    assert [p.copy for p in of(rig.log, Print)] == [False, True, True]


def test_reprint_of_an_unpaid_sale_is_refused():
    rig = online()
    acts = rig.reprint(journal_sale(SaleState.CANCELLED))
    assert kinds(acts) == [Log] and acts[0].level == logging.WARNING


def test_printed_for_another_receipt_is_ignored():
    rig, _ = paid()
    assert rig.do(Printed("ref9")) == []
    assert rig.do(PrintFailed("ref9", "x")) == []
    assert rig.kiosk.status().printing == "ref1"  # still waiting for ref1's answer
    assert of(rig.tick(DEFAULT.print_retry), Print) == []


# ================================================================ rule 6: restart


def test_rule6_pushing_sale_is_recovered_first_and_blocks_new_sales_until_resolved():
    old = journal_sale(SaleState.PUSHING)
    rig = Rig()
    acts = rig.start([old])
    assert kinds(acts)[0] is Log and "pushing" in acts[0].message
    assert api(acts) == [Recover(old, DEFAULT.ttl)]  # first request: a read-back, never a push
    assert of(acts, Push) == []
    rig.do(Connectivity(True))
    assert rig.busy
    assert rig.press(ENTER) == [Sound(Beep.ERROR)]
    assert beeps(rig.do(ChargeRequested(500))) == [Beep.ERROR]
    # found nothing: a sale from before the restart is stale, so it is never put on the QR again
    acts = rig.do(Observed("old1", Observation(OrderPhase.ABSENT)))
    assert of(acts, Push) == []
    assert [s.state for s in journaled(acts)] == [SaleState.EXPIRED]
    # resolved: now a new sale is accepted
    assert not rig.busy
    rig.type("500")
    (push,) = of(rig.press(ENTER), Push)
    assert push.sale.reference == "ref1"
    assert_journal_first(rig)


def test_rule6_waiting_sale_is_read():
    old = journal_sale(SaleState.WAITING, order_id="ORD-old")
    rig = Rig()
    acts = rig.start([old])
    assert api(acts) == [Read(old)]
    assert rig.busy
    acts = rig.do(Observed("old1", closed(ok(1250))))
    assert journaled(acts)[0].state is SaleState.PAID


def test_rule6_cancelling_sale_is_cancelled_then_read():
    old = journal_sale(SaleState.CANCELLING, order_id="ORD-old", cancel_reason="operator")
    rig = Rig()
    acts = rig.start([old])
    assert api(acts) == [Cancel(old)]
    assert kinds(api(rig.do(CancelSent("old1")))) == [Read]
    acts = rig.do(Observed("old1", opened()))
    assert [(s.state, s.cancel_reason) for s in journaled(acts)] == [(SaleState.CANCELLED, "operator")]


def test_rule6_paid_sale_cut_mid_print_reprints_as_a_copy():
    old = journal_sale(SaleState.PAID, receipt=ReceiptState.PRINTING, paid_amount=1250)
    rig = Rig()
    acts = rig.start([old])
    assert of(acts, Save) == []
    assert of(acts, Print) == [Print(old, copy=True)]
    assert not rig.busy  # a receipt is not a live sale
    acts = rig.do(Printed("old1"))
    assert [(s.receipt, s.copies) for s in journaled(acts)] == [(ReceiptState.PRINTED, 1)]


def test_rule6_paid_sale_never_printed_prints_the_original():
    old = journal_sale(SaleState.PAID, paid_amount=1250)
    rig = Rig()
    acts = rig.start([old])
    assert kinds([a for a in acts if isinstance(a, (Save, Print))]) == [Save, Print]
    assert journaled(acts)[0].receipt is ReceiptState.PRINTING
    assert of(acts, Print) == [Print(journaled(acts)[0], copy=False)]
    assert_journal_first(rig)


def test_rule6_final_sales_are_left_alone():
    finals = [
        journal_sale(SaleState.PAID, "a", receipt=ReceiptState.PRINTED),
        journal_sale(SaleState.CANCELLED, "b"),
        journal_sale(SaleState.EXPIRED, "c"),
        journal_sale(SaleState.FAILED, "d"),
        journal_sale(SaleState.REVIEW, "e"),
    ]
    rig = Rig()
    assert rig.start(finals) == [Probe(), Show(Screen(ScreenKind.OFFLINE)), Light(LedPattern.TROUBLE)]
    assert not rig.busy


def test_rule6_every_unfinished_sale_is_reconciled_in_turn():
    first = journal_sale(SaleState.WAITING, "old1", order_id="ORD-1")
    second = journal_sale(SaleState.PUSHING, "old2")
    rig = Rig()
    acts = rig.start([first, second])
    assert len(of(acts, Log)) == 2
    assert api(acts) == [Read(first)]
    rig.do(Connectivity(True))
    acts = rig.do(Observed("old1", closed(ok(1250))))
    assert api(acts) == [Recover(second, DEFAULT.ttl)]  # the next one, at once
    assert [p.sale.reference for p in of(acts, Print)] == ["old1"]
    assert rig.press(ENTER) == [Sound(Beep.ERROR)]
    rig.do(Observed("old2", Observation(OrderPhase.CANCELLED)))
    assert not rig.busy
    assert_journal_first(rig)


def test_rule6_resumed_waiting_sale_already_expired_on_the_server_clock_gets_no_new_ttl():
    old = journal_sale(SaleState.WAITING, order_id="ORD-old", expires_at=SERVER0 - 60)
    rig = Rig()
    rig.start([old])
    acts = rig.do(Observed("old1", opened(server_time=SERVER0)))
    # the server's clock says the order is already over: cancel at once, no new ttl, no further read
    assert [(s.state, s.cancel_reason) for s in journaled(acts)] == [(SaleState.CANCELLING, "expired")]
    assert of(acts, Read) == []
    assert api(acts) == [Cancel(rig.sale)]
    rig.do(CancelSent("old1"))
    acts = rig.do(Observed("old1", opened(server_time=SERVER0 + 2)))
    assert [s.state for s in journaled(acts)] == [SaleState.EXPIRED]
    assert_journal_first(rig)


def test_rule6_resumed_waiting_sale_is_read_at_poll_interval():
    old = journal_sale(SaleState.WAITING, order_id="ORD-old", expires_at=SERVER0 + 300)
    rig = Rig()
    rig.start([old])
    rig.do(Observed("old1", opened(server_time=SERVER0)))
    assert kinds(api(rig.tick(DEFAULT.poll_interval))) == [Read]


def test_rule6_resumed_waiting_sale_keeps_only_its_remaining_server_time():
    old = journal_sale(SaleState.WAITING, order_id="ORD-old", expires_at=SERVER0 + 20)
    rig = Rig()
    rig.start([old])
    rig.do(Observed("old1", opened(server_time=SERVER0)))
    assert rig.screen.seconds_left == 20
    acts = rig.run(19.5, answer=opened())
    assert of(acts, Save) == []
    acts = rig.run(0.5, answer=opened())
    assert [(s.state, s.cancel_reason) for s in journaled(acts)] == [(SaleState.CANCELLING, "expired")]


def test_rule6_resumed_sale_keeps_its_rejection_count():
    old = journal_sale(SaleState.WAITING, order_id="ORD-old", rejected_payments=1)
    rig = Rig()
    rig.start([old])
    acts = rig.do(Observed("old1", opened(payments=(no(1250),))))
    assert of(acts, Save) == [] and Beep.ERROR not in beeps(acts)  # the old rejection is not news


# ================================================================ stale events


def test_events_for_another_reference_are_ignored():
    rig = waiting()
    read_in_flight(rig)
    before = rig.sale
    stale = [
        Pushed("ref0", "ORDX", SERVER0),
        PushRefused("ref0", "nope"),
        ApiUnsure("ref0", "timeout"),
        Observed("ref0", closed(ok(1250))),
        Observed("ref0", Observation(OrderPhase.EXPIRED)),
        CancelSent("ref0"),
        Printed("ref0"),
        PrintFailed("ref0", "x"),
    ]
    for event in stale:
        acts = rig.do(event)
        assert of(acts, Save) == [] and api(acts) == [] and of(acts, Print) == [] and of(acts, Sound) == []
        assert rig.sale == before
    assert api(rig.tick(0.5)) == []  # our read is still the one in flight
    assert rig.kiosk.status().online
    acts = rig.do(Observed("ref1", closed(ok(1250))))
    assert journaled(acts)[0].state is SaleState.PAID


def test_late_answers_for_a_finished_sale_are_ignored():
    rig, _ = paid()
    rig.do(Printed("ref1"))
    for event in (Pushed("ref1", "ORD1"), Observed("ref1", closed(ok(1250))), CancelSent("ref1"),
                  PushRefused("ref1", "x"), ApiUnsure("ref1", "x")):
        acts = rig.do(event)
        assert of(acts, Save) == [] and api(acts) == [] and of(acts, Print) == []
    assert len(of(rig.log, Print)) == 1


# ================================================================ next_wakeup


def test_next_wakeup_is_small_while_waiting():
    rig = waiting()
    assert 0 < rig.kiosk.next_wakeup() <= 1.0
    for _ in range(5):
        read_in_flight(rig)
        rig.do(Observed("ref1", opened()))
        assert 0 < rig.kiosk.next_wakeup() <= 1.0


def test_next_wakeup_is_large_when_idle_and_online():
    rig = online()
    assert rig.kiosk.next_wakeup() >= 30
    assert rig.tick(0) == []  # and nothing is due


def test_next_wakeup_covers_a_result_screen_then_the_paid_sales_late_look():
    rig, _ = paid()
    rig.do(Printed("ref1"))
    assert rig.kiosk.next_wakeup() == pytest.approx(DEFAULT.result_seconds)
    rig.tick(DEFAULT.result_seconds)
    assert rig.kiosk.next_wakeup() == pytest.approx(DEFAULT.late_interval - DEFAULT.result_seconds)


def test_next_wakeup_stays_small_while_a_read_is_in_flight():
    rig = waiting()
    read_in_flight(rig)
    assert rig.kiosk.next_wakeup() <= 1.0


# ================================================================ late payments after a cancel


def cancelled_while_the_customer_was_paying() -> Rig:
    rig = waiting()
    read_in_flight(rig)
    rig.do(Observed("ref1", paying()))
    rig.press(CLEAR)
    rig.do(CancelSent("ref1"))
    rig.do(Observed("ref1", paying()))  # the customer is mid-payment: keep reading for the grace
    assert rig.sale is not None
    rig.run(DEFAULT.cancel_grace + 1, answer=paying())
    assert rig.sale is None and rig.screen.kind in (ScreenKind.CANCELLED, ScreenKind.READY)
    return rig


def test_a_payment_after_the_grace_is_still_found_and_printed():
    rig = cancelled_while_the_customer_was_paying()
    _, acts = rig.until_api()
    (read,) = api(acts)
    assert isinstance(read, Read) and read.sale.reference == "ref1" and read.sale.state is SaleState.CANCELLED
    acts = rig.do(Observed("ref1", closed(ok(1250))))
    late = journaled(acts)[0]
    assert [(s.state, s.receipt) for s in journaled(acts)] == [(SaleState.PAID, ReceiptState.NONE),
                                                              (SaleState.PAID, ReceiptState.PRINTING)]
    assert late.state is SaleState.PAID and late.paid_amount == 1250 and late.payment_id == "pay-ok"
    assert [p.copy for p in of(acts, Print)] == [False]  # the original receipt, once
    assert any(log.level == logging.ERROR and "paid after it ended" in log.message for log in of(acts, Log))
    rig.do(Printed("ref1"))
    # still watched (a second payment would be caught), never a second original, and the watch ends
    acts = rig.run(DEFAULT.late_watch, answer=closed(ok(1250), server_time=SERVER0 + DEFAULT.late_watch * 2))
    assert of(acts, Print) == [] and 0 < len(api(acts)) <= 2
    assert [(s.state, s.receipt, s.watch_until) for s in journaled(acts)] == [(SaleState.PAID, ReceiptState.PRINTED, 0)]
    assert api(rig.run(DEFAULT.late_watch, answer=closed(ok(1250)))) == []


def test_partial_money_after_the_end_goes_to_review():
    rig = cancelled_while_the_customer_was_paying()
    rig.until_api()
    acts = rig.do(Observed("ref1", opened(payments=(ok(500),))))
    assert [s.state for s in journaled(acts)] == [SaleState.REVIEW]
    assert of(acts, Print) == []


def test_the_late_watch_is_slow_and_ends():
    rig = cancelled_while_the_customer_was_paying()
    acts = rig.run(DEFAULT.late_watch + DEFAULT.late_interval, answer=paying())
    reads = api(acts)
    assert 0 < len(reads) <= DEFAULT.late_watch / DEFAULT.late_interval + 1  # about twice a minute, then never
    assert api(rig.run(DEFAULT.late_watch, answer=paying())) == []


def test_every_cancelled_sale_is_watched_through_the_grace_then_slowly_and_the_watch_ends():
    rig = waiting()
    rig.press(CLEAR)
    rig.do(CancelSent("ref1"))
    ended_at = rig.now
    (cancelled,) = journaled(rig.do(Observed("ref1", opened())))  # nobody tried to pay: it ends at once...
    assert cancelled.state is SaleState.CANCELLED and cancelled.watch_until == SERVER0 + DEFAULT.late_watch
    assert not rig.busy  # ...and the box is free for the next customer
    times = []
    for _ in range(int(2 * DEFAULT.late_watch)):
        for read in of(rig.tick(1.0), Read):
            times.append(rig.now - ended_at)
            rig.do(Observed(read.sale.reference, opened()))
    grace = [t for t in times if t <= DEFAULT.cancel_grace]
    assert len(grace) >= DEFAULT.cancel_grace / DEFAULT.watch_spacing - 1  # read again and again through the grace
    slow = [b - a for a, b in zip(times, times[1:], strict=False) if a > DEFAULT.cancel_grace]
    assert slow and all(gap == pytest.approx(DEFAULT.late_interval) for gap in slow)
    assert times[-1] >= DEFAULT.late_watch and times[-1] < DEFAULT.late_watch + DEFAULT.late_interval + 1
    assert journaled(rig.log)[-1].watch_until == 0  # the watch's end is journaled: a restart will not resume it


# ================================================================ the ledger: every save is the whole truth


def test_a_second_payment_found_after_printing_goes_to_review_and_keeps_the_printed_receipt():
    rig, _ = paid()
    rig.do(Printed("ref1"))
    _, acts = rig.until_api()  # the paid sale is looked at once more
    (read,) = api(acts)
    assert read.sale.state is SaleState.PAID and read.sale.receipt is ReceiptState.PRINTED
    acts = rig.do(Observed("ref1", closed(ok(1250, "a"), ok(1250, "b"))))
    (review,) = journaled(acts)
    assert (review.state, review.receipt, review.paid_amount) == (SaleState.REVIEW, ReceiptState.PRINTED, 2500)
    assert rig.screen.kind is ScreenKind.REVIEW and rig.leds is LedPattern.REVIEW
    assert of(acts, Print) == []


def test_a_late_payment_is_journaled_on_the_latest_record_and_the_watch_end_keeps_the_receipt():
    rig = cancelled_while_the_customer_was_paying()
    rig.until_api()
    rig.do(Observed("ref1", closed(ok(1250))))
    rig.do(Printed("ref1"))
    acts = rig.run(DEFAULT.late_watch * 2, answer=closed(ok(1250)))
    last = journaled(rig.log)[-1]
    assert (last.state, last.receipt, last.watch_until) == (SaleState.PAID, ReceiptState.PRINTED, 0)
    assert of(acts, Print) == []


def test_watches_and_refunds_in_the_journal_carry_on_after_a_restart():
    watched = journal_sale(SaleState.CANCELLED, "w1", watch_until=SERVER0 + 100)
    refunding = journal_sale(SaleState.REFUNDING, "r1", paid_amount=1250)
    rig = Rig()
    acts = rig.start([watched, refunding])
    assert {a.sale.reference for a in of(acts, Read)} == {"w1", "r1"}  # read at once, never a refund resent blind
    assert rig.kiosk.status().watching == ("w1",) and rig.kiosk.status().refunding == ("r1",)
    assert not rig.busy  # neither blocks a new sale


# ================================================================ refunds, confirmed by a read


def refunding(rig: Rig, sale: Sale, request: str = "q1") -> list[Action]:
    from mpqr_kiosk.core.events import RefundRequested

    return rig.do(RefundRequested(sale, request))


def test_a_refund_is_journaled_as_asked_then_confirmed_by_a_read():
    from mpqr_kiosk.core.actions import Refund, Reply
    from mpqr_kiosk.core.events import Refunded

    rig, _ = paid()
    (done,) = journaled(rig.do(Printed("ref1")))
    acts = refunding(rig, done)
    assert kinds([a for a in acts if isinstance(a, Save | Refund)]) == [Save, Refund]  # journaled first
    assert journaled(acts)[0].state is SaleState.REFUNDING
    assert rig.kiosk.status().refunding == ("ref1",)
    acts = rig.do(Refunded("ref1", "q1"))
    (read,) = of(acts, Read)  # accepted: a read says whether it is done
    assert of(acts, Reply) == []  # not answered yet: it is not confirmed
    acts = rig.do(Observed("ref1", closed(ok(1250))))  # still processing: approved money there
    assert of(acts, Save) == [] and rig.kiosk.status().refunding == ("ref1",)
    _, acts = rig.until_api()
    acts = rig.do(Observed("ref1", Observation(OrderPhase.CLOSED, (Payment("pay-ok", "refunded", 1250),))))
    assert [s.state for s in journaled(acts)] == [SaleState.REFUNDED]
    assert of(acts, Reply) == [Reply("q1", True, "", "ref1")]
    assert rig.kiosk.status().refunding == ()


def test_a_refund_the_api_refuses_goes_back_to_what_the_sale_was():
    from mpqr_kiosk.core.actions import Reply
    from mpqr_kiosk.core.events import RefundFailed

    review = journal_sale(SaleState.REVIEW, "v1", paid_amount=2500)
    rig = online()
    refunding(rig, review, "q2")
    acts = rig.do(RefundFailed("v1", "400 refund_amount_exceeds", "q2", definite=True))
    assert [s.state for s in journaled(acts)] == [SaleState.REVIEW]
    assert of(acts, Reply)[0].ok is False and "refund_amount_exceeds" in of(acts, Reply)[0].reason


def test_a_refund_whose_answer_was_lost_is_read_then_sent_again_only_while_the_money_is_still_there():
    from mpqr_kiosk.core.actions import Refund
    from mpqr_kiosk.core.events import RefundFailed

    rig, _ = paid()
    (done,) = journaled(rig.do(Printed("ref1")))
    refunding(rig, done)
    rig.do(RefundFailed("ref1", "timed out", "q1", definite=False))
    _, acts = rig.until_api()
    assert kinds(api(acts)) == [Read]  # read first: it may well have gone through
    acts = rig.do(Observed("ref1", closed(ok(1250))))
    assert of(acts, Refund) == [Refund(replace(done, state=SaleState.REFUNDING), "")]  # not refunded: again


def test_a_refund_nothing_confirms_in_time_goes_to_review():
    from mpqr_kiosk.core.events import Refunded

    rig, _ = paid()
    (done,) = journaled(rig.do(Printed("ref1")))
    refunding(rig, done)
    rig.do(Refunded("ref1", "q1"))
    rig.run(DEFAULT.refund_confirm + 1, answer=closed(ok(1250)))
    assert journaled(rig.log)[-1].state is SaleState.REVIEW


@pytest.mark.parametrize("state", [SaleState.CANCELLED, SaleState.REFUNDED, SaleState.FAILED])
def test_only_paid_or_review_sales_are_refunded(state):
    from mpqr_kiosk.core.actions import Refund, Reply

    rig = online()
    acts = refunding(rig, journal_sale(state))
    assert of(acts, Refund) == [] and of(acts, Save) == [] and of(acts, Reply)[0].ok is False


# ================================================================ bounds


def test_a_sale_above_the_sites_bound_is_refused_with_nothing_started():
    from mpqr_kiosk.core.actions import Reply

    rig = online("MLB")
    acts = rig.do(ChargeRequested(25_000_001, "q3"))
    assert api(acts) == [] and of(acts, Save) == [] and rig.ids == 0
    assert of(acts, Reply)[0].ok is False and "R$ 250.000,00" in of(acts, Reply)[0].reason
    rig.tick(DEFAULT.result_seconds)  # (the refusal's notice goes)
    rig.type("2500000")  # R$ 25.000,00 keyed: one more digit is R$ 250.000,01, past the bound
    assert rig.press("1")[0] == Sound(Beep.ERROR) and rig.screen.notice.kind is NoticeKind.TOO_MUCH
    assert rig.screen.entry == 2500000  # the refused digit changed nothing


def test_a_remote_sale_the_api_refuses_gives_nothing_back_to_the_operators_entry():
    rig = online()
    rig.do(ChargeRequested(1250))
    acts = rig.do(PushRefused("ref1", "400"))
    assert journaled(acts)[0].state is SaleState.FAILED
    assert rig.screen.kind is ScreenKind.READY and rig.screen.items == ()
    assert kinds(api(rig.do(ChargeRequested(300)))) == [Push]  # the next remote sale is not refused
