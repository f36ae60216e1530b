"""The real daemon as a subprocess: systemd notify, signals, the control socket, kill -9 in every state,
and Mercado Pago's certification checklist for the attended model, all against the emulator."""

import os
import signal
import subprocess
import sys

import pytest
from daemon_harness import TOKEN, Daemon
from fakeprinter import FakePrinter

pytestmark = pytest.mark.slow


@pytest.fixture
def printer():
    fake = FakePrinter().up()
    yield fake
    fake.down()


@pytest.fixture
def daemon(tmp_path, emulator, printer):
    d = Daemon(tmp_path, emulator, printer)
    yield d
    d.close()


def puts_for(emulator) -> int:
    return sum(1 for r in emulator.requests() if r["method"] == "PUT" and r["path"].endswith("/orders"))


def paid_once(d: Daemon, reference: str, copies: int = 0) -> None:
    assert d.until(lambda: d.receipt_of(reference) == "printed", 20), d.log.read_text()[-3000:]
    sale = d.journaled(reference)
    assert sale.state.value == "paid" and sale.paid_amount == sale.total
    assert d.until(lambda: d.printer.receipts() >= 1 + copies, 5)  # the bytes may still be in flight
    assert d.printer.receipts() == 1 + copies  # one original, plus COPYs where a print was cut
    assert d.printer.count(reference.encode()) >= 1
    # "*** CÓPIA ***" at the top and the bottom of each COPY (python-escpos may switch code page inside)
    assert d.printer.count(b"PIA ***") == 2 * copies


def test_ready_watchdog_status_and_clean_stop(tmp_path, emulator, printer):
    d = Daemon(tmp_path, emulator, printer, watchdog_usec=1_000_000)
    try:
        d.start()
        assert d.notify.seen("STATUS=Ready")
        assert d.until(lambda: sum(m == "WATCHDOG=1" for m in d.notify.messages) >= 3, 5)
        assert oct(d.socket.stat().st_mode & 0o777) == "0o660"
        done = subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", str(d.config), "status"],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 and "online:      yes" in done.stdout and "sale:        none" in done.stdout
        assert TOKEN not in done.stdout
        assert d.terminate() == 0
        assert d.notify.seen("STOPPING=1")
        assert not d.socket.exists()
        assert TOKEN not in d.log.read_text()
    finally:
        d.close()


def test_sale_through_the_control_socket_prints_once(daemon):
    daemon.start()
    reference = daemon.sale("21.50")
    assert daemon.until(lambda: daemon.state_of(reference) == "waiting")
    status = daemon.control("status")
    assert status["sale"]["reference"] == reference and status["sale"]["total"] == "R$ 21,50"
    assert daemon.until(lambda: daemon.notify.seen(f"STATUS=Sale {reference}: waiting"), 5)
    refused = daemon.control("sale", amount="5")
    assert not refused["ok"] and "in progress" in refused["error"]  # rule 1: one live order per POS
    daemon.emulator.pay("POS001", "approved")
    paid_once(daemon, reference)


def test_sighup_reloads_the_catalog_without_losing_the_waiting_sale(daemon):
    daemon.start()
    reference = daemon.sale()
    assert daemon.until(lambda: daemon.state_of(reference) == "waiting")
    (daemon.dir / "catalog.csv").write_text("code,title,unit price,sku\n1,Novo,1.00,N\n2,Outro,2.00,O\n")
    daemon.process.send_signal(signal.SIGHUP)
    assert daemon.until(lambda: daemon.notify.seen("RELOADING=1"), 5)
    assert daemon.until(lambda: "reloaded config and catalog (2 products)" in daemon.log.read_text(), 5)
    assert daemon.control("status")["sale"]["reference"] == reference
    daemon.emulator.pay("POS001", "approved")
    paid_once(daemon, reference)


def test_kill9_while_pushing_never_pushes_twice(daemon):
    daemon.start()
    daemon.emulator.inject("push", "timeout", after=True, delay=3.0)  # the order lands, the answer is slow
    reference = daemon.sale()
    assert daemon.until(lambda: daemon.emulator.snapshot()["pos"][0]["order"], 5)  # landed; the answer is due in 3 s
    assert daemon.state_of(reference) == "pushing"
    daemon.kill9()
    daemon.start()
    assert daemon.until(lambda: daemon.state_of(reference) == "waiting", 20)
    assert daemon.until(lambda: puts_for(daemon.emulator) >= 1, 5)  # the slow PUT is logged when it ends
    assert puts_for(daemon.emulator) == 1  # recovered by reading back, never a second create
    daemon.emulator.pay("POS001", "approved")
    paid_once(daemon, reference)


def test_kill9_while_waiting_then_paid_while_down_prints_after_restart(daemon):
    daemon.start()
    reference = daemon.sale()
    assert daemon.until(lambda: daemon.state_of(reference) == "waiting")
    daemon.kill9()
    daemon.emulator.pay("POS001", "approved")  # the customer pays while the box is down
    daemon.start()
    paid_once(daemon, reference)
    assert puts_for(daemon.emulator) == 1


def test_kill9_when_paid_but_not_printed_prints_the_original_after_restart(daemon):
    daemon.start()
    reference = daemon.sale()
    assert daemon.until(lambda: daemon.state_of(reference) == "waiting")
    daemon.printer.down()  # no power: the receipt cannot even start
    daemon.emulator.pay("POS001", "approved")
    assert daemon.until(lambda: daemon.state_of(reference) == "paid")
    assert daemon.until(lambda: daemon.control("status")["devices"]["printer"]["ok"] is False)
    assert daemon.receipt_of(reference) == "none"  # queued in the journal, nothing printed
    daemon.kill9()
    daemon.printer.up()
    daemon.start()
    paid_once(daemon, reference)  # the original, once; no COPY because none had started


