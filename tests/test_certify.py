"""``mpqr-kiosk certify`` end to end against the emulator, whose buyer actions play the test buyer on the
words certify shows: all seven events in every merchant-order mode and on the Orders API, a failed event
when Mercado Pago misbehaves, a resumed run, and a production account refused."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from daemon_harness import TOKEN, Daemon
from flavours import FLAVOURS, ids

from mpqr_kiosk import certify
from mpqr_kiosk.emulator.printer import LoopbackPrinter
from mpqr_kiosk.emulator.server import EmulatorServer
from mpqr_kiosk.emulator.state import Emulator

pytestmark = pytest.mark.slow


class Buyer:
    """Runs certify and answers each step the way a test buyer in the Mercado Pago app would."""

    def __init__(self, config: Path, emulator: Emulator, *args: str, misbehave: bool = False,
                 stop_at: str | None = None):
        self.emulator, self.misbehave, self.stop_at = emulator, misbehave, stop_at
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mpqr_kiosk", "--config", str(config), "certify", "--step-timeout", "20", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.thread = threading.Thread(target=self._play, daemon=True)
        self.thread.start()

    def _enter(self) -> None:
        self.process.stdin.write("\n")
        self.process.stdin.flush()

    def _play(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if self.stop_at and self.stop_at in line:
                self.process.stdin.close()  # the technician walks away: certify must keep its progress
                continue
            if certify.SCAN_BEFORE in line:
                self.emulator.scan("POS001")
                self._enter()
            elif certify.PAY_APPROVED in line or certify.PAY_AGAIN in line:
                self.emulator.pay("POS001", "approved")
            elif "pay with the test card that is REJECTED" in line:
                self.emulator.scan("POS001")
                with self.emulator.lock:  # (one step for whoever reads the API meanwhile)
                    self.emulator.pay("POS001", "rejected")
                    if self.misbehave:  # Mercado Pago takes the order off the POS after the rejection
                        self.emulator.instore.delete_order(self.emulator.user_id, "POS001")
            elif certify.SAY_REJECTED in line:
                self._enter()
            elif "the customer pays cash instead" in line:
                self.emulator.scan("POS001")
                self._enter()

    def wait(self) -> int:
        code = self.process.wait(timeout=180)
        self.thread.join(5)
        return code


@pytest.fixture(params=FLAVOURS, ids=[ids(f) for f in FLAVOURS])
def setup(request, tmp_path):
    api, mode = request.param
    emulator = Emulator(site="MLB", user_id=123456789, merchant_order=mode)
    with EmulatorServer(emulator) as server:
        emulator.url = server.url
        printer = LoopbackPrinter().up()
        yield Daemon(tmp_path, emulator, printer, api=api), emulator  # its config only: no daemon runs
        printer.down()


def report(daemon: Daemon) -> dict:
    return json.loads((daemon.state / "certify-report.json").read_text())


def test_all_seven_events_pass_and_the_report_names_the_ids(setup):
    daemon, emulator = setup
    buyer = Buyer(daemon.config, emulator)
    assert buyer.wait() == 0, "\n".join(buyer.lines) + buyer.process.stderr.read()
    assert buyer.lines[-1].startswith("7 of 7 events passed")
    data = report(daemon)
    assert [e["result"] for e in data["events"]] == ["passed"] * 7
    by_number = {e["number"]: e for e in data["events"]}
    assert by_number[3]["payments"][0]["status"] == "approved" and by_number[3]["order_id"]
    assert by_number[5]["payments"][-1]["status"] == "approved"
    assert by_number[6]["detail"] == "R$ 27,00 refunded"
    markdown = (daemon.state / "certify-report.md").read_text()
    assert markdown.count("| passed |") == 7 and by_number[3]["order_id"] in markdown
    assert TOKEN not in markdown + json.dumps(data) + "\n".join(buyer.lines)
    assert emulator.snapshot()["pos"][0]["order"] is None  # nothing left on the POS
    assert not (daemon.state / "certify.json").exists()


def test_a_rejection_that_removes_the_order_fails_event_4(tmp_path):
    emulator = Emulator(site="MLB", user_id=123456789)
    with EmulatorServer(emulator) as server:
        emulator.url = server.url
        daemon = Daemon(tmp_path, emulator, LoopbackPrinter().up())
        buyer = Buyer(daemon.config, emulator, misbehave=True)
        assert buyer.wait() == 4
    results = {e["number"]: e for e in report(daemon)["events"]}
    assert results[4]["result"] == "failed"
    assert "and not still on the POS (event 4)" in results[4]["detail"]
    assert [results[n]["result"] for n in (1, 3, 7)] == ["passed"] * 3
    assert any(line.startswith("  FAILED: after the rejected payment") for line in buyer.lines)


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    emulator = Emulator(site="MLB", user_id=123456789)
    with EmulatorServer(emulator) as server:
        emulator.url = server.url
        daemon = Daemon(tmp_path, emulator, LoopbackPrinter().up())
        first = Buyer(daemon.config, emulator, stop_at="the customer pays cash instead")
        assert first.wait() == 75
        assert "interrupted: run `mpqr-kiosk certify` again to resume" in first.lines[-1]
        progress = json.loads((daemon.state / "certify.json").read_text())
        assert sorted(progress["events"]) == ["1", "2", "3", "4", "5", "6"]
        again = Buyer(daemon.config, emulator)
        assert again.wait() == 0
        assert "resuming" in again.lines[0] and not any(certify.SCAN_BEFORE in line for line in again.lines)
        assert [e["result"] for e in report(daemon)["events"]] == ["passed"] * 7


def test_a_production_account_is_refused_and_a_running_daemon_too(tmp_path):
    emulator = Emulator(site="MLB", user_id=123456789)
    with EmulatorServer(emulator) as server:
        emulator.url = server.url
        printer = LoopbackPrinter().up()
        daemon = Daemon(tmp_path, emulator, printer)
        emulator.account.user(123456789)["nickname"] = "PADARIASAOJOAO"  # a real shop's account
        (tmp_path / "access_token").write_text("APP_USR-1234-120101-abcdef-123456789\n")
        done = subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", str(daemon.config), "certify"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 4 and "production account" in done.stderr and "--production" in done.stderr
        (tmp_path / "access_token").write_text(TOKEN + "\n")
        try:
            daemon.start()
            done = subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", str(daemon.config), "certify"],
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 4 and "the daemon is running and owns the POS" in done.stderr
        finally:
            daemon.close()
            printer.down()
