"""``mpqr-kiosk report`` and ``sales`` against a journal written by the real ``Journal``: counts and totals
field by field, in each site's format, on the shop's local day (Mercado Pago's clock, not the box's)."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mpqr_kiosk import journal as journal_module
from mpqr_kiosk import report
from mpqr_kiosk.core.model import Item, Payment, ReceiptState, Sale, SaleState
from mpqr_kiosk.journal import Journal

SP = ZoneInfo("America/Sao_Paulo")  # UTC-3, no DST since 2019
PAO = Item("Pão de queijo", 450, 2, "P1", "789100")
CAFE = Item("Café", 600, 1, "C1", "789200")
KEYED = Item("Valor", 1250)


def at(day: str, clock: str, zone=SP) -> float:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=zone).timestamp()


def sale(ref: str, state: SaleState, total: int, *, paid: float = 0.0, created: float = 0.0, site: str = "MLB",
         items: tuple = (), receipt: ReceiptState = ReceiptState.PRINTED, paid_amount: int | None = None) -> Sale:
    taken = state in (SaleState.PAID, SaleState.REFUNDING, SaleState.REFUNDED, SaleState.REVIEW) and paid
    return Sale(reference=ref, idempotency_key="k-" + ref, site=site, items=items or (Item("Valor", total),),
                total=total, created_at=created or paid - 60, state=state, paid_at=paid,
                paid_amount=(total if paid_amount is None else paid_amount) if taken else 0,
                payment_id="p-" + ref if taken else "", receipt=receipt if taken else ReceiptState.NONE,
                expires_at=(created or paid - 60) + 600, ttl=600,
                payments=(Payment("p-" + ref, "approved", total),) if taken else ())


def write(tmp_path: Path, monkeypatch, steps: list[tuple[float, Sale]]) -> Path:
    """Save each sale at the given wall-clock time (the journal stamps its history with it)."""
    state = tmp_path / "state"
    journal = Journal(state)
    for when, one in steps:
        monkeypatch.setattr(journal_module.time, "time", lambda when=when: when)
        journal.save(one)
    journal.close()
    monkeypatch.undo()
    return state


@pytest.fixture
def day_journal(tmp_path, monkeypatch) -> Path:
    """2026-11-30 in São Paulo: every kind of sale, a refund asked the next morning, and a sale paid at
    23:50 local time (already 02:50 the next day in UTC) that belongs to the 30th."""
    d = "2026-11-30"
    paid1 = sale("R1", SaleState.PAID, 1500, paid=at(d, "09:15"), items=(PAO, CAFE))
    paid2 = sale("R2", SaleState.PAID, 2150, paid=at(d, "12:00"), items=(PAO, KEYED), receipt=ReceiptState.NONE)
    late = sale("R3", SaleState.PAID, 600, paid=at(d, "23:50"), items=(CAFE,))
    refunded = sale("R4", SaleState.PAID, 3000, paid=at(d, "10:00"))
    cancelled = sale("R5", SaleState.CANCELLED, 800, created=at(d, "11:00"))
    expired = sale("R6", SaleState.EXPIRED, 900, created=at(d, "13:00"))
    review = sale("R7", SaleState.REVIEW, 1000, paid=at(d, "14:00"), paid_amount=500)
    next_day = sale("R8", SaleState.PAID, 4200, paid=at("2026-12-01", "00:10"))
    steps = [(at(d, "09:15"), paid1), (at(d, "12:00"), paid2), (at(d, "23:50"), late), (at(d, "10:00"), refunded),
             (at(d, "11:00"), cancelled), (at(d, "13:00"), expired), (at(d, "14:00"), review),
             (at("2026-12-01", "00:10"), next_day),
             (at("2026-12-01", "08:00"), replace(refunded, state=SaleState.REFUNDING)),
             (at("2026-12-01", "08:01"), replace(refunded, state=SaleState.REFUNDED))]
    return write(tmp_path, monkeypatch, steps)


def config(tmp_path: Path, state: Path, site: str = "MLB", zone: str = "America/Sao_Paulo") -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(f'[mercadopago]\nsite = "{site}"\nuser_id = 1\n'
                    f'[shop]\ntimezone = "{zone}"\n[state]\ndir = "{state}"\n')
    return path


def cli(conf: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", str(conf), *args],
                          capture_output=True, text=True, timeout=60)


def test_the_day_counts_every_kind_of_sale_on_the_shops_local_day(day_journal, tmp_path):
    done = cli(config(tmp_path, day_journal), "report", "--date", "2026-11-30", "--json")
    assert done.returncode == 0, done.stderr
    [day] = json.loads(done.stdout)
    assert day["date"] == "2026-11-30" and day["site"] == "MLB" and day["currency"] == "BRL"
    assert day["paid"] == {"count": 4, "references": ["R1", "R4", "R2", "R3"]}  # in order of payment
    assert day["taken"] == {"minor": 1500 + 3000 + 2150 + 600, "text": "R$ 72,50"}
    # the refund of R4 was asked on the 1st: it is the 1st's, not the 30th's
    assert day["refunds"] == {"count": 0, "references": [], "pending": []}
    assert day["net"]["text"] == "R$ 72,50"
    assert day["cancelled"] == {"count": 1, "references": ["R5"]} and day["review"] == ["R7"]
    assert day["expired"] == {"count": 1, "references": ["R6"]} and day["pruned"] == {}
    assert day["receipts_queued"] == ["R2"] and day["live"] == []
    items = {i["code"]: (i["quantity"], i["amount"]["minor"]) for i in day["items"]}
    assert items == {"789100": (4, 1800), "789200": (2, 1200)}
    assert day["keyed"]["minor"] == 1250 + 3000  # R2's keyed amount, and R4 (refunded on the 1st) was keyed


def test_a_refund_counts_on_the_day_it_was_asked_and_the_range_lists_each_day(day_journal, tmp_path):
    done = cli(config(tmp_path, day_journal), "report", "--from", "2026-11-29", "--to", "2026-12-01", "--json")
    days = {d["date"]: d for d in json.loads(done.stdout)}
    assert list(days) == ["2026-11-29", "2026-11-30", "2026-12-01"]
    assert days["2026-11-29"]["paid"]["count"] == 0 and days["2026-11-29"]["taken"]["minor"] == 0
    first = days["2026-12-01"]
    assert first["paid"]["references"] == ["R8"] and first["taken"]["text"] == "R$ 42,00"
    assert first["refunds"]["references"] == ["R4"] and first["refunded"]["text"] == "R$ 30,00"
    assert first["net"] == {"minor": 1200, "text": "R$ 12,00"}


def test_midnight_is_the_shops_midnight(day_journal, tmp_path):
    """In UTC, R3 (23:50 in São Paulo) is on the 1st; in Lisbon's zone the whole day shifts."""
    utc = cli(config(tmp_path, day_journal, zone="UTC"), "report", "--date", "2026-12-01", "--json")
    refs = json.loads(utc.stdout)[0]["paid"]["references"]
    assert "R3" in refs and "R8" in refs
    sp = cli(config(tmp_path, day_journal), "report", "--date", "2026-12-01", "--json")
    assert json.loads(sp.stdout)[0]["paid"]["references"] == ["R8"]