def test_kill9_while_printing_prints_a_copy_after_restart(daemon):
    daemon.start()
    reference = daemon.sale()
    assert daemon.until(lambda: daemon.state_of(reference) == "waiting")
    daemon.printer.answers_left = 2  # answers the check before the receipt, then hangs after it
    daemon.emulator.pay("POS001", "approved")
    assert daemon.until(lambda: daemon.printer.receipts() == 1)  # the original went out...
    assert daemon.receipt_of(reference) == "printing"  # ...but the daemon never saw it finish
    daemon.kill9()
    daemon.printer.answers_left = None
    daemon.start()
    paid_once(daemon, reference, copies=1)  # the original, then a COPY: never a second original


def test_paper_out_queues_the_receipt_and_prints_the_original_when_paper_is_back(daemon):
    daemon.start()
    reference = daemon.sale()
    assert daemon.until(lambda: daemon.state_of(reference) == "waiting")
    daemon.printer.status = 0x72  # DLE EOT 4 reply: paper end
    daemon.emulator.pay("POS001", "approved")
    assert daemon.until(lambda: daemon.state_of(reference) == "paid")
    assert daemon.until(lambda: daemon.control("status")["screen"] == "printer_problem", 10)
    assert daemon.control("status")["print_queue"] == [reference]
    assert daemon.printer.receipts() == 0 and daemon.receipt_of(reference) == "none"
    daemon.printer.status = 0x12  # paper loaded
    paid_once(daemon, reference)  # retried by itself: the original, once


def test_kill9_while_waiting_resumes_and_can_be_cancelled(daemon):
    daemon.start()
    reference = daemon.sale()
    assert daemon.until(lambda: daemon.state_of(reference) == "waiting")
    daemon.kill9()
    daemon.start()
    assert daemon.until(lambda: (daemon.control("status")["sale"] or {}).get("reference") == reference)
    assert not daemon.control("sale", amount="3")["ok"]  # rule 6: the old sale first
    assert daemon.control("cancel")["ok"]
    assert daemon.until(lambda: daemon.state_of(reference) == "cancelled")
    assert daemon.emulator.snapshot()["pos"][0]["order"] is None
    assert daemon.printer.receipts() == 0


def test_certification_checklist_of_the_attended_model(daemon):
    """Mercado Pago's events to validate (anchors.md A1), through the running daemon."""
    emu = daemon.emulator
    daemon.start()
    # 1. a scan before the order exists waits (fixed_amount POS shows the waiting screen)
    assert emu.scan("POS001")["waiting"] is True
    reference = daemon.sale("30.00")
    assert daemon.until(lambda: daemon.state_of(reference) == "waiting")
    # 2. once the order is on the POS the waiting customer gets the checkout (the box cannot see a scan: §12.1)
    assert emu.snapshot()["pos"][0]["checkouts"] == ["buyer"]
    assert daemon.control("status")["screen"] == "pay"
    # 4. a rejected payment keeps the order on the POS for a retry
    emu.pay("POS001", "rejected")
    assert daemon.until(lambda: (daemon.control("status")["sale"] or {}).get("rejected_payments") == 1)
    assert emu.snapshot()["pos"][0]["order"]["order"]["external_reference"] == reference
    # 3 and 5. the retry is approved and reported to the POS: paid, printed once
    emu.pay("POS001", "approved")
    paid_once(daemon, reference)
    # 6. refund
    refund = subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", str(daemon.config), "refund", reference],
                            capture_output=True, text=True, timeout=60)
    assert refund.returncode == 0, refund.stdout + refund.stderr
    assert daemon.state_of(reference) == "refunded"
    mo = next(m for m in emu.snapshot()["merchant_orders"] if m["external_reference"] == reference)
    assert any(p["status"] == "refunded" for p in mo["payments"])
    # 7. the customer pays cash instead: the operator cancels and the order leaves the POS
    second = daemon.sale("10.00")
    assert daemon.until(lambda: daemon.state_of(second) == "waiting")
    cancel = subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", str(daemon.config), "cancel"],
                            capture_output=True, text=True, timeout=60)
    assert cancel.returncode == 0
    assert daemon.until(lambda: daemon.state_of(second) == "cancelled")
    assert emu.snapshot()["pos"][0]["order"] is None
    assert daemon.printer.count(second.encode()) == 0 and daemon.printer.receipts() == 1


def test_reprint_prints_a_copy(daemon):
    daemon.start()
    reference = daemon.sale()
    assert daemon.until(lambda: daemon.state_of(reference) == "waiting")
    daemon.emulator.pay("POS001", "approved")
    paid_once(daemon, reference)
    assert daemon.control("reprint")["reference"] == reference
    assert daemon.until(lambda: daemon.printer.receipts() == 2)
    assert daemon.until(lambda: daemon.journaled(reference).copies == 1)


def test_invalid_config_exits_3_and_a_readable_token_file_is_refused(tmp_path, emulator, printer):
    d = Daemon(tmp_path, emulator, printer)
    try:
        (tmp_path / "access_token").chmod(0o644)
        done = subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", str(d.config), "run"],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"})
        assert done.returncode == 3
        assert "readable by group or others" in done.stderr and TOKEN not in done.stderr
        d.config.write_text(d.config.read_text() + "\n[leds]\ncolour = 1\n")
        done = subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", str(d.config), "run"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 3 and "leds.colour" in done.stderr
    finally:
        d.close()
