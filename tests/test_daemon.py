"""The real daemon as a subprocess: systemd notify, signals, the control socket, kill -9 in every state,
and Mercado Pago's certification checklist for the attended model, all against the emulator."""

import os
import signal
import subprocess
import sys
import time

import pytest
from daemon_harness import TOKEN, Daemon
from flavours import FLAVOURS, creates, ids, on_pos, orders_made, refunded_at_the_api

from mpqr_kiosk.emulator.printer import LoopbackPrinter

pytestmark = pytest.mark.slow
EVERY_API = pytest.mark.parametrize("flavour", FLAVOURS, ids=ids)


@pytest.fixture
def printer():
    fake = LoopbackPrinter().up()
    yield fake
    fake.down()


@pytest.fixture
def daemon(tmp_path, emulator, printer, flavour):
    d = Daemon(tmp_path, emulator, printer, api=flavour[0])
    yield d
    d.close()


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
        assert d.until(lambda: d.notify.seen("STATUS=Ready"), 10)
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


@EVERY_API
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


@EVERY_API
def test_kill9_while_pushing_never_pushes_twice(daemon):
    daemon.start()
    daemon.emulator.inject("push", "timeout", after=True, delay=3.0)  # the order lands, the answer is slow
    reference = daemon.sale()
    assert daemon.until(lambda: daemon.emulator.snapshot()["pos"][0]["order"], 5)  # landed; the answer is due in 3 s
    assert daemon.state_of(reference) == "pushing"
    daemon.kill9()
    daemon.start()
    assert daemon.until(lambda: daemon.state_of(reference) == "waiting", 20)
    # the in-store API: recovered by reading the POS back, never a second PUT; the Orders API: the same key
    # replayed, which Mercado Pago answers with the order the first request made [C: R-create]
    expected = 2 if daemon.api == "orders" else 1
    assert daemon.until(lambda: creates(daemon.emulator) >= expected, 10)  # the slow one is logged when it ends
    time.sleep(0.5)  # nothing more may come
    assert creates(daemon.emulator) == expected
    if daemon.api == "orders":
        assert orders_made(daemon.emulator, reference) == 1
    daemon.emulator.pay("POS001", "approved")
    paid_once(daemon, reference)


@EVERY_API
def test_kill9_while_waiting_then_paid_while_down_prints_after_restart(daemon):
    daemon.start()
    reference = daemon.sale()
    assert daemon.until(lambda: daemon.state_of(reference) == "waiting")
    daemon.kill9()
    daemon.emulator.pay("POS001", "approved")  # the customer pays while the box is down
    daemon.start()
    paid_once(daemon, reference)
    assert creates(daemon.emulator) == 1


@EVERY_API
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


@EVERY_API
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
    daemon.printer.replies[4] = 0x72  # DLE EOT 4 reply: paper end
    daemon.emulator.pay("POS001", "approved")
    assert daemon.until(lambda: daemon.state_of(reference) == "paid")
    assert daemon.until(lambda: daemon.control("status")["screen"] == "printer_problem", 10)
    assert daemon.control("status")["print_queue"] == [reference]
    assert daemon.printer.receipts() == 0 and daemon.receipt_of(reference) == "none"
    daemon.printer.replies[4] = 0x12  # paper loaded
    paid_once(daemon, reference)  # retried by itself: the original, once


@EVERY_API
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
    assert on_pos(daemon.emulator) is None
    assert daemon.printer.receipts() == 0


@EVERY_API
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
    # 4. a rejected payment keeps the order on the POS for a retry (the Orders API shows no rejected attempt)
    emu.pay("POS001", "rejected")
    if daemon.api == "instore":
        assert daemon.until(lambda: (daemon.control("status")["sale"] or {}).get("rejected_payments") == 1)
    else:
        daemon.until(lambda: False, 1.0)
    assert on_pos(emu) == reference and daemon.state_of(reference) == "waiting"
    # 3 and 5. the retry is approved and reported to the POS: paid, printed once
    emu.pay("POS001", "approved")
    paid_once(daemon, reference)
    # 6. refund
    refund = subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", str(daemon.config), "refund", reference],
                            capture_output=True, text=True, timeout=60)
    assert refund.returncode == 0, refund.stdout + refund.stderr
    assert daemon.until(lambda: daemon.state_of(reference) == "refunded")  # once a read confirms it
    assert refunded_at_the_api(emu, reference)
    # 7. the customer pays cash instead: the operator cancels and the order leaves the POS
    second = daemon.sale("10.00")
    assert daemon.until(lambda: daemon.state_of(second) == "waiting")
    cancel = subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", str(daemon.config), "cancel"],
                            capture_output=True, text=True, timeout=60)
    assert cancel.returncode == 0
    assert daemon.until(lambda: daemon.state_of(second) == "cancelled")
    assert on_pos(emu) is None
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