def test_text_and_csv_say_the_same_in_the_sites_format(day_journal, tmp_path):
    conf = config(tmp_path, day_journal)
    text = cli(conf, "report", "--date", "2026-11-30").stdout.splitlines()
    assert text[0] == "2026-11-30  MLB"
    assert text[1].split() == ["paid", "sales", "4", "taken", "R$", "72,50"]
    assert text[2].split()[:3] == ["refunds", "0", "refunded"]
    assert "NEEDS REVIEW" in text[6] and "R7" in text[6]
    assert text[7].split()[:4] == ["receipts", "queued", "1", "R2"]
    assert "4 x Pão de queijo  R$ 18,00" in "\n".join(text)
    rows = list(csv.DictReader(io.StringIO(cli(conf, "report", "--date", "2026-11-30", "--csv").stdout)))
    assert rows == [{"date": "2026-11-30", "site": "MLB", "currency": "BRL", "paid_sales": "4", "taken": "72.50",
                     "refunds": "0", "refunded": "0.00", "net": "72.50", "cancelled": "1", "expired": "1",
                     "failed": "0", "review": "1", "receipts_queued": "1", "review_references": "R7"}]


@pytest.mark.parametrize(("site", "total", "text", "plain"), [
    ("MLA", 123450, "$ 1.234,50", "1234.50"),
    ("MCO", 15000, "$ 15.000", "15000"),  # whole pesos
    ("MLM", 99, "$0.99", "0.99"),
    ("MPE", 250000, "S/ 2,500.00", "2500.00"),
    ("MLC", 15000, "$ 15.000", "15000"),
    ("MLU", 123450, "$ 1.234,50", "1234.50"),
    ("MLB", 123450, "R$ 1.234,50", "1234.50"),
])
def test_each_sites_money(tmp_path, monkeypatch, site, total, text, plain):
    state = write(tmp_path, monkeypatch, [(at("2026-11-30", "10:00"), sale("S1", SaleState.PAID, total,
                                                                           paid=at("2026-11-30", "10:00"),
                                                                           site=site))])
    conf = config(tmp_path, state, site=site)
    [day] = json.loads(cli(conf, "report", "--date", "2026-11-30", "--json").stdout)
    assert day["taken"]["text"] == text
    [row] = csv.DictReader(io.StringIO(cli(conf, "report", "--date", "2026-11-30", "--csv").stdout))
    assert row["taken"] == plain


