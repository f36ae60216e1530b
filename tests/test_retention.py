"""Journal retention: old finished sales leave the journal, their days' counts and totals stay (``report``
adds up the same before and after), and nothing that needs a person or is unfinished is ever pruned."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import pytest
from rig import Rig
from test_report import CAFE, KEYED, PAO, SP, at, sale, write

from mpqr_kiosk import config as cfg
from mpqr_kiosk import report, retention
from mpqr_kiosk.core.model import ReceiptState, SaleState
from mpqr_kiosk.emulator.server import EmulatorServer
from mpqr_kiosk.emulator.state import Emulator
from mpqr_kiosk.journal import Journal

OLD, RECENT = "2025-06-10", "2026-11-20"
NOW = at("2026-12-01", "12:00")


@pytest.fixture
def journal(tmp_path, monkeypatch) -> Journal:
    """Two old days and a recent one; among the old sales, some that must stay."""
    refunded = sale("O4", SaleState.PAID, 3000, paid=at(OLD, "10:00"))
    steps = [
        (at(OLD, "09:00"), sale("O1", SaleState.PAID, 1500, paid=at(OLD, "09:00"), items=(PAO, CAFE))),
        (at(OLD, "09:30"), sale("O2", SaleState.PAID, 2150, paid=at(OLD, "09:30"), items=(PAO, KEYED))),
        (at(OLD, "10:00"), refunded),
        (at("2025-06-11", "08:00"), replace(refunded, state=SaleState.REFUNDING)),
        (at("2025-06-11", "08:01"), replace(refunded, state=SaleState.REFUNDED)),
        (at(OLD, "11:00"), sale("O5", SaleState.CANCELLED, 800, created=at(OLD, "11:00"))),
        (at(OLD, "12:00"), sale("O6", SaleState.EXPIRED, 900, created=at(OLD, "12:00"))),
        # these stay whatever their age: money for a person, a receipt never printed, a refund not confirmed
        (at(OLD, "13:00"), sale("O7", SaleState.REVIEW, 1000, paid=at(OLD, "13:00"), paid_amount=500)),
        (at(OLD, "14:00"), sale("O8", SaleState.PAID, 700, paid=at(OLD, "14:00"), receipt=ReceiptState.NONE)),
        (at(OLD, "15:00"), replace(sale("O9", SaleState.PAID, 600, paid=at(OLD, "15:00")),
                                   state=SaleState.REFUNDING)),
        (at(RECENT, "10:00"), sale("N1", SaleState.PAID, 4200, paid=at(RECENT, "10:00"))),
    ]
    state = write(tmp_path, monkeypatch, steps)
    j = Journal(state)
    yield j
    j.close()


def days(j: Journal, first: str, last: str) -> list[dict]:
    reports = report.of_journal(j, SP, date.fromisoformat(first), date.fromisoformat(last), "MLB")
    return json.loads(report.as_json(reports))


def totals_only(day: dict) -> dict:
    """What must add up the same after pruning: every count and amount (the references may go)."""
    keep = {k: v for k, v in day.items() if k not in ("pruned", "live")}
    for kind in ("paid", "refunds", "cancelled", "expired", "failed"):
        keep[kind] = keep[kind]["count"]
    return keep


def test_old_finished_sales_leave_and_the_days_add_up_the_same(journal):
    before = days(journal, "2025-06-10", "2025-06-11")
    assert retention.prune(journal, SP, "MLB", 400, NOW) == 5
    assert {s.reference for s in journal.between(0, NOW + 1)} == {"O7", "O8", "O9", "N1"}
    assert journal.history("O1") == []  # the history goes with the sale
    after = days(journal, "2025-06-10", "2025-06-11")
    assert [totals_only(d) for d in after] == [totals_only(d) for d in before]
    old = after[0]
    # O1, O2, O4 pruned; O8 (unprinted) and O9 (refund pending) kept
    assert old["paid"] == {"count": 5, "references": ["O8", "O9"]}
    assert old["taken"]["text"] == "R$ 79,50" and old["review"] == ["O7"]
    assert old["receipts_queued"] == ["O8"] and old["pruned"] == {"paid": 3, "cancelled": 1, "expired": 1}
    items = {i["code"]: (i["quantity"], i["amount"]["minor"]) for i in old["items"]}
    assert items == {"789100": (4, 1800), "789200": (1, 600)}
    refund_day = after[1]
    assert refund_day["refunds"] == {"count": 1, "references": [], "pending": []}
    assert refund_day["refunded"]["text"] == "R$ 30,00" and refund_day["pruned"] == {"refunds": 1}


def test_pruning_again_adds_to_the_kept_totals_and_a_young_journal_loses_nothing(journal, tmp_path, monkeypatch):
    assert retention.prune(journal, SP, "MLB", 400, at("2025-12-01", "12:00")) == 0  # nothing is 400 days old yet
    assert retention.prune(journal, SP, "MLB", 400, NOW) == 5
    assert retention.prune(journal, SP, "MLB", 400, NOW) == 0
    # a late sale of the same old day, pruned later, adds to the day's kept totals
    late = sale("O10", SaleState.PAID, 1000, paid=at(OLD, "20:00"))
    monkeypatch.setattr("mpqr_kiosk.journal.time.time", lambda: at(OLD, "20:00"))
    journal.save(late)
    monkeypatch.undo()
    assert retention.prune(journal, SP, "MLB", 400, NOW) == 1
    [old] = days(journal, OLD, OLD)
    assert old["paid"]["count"] == 6 and old["taken"]["minor"] == 1500 + 2150 + 3000 + 700 + 600 + 1000
    assert journal.archived(OLD, OLD)[(OLD, "MLB")]["counts"]["paid"] == 4


def test_the_daemon_prunes_once_mercado_pagos_clock_is_known(tmp_path, monkeypatch):
    old = sale("POS001-old", SaleState.PAID, 990, paid=at(OLD, "10:00"))
    write(tmp_path, monkeypatch, [(at(OLD, "10:00"), old)])
    emulator = Emulator(site="MLB", user_id=123456789)
    with EmulatorServer(emulator) as server:
        emulator.url = server.url
        rig = Rig(emulator, tmp_path)
        try:
            assert rig.until(lambda: rig.journal.get("POS001-old") is None, 5)
            [(key, kept)] = rig.journal.archived().items()
            assert key[1] == "MLB" and kept["counts"]["paid"] == 1 and kept["taken"] == 990
        finally:
            rig.stop()


def test_retention_days_is_checked():
    with pytest.raises(cfg.ConfigError, match="state.retention_days: must be between 30 and 3650 days"):
        cfg.parse({"mercadopago": {"user_id": 1}, "state": {"retention_days": 7}})
    assert cfg.parse({"mercadopago": {"user_id": 1}}).state.retention_days == 400