# ---------------------------------------------------------------- money safety across restarts (points 2, 7, 8, 12)


def in_review_payment(emulator, api: str) -> str:
    state = emulator.snapshot()
    if api == "orders":
        return state["orders"][-1]["transactions"]["payments"][0]["id"]
    return str(next(p["id"] for mo in state["merchant_orders"] for p in mo["payments"] if p["status"] == "in_process"))


@EVERY_API
def test_2_the_late_watch_survives_kill9_and_a_payment_decided_while_down_prints(tmp_path, emulator, printer, flavour):
    d = Daemon(tmp_path, emulator, printer, api=flavour[0], extra='cancel_grace = "1s"\nlate_watch = "60s"')
    try:
        d.start()
        reference = d.sale()
        assert d.until(lambda: d.state_of(reference) == "waiting")
        emulator.pay("POS001", "in_process")  # the customer's payment goes to review
        assert d.control("cancel")["ok"]  # the operator gives up on it
        assert d.until(lambda: d.state_of(reference) == "cancelled", 20)
        assert d.journaled(reference).watch_until > 0  # the watch is journaled...
        d.kill9()
        emulator.decide(in_review_payment(emulator, flavour[0]), "approved")  # ...approved while the box is down
        d.start()
        assert reference in d.control("status")["watching"]  # ...and carried on after the restart
        paid_once(d, reference)
    finally:
        d.close()


def test_7_a_second_daemon_on_the_same_state_or_socket_refuses_to_start_and_steals_nothing(tmp_path, emulator, printer):
    (tmp_path / "one").mkdir()
    first = Daemon(tmp_path / "one", emulator, printer)
    first.start()
    try:
        same_state = (tmp_path / "one" / "kiosk.toml").read_text()
        for name, text in (("same-state.toml", same_state.replace(str(first.socket), str(tmp_path / "other.sock"))),
                           ("same-socket.toml", same_state.replace(str(first.state), str(tmp_path / "other-state")))):
            config = tmp_path / name
            config.write_text(text)
            done = subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", str(config), "run"],
                                  capture_output=True, text=True, timeout=60,
                                  env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"})
            assert done.returncode == 75, done.stderr
            assert "another mpqr-kiosk daemon" in done.stderr
        assert first.process.poll() is None and first.socket.is_socket()  # the live daemon kept its socket
        reference = first.sale()
        assert first.until(lambda: first.state_of(reference) == "waiting")
        emulator.pay("POS001", "approved")
        paid_once(first, reference)
    finally:
        first.close()


def test_8_the_token_echoed_by_the_api_never_reaches_status_or_check(daemon):
    daemon.start()
    daemon.emulator.inject("push", "echo_token")
    answer = daemon.control("sale", amount="12.50")
    assert daemon.until(lambda: daemon.state_of(answer["reference"]) == "failed")
    for command in (["status"], ["status", "--json"]):
        done = subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", str(daemon.config), *command],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "invalid credentials for ***" in done.stdout and TOKEN not in done.stdout
    daemon.emulator.inject("probe", "echo_token")
    check = subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", str(daemon.config), "check"],
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"})
    assert "invalid credentials for ***" in check.stdout and TOKEN not in check.stdout + check.stderr
    assert TOKEN not in daemon.log.read_text()
    assert TOKEN.encode() not in (daemon.state / "sales.sqlite3").read_bytes()


def test_12_a_burst_of_twenty_clients_is_answered_without_a_traceback(daemon):
    daemon.start()
    command = [sys.executable, "-m", "mpqr_kiosk", "--config", str(daemon.config), "status"]
    clients = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(20)]
    results = [(c.wait(120), *c.communicate()) for c in clients]
    assert [code for code, _, _ in results] == [0] * 20
    assert all("online:" in out and "Traceback" not in err for _, out, err in results)
    assert "Traceback" not in daemon.log.read_text()