def test_sales_lists_the_day_filters_by_state_and_shows_one_sale_whole(day_journal, tmp_path):
    conf = config(tmp_path, day_journal)
    rows = json.loads(cli(conf, "sales", "--date", "2026-11-30", "--json").stdout)
    assert [r["reference"] for r in rows] == ["R1", "R4", "R5", "R2", "R6", "R7", "R3"]  # by time
    r2 = next(r for r in rows if r["reference"] == "R2")
    assert r2 == {"reference": "R2", "time": "2026-11-30 12:00:00", "items": "2 x Pão de queijo; Valor",
                  "total": "R$ 21,50", "state": "paid", "payment_id": "p-R2", "receipt": "none", "copies": 0,
                  "total_minor": 2150}
    paid = json.loads(cli(conf, "sales", "--date", "2026-11-30", "--state", "paid", "--json").stdout)
    assert {r["reference"] for r in paid} == {"R1", "R2", "R3"}  # R4 was refunded since
    one = cli(conf, "sales", "--ref", "R4")
    assert one.returncode == 0
    lines = one.stdout.splitlines()
    assert lines[0] == "sale     R4  (MLB)" and lines[3] == "state    refunded"
    assert [line.split()[3] for line in lines if line.startswith("history")] == ["paid", "refunding", "refunded"]
    assert "history  2026-12-01 08:00:00  refunding" in one.stdout
    whole = json.loads(cli(conf, "sales", "--ref", "R4", "--json").stdout)
    assert [h["state"] for h in whole["history"]] == ["paid", "refunding", "refunded"]
    assert whole["payments"] == [{"id": "p-R4", "status": "approved", "amount": 3000}]
    listing = cli(conf, "sales", "--date", "2026-11-30").stdout.splitlines()
    assert listing[3].split()[:7] == ["R2", "2026-11-30", "12:00:00", "R$", "21,50", "paid", "receipt"]


def test_plain_errors(day_journal, tmp_path):
    conf = config(tmp_path, day_journal)
    done = cli(conf, "sales", "--ref", "NOPE")
    assert done.returncode == 4 and "no sale 'NOPE'" in done.stderr
    done = cli(conf, "report", "--date", "2026-11-30", "--from", "2026-11-01")
    assert done.returncode == 2 and "give --date, or --from and --to, not both" in done.stderr
    done = cli(conf, "report", "--from", "2026-12-02", "--to", "2026-12-01")
    assert done.returncode == 2 and "--from 2026-12-02 is after --to 2026-12-01" in done.stderr
    done = cli(config(tmp_path, tmp_path / "empty"), "report")
    assert done.returncode == 3 and "no sales journal here yet" in done.stderr
    assert not (tmp_path / "empty").exists()  # a report creates nothing
    done = cli(config(tmp_path, day_journal, zone="Mars/Olympus"), "report")
    assert done.returncode == 3 and "shop.timezone: unknown time zone" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="handing files to another user needs root")
def test_the_report_opens_the_journal_read_only_and_leaves_its_files_to_the_daemons_user(day_journal, tmp_path):
    """Run as root beside a stopped daemon, a reader's -wal and -shm must not lock the daemon's user out."""
    daemon_user = (4321, 4321)
    for path in [day_journal, *day_journal.iterdir()]:
        os.chown(path, *daemon_user)
    rows = sqlite3.connect(day_journal / "sales.sqlite3").execute("SELECT count(*) FROM history").fetchone()
    cli(config(tmp_path, day_journal), "report", "--date", "2026-11-30")
    sidecars = [p for p in day_journal.iterdir() if p.name != "sales.sqlite3"]
    assert sidecars and all((p.stat().st_uid, p.stat().st_gid) == daemon_user for p in sidecars)
    assert sqlite3.connect(day_journal / "sales.sqlite3").execute("SELECT count(*) FROM history").fetchone() == rows
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        Journal.reader(day_journal).db.execute("DELETE FROM sales")


def test_build_gives_every_day_even_without_sales():
    days = report.build([], {}, SP, date(2026, 11, 1), date(2026, 11, 3), "MLA")
    assert [(d.day.day, d.site, len(d.paid), d.net) for d in days] == [(1, "MLA", 0, 0), (2, "MLA", 0, 0),
                                                                         (3, "MLA", 0, 0)]
