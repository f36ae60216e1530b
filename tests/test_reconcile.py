"""``mpqr-kiosk reconcile`` against the emulator's payments search: the real daemon takes the sales, then the
journal and Mercado Pago are made to disagree the ways a shop meets (a reinstall, a refund made in the
Mercado Pago app), and every kind of difference is classified."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date

import pytest
import requests
from daemon_harness import TOKEN, Daemon
from flavours import FLAVOURS, ids

from mpqr_kiosk import reconcile
from mpqr_kiosk.core.model import Sale, SaleState
from mpqr_kiosk.core.sites import site
from mpqr_kiosk.emulator.faults import Fault
from mpqr_kiosk.emulator.printer import LoopbackPrinter
from mpqr_kiosk.emulator.server import EmulatorServer
from mpqr_kiosk.emulator.state import Emulator
from mpqr_kiosk.journal import Journal
from mpqr_kiosk.mercadopago.http import HttpClient

pytestmark = pytest.mark.slow
BOTH_APIS = pytest.mark.parametrize("flavour", [FLAVOURS[0], FLAVOURS[3]], ids=ids)


@pytest.fixture
def daemon(tmp_path, emulator, flavour):
    printer = LoopbackPrinter().up()
    d = Daemon(tmp_path, emulator, printer, api=flavour[0])
    yield d
    d.close()
    printer.down()


def paid_sale(d: Daemon, amount: str) -> str:
    reference = d.sale(amount)
    assert d.until(lambda: d.state_of(reference) == "waiting")
    d.emulator.pay("POS001", "approved")
    assert d.until(lambda: d.receipt_of(reference) == "printed", 20), d.log.read_text()[-2000:]
    return reference


def run(d: Daemon, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", str(d.config), "reconcile", *args],
                          capture_output=True, text=True, timeout=60)


@BOTH_APIS
def test_a_day_that_matches_then_a_reinstall_that_lost_a_paid_sale(daemon):
    daemon.start()
    first, second = paid_sale(daemon, "21.50"), paid_sale(daemon, "7.00")
    done = run(daemon)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "everything matches"
    assert daemon.terminate() == 0
    # the box is reinstalled: a new, empty journal; Mercado Pago still has both payments
    for path in daemon.state.iterdir():
        path.unlink()
    Journal(daemon.state).close()
    done = run(daemon, "--json")
    assert done.returncode == 4, done.stderr
    answer = json.loads(done.stdout)
    assert answer["differences"] == 2 and answer["pos"] == "POS001"
    lines = {line["reference"]: line for line in answer["lines"]}
    assert set(lines) == {first, second}
    assert lines[first]["kind"] == "money_without_sale" and lines[first]["journal"] == "absent"
    assert lines[first]["mp_amount"] == 2150 and lines[second]["mp_amount"] == 700
    text = run(daemon).stdout
    assert f"DIFFERENT  MONEY WITHOUT A PAID SALE: {first}  journal absent R$ 0,00, Mercado Pago approved R$ 21,50" \
        in text
    assert text.splitlines()[-1] == "2 differences"
    assert TOKEN not in text + done.stdout + done.stderr


@BOTH_APIS
def test_a_refund_made_outside_the_box_is_a_difference(daemon, flavour):
    daemon.start()
    reference = paid_sale(daemon, "30.00")
    sale = daemon.journaled(reference)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    if flavour[0] == "instore":
        url = f"{daemon.emulator.url}/v1/payments/{sale.payment_id}/refunds"
    else:
        url = f"{daemon.emulator.url}/v1/orders/{sale.order_id}/refund"
    answer = requests.post(url, json={}, headers={**auth, "X-Idempotency-Key": "outside-refund"}, timeout=10)
    assert answer.status_code in (200, 201), answer.text
    done = run(daemon, "--json")
    assert done.returncode == 4
    [line] = json.loads(done.stdout)["lines"]
    assert (line["kind"], line["journal"], line["mp_amount"]) == ("refunded_at_mp", "paid", 0)


def test_errors_are_plain_and_exit_as_documented(daemon):
    daemon.start()
    paid_sale(daemon, "5.00")
    daemon.emulator.tokens = {"SOMEONE-ELSE-1": 1}  # our token is not known any more
    done = run(daemon)
    assert done.returncode == 3 and "Mercado Pago refused the token" in done.stderr
    assert TOKEN not in done.stderr
    daemon.emulator.tokens = None
    daemon.emulator.faults.arm(Fault("read", "http503", count=1000, after=False))
    done = run(daemon)
    assert done.returncode == 75 and "cannot read Mercado Pago's payments" in done.stderr and "try again" in done.stderr
    daemon.emulator.faults.clear()
    done = run(daemon, "--date", "2026-02-30")
    assert done.returncode == 2 and "is not a date" in done.stderr


def sale(ref: str, state: SaleState, total: int, paid_at: float = 1_764_500_000.0) -> Sale:
    return Sale(ref, "k" + ref, "MLB", (), total, paid_at - 10, state=state, paid_at=paid_at,
                paid_amount=total if state in (SaleState.PAID, SaleState.REFUNDED, SaleState.REVIEW) else 0)


def payment(ref: str, amount: int, status: str = "approved", refunded: int = 0) -> reconcile.MpPayment:
    return reconcile.MpPayment("9" + ref, status, amount, refunded, ref, 1_764_500_000.0)


def test_every_kind_of_line():
    day = date.fromtimestamp(1_764_500_000.0)
    sales = [sale("POS001-a", SaleState.PAID, 1000), sale("POS001-b", SaleState.PAID, 1000),
             sale("POS001-c", SaleState.PAID, 1000), sale("POS001-d", SaleState.REFUNDED, 1000),
             sale("POS001-e", SaleState.CANCELLED, 1000), sale("POS001-f", SaleState.REVIEW, 1000),
             sale("POS001-g", SaleState.WAITING, 1000), sale("POS001-h", SaleState.PAID, 1000)]
    payments = [payment("POS001-a", 1000), payment("POS001-c", 900), payment("POS001-d", 1000),
                payment("POS001-e", 1000), payment("POS001-f", 500), payment("POS001-h", 1000, "refunded"),
                payment("POS001-x", 1234), payment("OTHERPOS-y", 999), payment("POS001-b", 1000, "rejected")]
    lines = {line.reference: line.kind for line in reconcile.compare(sales, payments, "POS001-", day, None)}
    assert lines == {"POS001-a": "ok", "POS001-b": "paid_not_approved", "POS001-c": "amount_differs",
                     "POS001-d": "refund_not_at_mp", "POS001-e": "money_without_sale", "POS001-f": "review",
                     "POS001-g": "live", "POS001-h": "refunded_at_mp", "POS001-x": "money_without_sale"}
    # another POS's payments are not this box's business
    assert "OTHERPOS-y" not in lines


def test_the_search_is_read_page_by_page(monkeypatch, emulator, tmp_path):
    """Seven sales paid straight at the emulator, read three at a time."""
    monkeypatch.setattr(reconcile, "PAGE", 3)
    client = HttpClient(emulator.url, TOKEN)
    for n in range(7):
        body = {"external_reference": f"POS001-page{n}", "title": "Venda", "description": "Venda",
                "total_amount": 10 + n,
                "items": [{"title": "Valor", "unit_price": 10 + n, "quantity": 1, "unit_measure": "unit",
                           "total_amount": 10 + n}]}
        client.request("PUT", "/instore/qr/seller/collectors/123456789/pos/POS001/orders", json=body)
        emulator.pay("POS001", "approved")
    found = reconcile.fetch(client, site("MLB"), 0, 4_102_444_800)
    assert sorted(p.reference for p in found) == [f"POS001-page{n}" for n in range(7)]
    assert sorted(p.amount for p in found) == [1000 + 100 * n for n in range(7)]
    pages = [r for r in emulator.requests() if r["path"] == "/v1/payments/search"]
    assert len(pages) == 3


def test_the_emulators_search_answers_the_documented_filters_and_errors(emulator):
    client = HttpClient(emulator.url, TOKEN)
    for n in (1, 2):
        body = {"external_reference": f"POS001-f{n}", "title": "Venda", "description": "Venda", "total_amount": n,
                "items": [{"title": "Valor", "unit_price": n, "quantity": 1, "unit_measure": "unit",
                           "total_amount": n}]}
        client.request("PUT", "/instore/qr/seller/collectors/123456789/pos/POS001/orders", json=body)
        emulator.pay("POS001", "approved")
    one = client.request("GET", "/v1/payments/search", params={"external_reference": "POS001-f2"})
    assert one["paging"]["total"] == 1 and one["results"][0]["external_reference"] == "POS001-f2"
    assert one["results"][0]["status"] == "approved" and one["results"][0]["transaction_amount"] == 2
    newest = client.request("GET", "/v1/payments/search", params={"sort": "date_created", "criteria": "desc",
                                                                   "range": "date_created", "begin_date": "NOW-1DAYS",
                                                                   "end_date": "NOW"})
    assert [p["external_reference"] for p in newest["results"]][:2] == ["POS001-f2", "POS001-f1"]
    for params, code in (({"sort": "amount"}, 1003), ({"criteria": "up"}, 1004), ({"limit": "5000"}, 1000),
                         ({"range": "date_created", "begin_date": "yesterday"}, 1001)):
        answer = requests.get(f"{emulator.url}/v1/payments/search", params=params,
                              headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert answer.status_code == 400 and answer.json()["cause"][0]["code"] == code, params


def test_a_sales_payment_outside_the_days_window_is_looked_up_by_reference(tmp_path):
    """Mercado Pago dated the payment days before the journal's day (a clock far off, a payment long
    after its order): the search by the sale's external_reference still finds it."""
    emulator = Emulator(site="MLB", user_id=123456789, clock=lambda: time.time() - 5 * 86400)
    with EmulatorServer(emulator) as server:
        emulator.url = server.url
        printer = LoopbackPrinter().up()
        daemon = Daemon(tmp_path, emulator, printer)
        client = HttpClient(emulator.url, TOKEN)
        body = {"external_reference": "POS001-farclock", "title": "Venda", "description": "Venda",
                "total_amount": 12, "items": [{"title": "Valor", "unit_price": 12, "quantity": 1,
                                               "unit_measure": "unit", "total_amount": 12}]}
        client.request("PUT", "/instore/qr/seller/collectors/123456789/pos/POS001/orders", json=body)
        paid = emulator.pay("POS001", "approved")["payment"]
        journal = Journal(daemon.state)
        journal.save(Sale("POS001-farclock", "k", "MLB", (), 1200, time.time(), state=SaleState.PAID,
                          paid_at=time.time(), paid_amount=1200, payment_id=str(paid["id"])))
        journal.close()
        done = run(daemon, "--json")
        printer.down()
    assert done.returncode == 0, done.stdout + done.stderr
    [line] = json.loads(done.stdout)["lines"]
    assert (line["reference"], line["kind"], line["mp_amount"]) == ("POS001-farclock", "ok", 1200)


@pytest.mark.parametrize("flavour", [FLAVOURS[3]], ids=ids)
def test_orders_api_payments_the_search_does_not_show_are_read_from_their_order(daemon):
    """Whether /v1/payments/search shows Orders-API payments is not documented: if it does not, a paid
    sale is read from its own order and still matches (no false alarm)."""
    daemon.emulator.orders.payments = lambda user_id: []
    daemon.start()
    reference = paid_sale(daemon, "21.50")
    done = run(daemon, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    [line] = json.loads(done.stdout)["lines"]
    assert (line["reference"], line["kind"], line["mp_amount"]) == (reference, "ok", 2150)
