"""The day's closing ticket: asked for with ``* * #`` on the idle keypad or ``report --print``, printed after
the receipts before it, in its own layout marked as a report at its top and bottom."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime

import pytest
from daemon_harness import Daemon
from escpos.printer import Dummy
from rig import Rig
from test_kiosk import Rig as CoreRig
from test_kiosk import beeps, kinds, of, online
from test_receipt import escpos_text

from mpqr_kiosk.core import events as ev
from mpqr_kiosk.core.actions import PrintReport, Reply, Save
from mpqr_kiosk.core.model import Beep, Shop
from mpqr_kiosk.core.sites import site
from mpqr_kiosk.emulator.printer import LoopbackPrinter
from mpqr_kiosk.emulator.server import EmulatorServer
from mpqr_kiosk.emulator.state import Emulator
from mpqr_kiosk.receipt import build_closing_ticket, print_receipt
from mpqr_kiosk.report import DayReport, ItemLine


def test_star_star_hash_on_the_idle_keypad_asks_for_the_ticket_and_charges_nothing():
    rig = online()
    actions = rig.press("*", "*", ev.ENTER)
    assert of(actions, PrintReport) == [PrintReport()]
    assert Save not in kinds(actions)  # no sale
    assert rig.kiosk.status().sale is None
    # anything in between is a normal entry again: "* 5 #" charges 0,05, "* * C #" nothing
    assert of(rig.press("*", "5", ev.ENTER), PrintReport) == []
    rig = online()
    assert of(rig.press("*", "*", ev.CLEAR, ev.ENTER), PrintReport) == []
    # a third star is refused like any key that does not fit, and changes nothing
    assert beeps(rig.press("*", "*", "*"))[-1] is Beep.ERROR
    assert of(rig.press(ev.ENTER), PrintReport) == [PrintReport()]


def test_stars_after_an_amount_still_multiply():
    rig = online()
    rig.press("2", "*")
    assert of(rig.press("*", ev.ENTER), PrintReport) == []


def test_the_control_request_is_answered_once_the_ticket_is_printed_or_not():
    rig = CoreRig()
    rig.start()
    actions = rig.do(ev.ReportRequested(date(2026, 11, 30), "r1"))
    assert of(actions, PrintReport) == [PrintReport(date(2026, 11, 30), "r1")]
    assert of(rig.do(ev.ReportPrinted(True, request_id="r1")), Reply) == [Reply("r1", True)]
    assert of(rig.do(ev.ReportPrinted(False, "printer out of paper", "r2")), Reply) == [
        Reply("r2", False, "printer out of paper")]


def day(site_id: str) -> DayReport:
    r = DayReport(date(2026, 11, 30), site_id, paid=["a", "b", "c"], taken=7250, refunds=["d"], refunded=1000,
                  cancelled=["e"], expired=["f", "g"], review=["POS001-abc"], unprinted=["c"], keyed=1250)
    r.items["789100"] = ItemLine("789100", "Pão de queijo", 4, 1800)
    return r


@pytest.mark.parametrize(("site_id", "title", "not_receipt", "paid", "net"), [
    ("MLB", "*** FECHAMENTO DO DIA ***", "RELATÓRIO - NÃO É RECIBO", "Vendas pagas: 3", "R$ 62,50"),
    ("MLA", "*** CIERRE DEL DÍA ***", "INFORME - NO ES COMPROBANTE", "Ventas pagadas: 3", "$ 62,50"),
])
def test_the_ticket_parses_back_and_is_marked_as_a_report_at_top_and_bottom(site_id, title, not_receipt, paid,
                                                                            net):
    printer = Dummy(profile="TM-T20II")
    ticket = build_closing_ticket(day(site_id), Shop("Padaria Teste"), site(site_id), datetime(2026, 11, 30, 21, 5))
    print_receipt(printer, ticket)
    rows = [row.strip() for row in escpos_text(printer.output, printer)]
    assert rows[0] == title and rows[1] == not_receipt  # the top ...
    assert rows[-2] == title and rows[-1] == not_receipt  # ... and the bottom
    assert rows[2] == "Padaria Teste"
    assert any(row.startswith(paid) and row.endswith(site(site_id).format(7250)) for row in rows)
    assert any(row.endswith(net) and row.split()[0] in ("Líquido", "Neto") for row in rows)
    assert "POS001-abc" in rows  # the sale in review, by reference
    assert any(row.startswith("4 x Pão de queijo") for row in rows)
    assert not ticket.qr and b"\x1d(k" not in printer.output  # no QR: nothing to mistake for a receipt's
    assert printer.output.count(b"\x1dV") == 1  # one cut


@pytest.fixture
def kiosk(tmp_path):
    emulator = Emulator(site="MLB", user_id=123456789)
    with EmulatorServer(emulator) as server:
        emulator.url = server.url
        rig = Rig(emulator, tmp_path)
        yield rig
        rig.stop()


def test_the_assembled_kiosk_prints_the_days_ticket_after_the_receipt(kiosk):
    kiosk.runtime.post(ev.Scan("7891000100103"))
    kiosk.runtime.post(ev.Scan("7891000100103"))
    reference = kiosk.charge("")
    assert kiosk.until(lambda: kiosk.state(reference) == "waiting")
    kiosk.emulator.pay("POS001", "approved")
    assert kiosk.printed(reference)
    kiosk.keys("**#")
    assert kiosk.until(lambda: b"FECHAMENTO DO DIA" in kiosk.receipt_bytes(), 5)
    data = kiosk.receipt_bytes()
    assert data.index(reference.encode()) < data.index(b"FECHAMENTO DO DIA")  # the receipt came first
    ticket = data[data.index(b"FECHAMENTO DO DIA") - 4:]
    assert ticket.count(b"FECHAMENTO DO DIA") == 2
    assert b"R$ 9,00" in ticket and b"Vendas pagas: 1" in ticket
    # the same through the control socket, for a day without sales: zeros, still a ticket
    answer = kiosk.command({"command": "report", "date": "2020-01-01"})
    assert answer == {"ok": True, "note": "the closing ticket of 2020-01-01 is printed"}
    assert kiosk.receipt_bytes().count(b"FECHAMENTO DO DIA") == 4
    assert b"01/01/2020" in kiosk.receipt_bytes()
    assert kiosk.command({"command": "report", "date": "yesterday"}) == {
        "ok": False, "error": "date: 'yesterday' is not a date: write it as YYYY-MM-DD"}


@pytest.mark.slow
def test_report_print_through_the_running_daemon(tmp_path):
    emulator = Emulator(site="MLB", user_id=123456789)
    printer = LoopbackPrinter().up()
    with EmulatorServer(emulator) as server:
        emulator.url = server.url
        daemon = Daemon(tmp_path, emulator, printer)
        try:
            daemon.start()
            done = cli(daemon, "report", "--print")
            assert done.returncode == 0, done.stderr
            assert "the closing ticket of today is printed" in done.stdout
            assert printer.count(b"FECHAMENTO DO DIA") == 2
            printer.down()  # unplugged: the daemon says why, the command exits 4
            done = cli(daemon, "report", "--print", "--date", "2026-11-30")
            assert done.returncode == 4 and '"ok": false' in done.stdout and "printer" in done.stdout
            done = cli(daemon, "report", "--print", "--from", "2026-11-01")
            assert done.returncode == 2 and "--print takes one day" in done.stderr
        finally:
            daemon.close()
            printer.down()


def cli(daemon: Daemon, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", str(daemon.config), *args],
                          capture_output=True, text=True, timeout=120)
