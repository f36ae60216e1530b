"""Bad input on the control socket and the command line (issue 11, part C): every malformed request, weird
field, idle, slow, early-hanging-up or surplus client, and every bad command-line argument ends in a clear
message naming what is wrong and the exit code exits.py gives it; never a traceback, a hang or a sale. One
real daemon serves the whole module; every test ends by showing it still answers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from daemon_harness import Daemon

from mpqr_kiosk import cli, control
from mpqr_kiosk.control import MAX_CLIENTS, REQUEST_DEADLINE, Busy, request
from mpqr_kiosk.emulator.printer import LoopbackPrinter
from mpqr_kiosk.emulator.server import EmulatorServer
from mpqr_kiosk.emulator.state import Emulator
from mpqr_kiosk.journal import Journal

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("control_hardening")]
USAGE = 'send one JSON object on one line, e.g. {"command": "status"}'
REF = "reference: 1 to 64 letters, digits, - or _ (a sale's external_reference)"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    emulator = Emulator(site="MLB", user_id=123456789)
    printer = LoopbackPrinter().up()
    with EmulatorServer(emulator) as server:
        emulator.url = server.url
        d = Daemon(tmp_path_factory.mktemp("hardening"), emulator, printer).start()
        yield d
        d.close()
    printer.down()


@pytest.fixture
def kiosk(daemon):
    """The module's daemon; afterwards it must still answer, with no sale started and no traceback logged."""
    yield daemon
    assert daemon.process.poll() is None, daemon.log.read_text()[-3000:]
    status = daemon.control("status")
    assert status["ok"] and status["sale"] is None and status["screen"] == "ready"
    journal = Journal(daemon.state)
    try:
        assert journal.recent() == []  # no bad input ever started a sale
    finally:
        journal.close()
    log = daemon.log.read_text()
    assert "Traceback" not in log and "internal error" not in log and "control command failed" not in log


def raw(d: Daemon, data: bytes, timeout: float = 15.0) -> bytes:
    """Send ``data`` as it is and return everything the daemon answers before it hangs up."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(d.socket))
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def silent(d: Daemon) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(d.socket))
    return sock


def hung_up_after(sock: socket.socket, limit: float) -> float:
    """Seconds until the daemon closes ``sock`` (which never sent a whole request)."""
    start = time.monotonic()
    sock.settimeout(limit)
    assert sock.recv(100) == b""  # no answer: the daemon only hung up
    return time.monotonic() - start


def cli_run(d: Daemon, *args: str, config: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", config or str(d.config), *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"})


# ------------------------------------------------------------------------------------ 4. bad requests

AMOUNT_TEXT = 'amount: give the total as text such as "12.50"'
AMOUNT_BOUND = "amount: at most 32 printable characters, such as 12.50"
BAD_REQUESTS = [
    (b"[]\n", f"the request is an array, not a JSON object; {USAGE}"),
    (b'"x"\n', f"the request is a string, not a JSON object; {USAGE}"),
    (b"1\n", f"the request is a number, not a JSON object; {USAGE}"),
    (b"null\n", f"the request is null, not a JSON object; {USAGE}"),
    (b'{"command": "st\xffatus"}\n', f"the request is not UTF-8 text (byte 15); {USAGE}"),
    (b"\xff\xfe{\x00}\x00\n", f"the request is not UTF-8 text (byte 0); {USAGE}"),
    (b"[" * 50000 + b"]" * 50000 + b"\n", f"the request is longer than 64 KiB; {USAGE}"),
    (b'{"command": ' * 5000 + b'"status"' + b"}" * 5000 + b"\n", f"the request is nested too deeply; {USAGE}"),
    (b"{command: status}\n", "the request is not JSON (Expecting property name enclosed in double quotes: line 1 "
                             f"column 2 (char 1)); {USAGE}"),
    (b'{"command": "status", "command": "sale", "amount": "5"}\n', "field 'command' is given twice"),
    (b'{"command": "status", "x": "\\ud800"}\n', "field 'x': not valid Unicode text"),
    (b'{"command": "sale", "amount": "1", "hint": 1}\n', "unknown field 'hint' for sale; it takes amount"),
    (b'{"command": "cancel", "reference": ["a"]}\n', "unknown field 'reference' for cancel; it takes no other field"),
    (b'{"command": ["status"]}\n', "command: not known; known: cancel, hint, refund, report, reprint, review, "
                                   "sale, status"),
    (b'{"command": "__init__"}\n', "command: unknown command '__init__'; known: cancel, hint, refund, report, "
                                   "reprint, review, sale, status"),
    (b'{"command": "sale", "amount": NaN}\n', "amount: NaN is not an amount"),
    (b'{"command": "sale", "amount": -Infinity}\n', "amount: -Infinity is not an amount"),
    (b'{"command": "sale", "amount": 1e309}\n', "amount: must be at most R$ 250.000,00"),
    (b'{"command": "sale", "amount": 1e999999999}\n', "amount: must be at most R$ 250.000,00"),
    (b'{"command": "sale", "amount": ' + b"9" * 5000 + b"}\n", "amount: must be at most R$ 250.000,00"),
    (b'{"command": "sale", "amount": "9999999999999999999999"}\n', "amount: must be at most R$ 250.000,00"),
    (b'{"command": "sale", "amount": 0.001}\n', "amount: 0.001 has more than 2 decimals for BRL"),
    (b'{"command": "sale", "amount": 1e-999999999}\n', "amount: 1E-999999999 has more than 2 decimals for BRL"),
    (b'{"command": "sale", "amount": -1}\n', "amount: must be more than zero"),
    (b'{"command": "sale", "amount": "-1"}\n', "amount: must be more than zero"),
    (b'{"command": "sale", "amount": "NaN"}\n', "amount: not an amount: 'NaN'"),
    (b'{"command": "sale", "amount": "1e309"}\n', "amount: not an amount: '1e309'"),
    (b'{"command": "sale", "amount": "' + b"1" * 33 + b'"}\n', AMOUNT_BOUND),
    (b'{"command": "sale", "amount": "12\\n50"}\n', AMOUNT_BOUND),
    (b'{"command": "sale", "amount": [12]}\n', AMOUNT_TEXT),
    (b'{"command": "sale", "amount": {"v": 12}}\n', AMOUNT_TEXT),
    (b'{"command": "sale", "amount": null}\n', AMOUNT_TEXT),
    (b'{"command": "sale", "amount": true}\n', AMOUNT_TEXT),
    (b'{"command": "sale"}\n', AMOUNT_TEXT),
    (b'{"command": "reprint", "reference": ["POS001-a"]}\n', REF),
    (b'{"command": "reprint", "reference": {"r": "POS001-a"}}\n', REF),
    (b'{"command": "reprint", "reference": 1e400}\n', REF),
    (b'{"command": "reprint", "reference": NaN}\n', REF),
    (b'{"command": "reprint", "reference": ""}\n', REF),
    (b'{"command": "reprint", "reference": "POS001-\\u001b[31m"}\n', REF),
    (b'{"command": "refund", "reference": []}\n', REF),
    (b'{"command": "refund", "reference": 0}\n', REF),
    (b'{"command": "refund", "reference": null}\n', "reference: refund needs the sale's reference"),
    (b'{"command": "refund"}\n', "reference: refund needs the sale's reference"),
    (b'{"command": "report", "date": "2026-13-45"}\n', "date: '2026-13-45' is not a date: write it as YYYY-MM-DD"),
    (b'{"command": "report", "date": "0001-01-02"}\n',
     "date: '0001-01-02' is out of range: a day from 2000-01-01 to 2999-12-31"),
    (b'{"command": "report", "date": "2026-W01-1"}\n', "date: '2026-W01-1' is not a date: write it as YYYY-MM-DD"),
    (b'{"command": "report", "date": 20260101}\n', "date: a day as YYYY-MM-DD, or null for today"),
    (b'{"command": "report", "date": ["2026-01-01"]}\n', "date: a day as YYYY-MM-DD, or null for today"),
]


@pytest.mark.parametrize(("line", "error"), BAD_REQUESTS, ids=[f"{i}-{line[:24]!r}" for i, (line, _) in
                                                               enumerate(BAD_REQUESTS)])
def test_a_bad_request_gets_an_answer_naming_what_is_wrong_and_changes_nothing(kiosk, line, error):
    answer = raw(kiosk, line)
    assert answer.endswith(b"\n") and answer.count(b"\n") == 1
    assert json.loads(answer) == {"ok": False, "error": error}


def test_a_hint_a_relay_passes_a_notifications_topic_and_id_with_is_taken(kiosk):
    assert json.loads(raw(kiosk, b'{"command": "hint", "topic": "merchant_order", "id": "123"}\n')) == {"ok": True}
    answer = json.loads(raw(kiosk, b'{"command": "hint", "resource": "x"}\n'))
    assert answer == {"ok": False, "error": "unknown field 'resource' for hint; it takes topic, id"}


def test_a_one_megabyte_reference_through_the_real_client_is_refused_as_too_long(kiosk):
    answer = request(str(kiosk.socket), {"command": "reprint", "reference": "A" * 2**20}, timeout=20)
    assert answer == {"ok": False, "error": f"the request is longer than 64 KiB; {USAGE}"}


def test_a_request_without_a_newline_is_answered_once_the_client_stops_writing(kiosk):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(kiosk.socket))
        sock.sendall(b'{"command": "sale", "amount": "12.345"}')
        sock.shutdown(socket.SHUT_WR)
        answer = json.loads(sock.recv(65536))
    assert answer == {"ok": False, "error": "amount: ambiguous amount '12.345': thousands or decimals? write it "
                                            "with both marks or neither"}


# -------------------------------------------------------------------- 2. idle, slow and surplus clients


def test_idle_clients_are_hung_up_on_after_the_deadline_and_status_answers_meanwhile(kiosk):
    idle = [silent(kiosk) for _ in range(MAX_CLIENTS // 2)]
    try:
        assert kiosk.control("status")["ok"]  # served beside them: a free handler is left
        waited = [hung_up_after(sock, REQUEST_DEADLINE + 10) for sock in idle]
    finally:
        for sock in idle:
            sock.close()
    assert all(w <= REQUEST_DEADLINE + 5 for w in waited), waited
    assert "control client sent no whole request in 5.0s; hung up on it" in kiosk.log.read_text()


def test_a_client_trickling_its_request_is_hung_up_on_at_the_deadline_not_per_byte(kiosk):
    with silent(kiosk) as sock:
        start = time.monotonic()
        sock.settimeout(0.5)
        closed = False
        while not closed and time.monotonic() - start < REQUEST_DEADLINE + 10:
            try:
                sock.sendall(b" ")  # one byte every half second, never a newline
                closed = sock.recv(100) == b""
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
        took = time.monotonic() - start
    assert closed and REQUEST_DEADLINE - 1 <= took <= REQUEST_DEADLINE + 5, took


def test_more_clients_than_handlers_wait_for_a_free_one_and_are_then_served(kiosk):
    idle = [silent(kiosk) for _ in range(MAX_CLIENTS)]  # every handler held by a client that says nothing
    try:
        start = time.monotonic()
        answer = request(str(kiosk.socket), {"command": "status"}, timeout=30)
        took = time.monotonic() - start
    finally:
        for sock in idle:
            sock.close()
    assert answer["ok"] and answer["screen"] == "ready"
    assert took >= 1.0  # it waited for a handler: their number is bounded (the idle ones went at the deadline)


# ---------------------------------------------------------------------------------- 1. a full backlog


def fill_backlog(d: Daemon) -> list[socket.socket]:
    """Connected-but-silent clients until the listen backlog refuses one more (EAGAIN)."""
    held: list[socket.socket] = []
    for _ in range(1000):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(str(d.socket))
        except BlockingIOError:
            sock.close()
            return held
        held.append(sock)
    pytest.fail("the backlog never filled")


def test_a_full_backlog_is_waited_out_then_the_client_and_the_cli_say_the_daemon_is_busy(kiosk, monkeypatch,
                                                                                           capsys):
    held = fill_backlog(kiosk)
    time.sleep(0.5)  # the daemon takes up to MAX_CLIENTS of them off the backlog...
    held += fill_backlog(kiosk)  # ...whose room is filled again: it stays full until the deadline drops some
    try:
        assert len(held) >= MAX_CLIENTS + control.ControlServer.request_queue_size
        start = time.monotonic()
        with pytest.raises(Busy, match=r"^the daemon is busy: its control socket stayed full for 1\.5s$"):
            request(str(kiosk.socket), {"command": "status"}, timeout=1.5)
        assert 1.4 <= time.monotonic() - start <= 3.0  # it retried until its deadline, no longer
        monkeypatch.setattr(cli, "CONTROL_TIMEOUT", 1.5)
        assert cli.main(["--config", str(kiosk.config), "status"]) == 75
        out, err = capsys.readouterr()
        assert out == "" and err == (f"mpqr-kiosk: the daemon is busy (its control socket at {kiosk.socket} stayed "
                                     "full for 1.5s); try again in a moment\n")
    finally:
        for sock in held:
            sock.close()
    done = cli_run(kiosk, "status")  # once they are gone, a normal status answers
    assert done.returncode == 0 and "screen:      ready" in done.stdout and done.stderr == ""


# ------------------------------------------------------------------------ 3. clients that hang up early


def test_clients_hanging_up_early_leave_one_log_line_at_most_and_no_traceback(kiosk):
    for _ in range(10):
        with silent(kiosk) as sock:  # asks, and leaves before the answer
            sock.sendall(b'{"command": "status"}\n')
        with silent(kiosk):  # leaves without asking
            pass
        with silent(kiosk) as sock:  # leaves in the middle of a request
            sock.sendall(b'{"command": "sta')
        with silent(kiosk) as sock:  # asks, and shuts both ways at once
            sock.sendall(b'{"command": "review"}\n')
            sock.shutdown(socket.SHUT_RDWR)
    assert kiosk.control("status")["ok"]
    log = kiosk.log.read_text()
    assert "Traceback" not in log and "BrokenPipeError" not in log and "ConnectionResetError" not in log


# ------------------------------------------------------------------------- 5. bad command-line arguments

BAD_ARGUMENTS = [
    (["sale", "--amount", "1e309"], 2, "mpqr-kiosk sale: amount: not an amount: '1e309'\n"),
    (["sale", "--amount", "9999999999999999999999"], 2, "mpqr-kiosk sale: amount: must be at most R$ 250.000,00\n"),
    (["sale", "--amount", "-1"], 2, "mpqr-kiosk sale: amount: must be more than zero\n"),
    (["sale", "--amount", "NaN"], 2, "mpqr-kiosk sale: amount: not an amount: 'NaN'\n"),
    (["sale", "--amount", "0"], 2, "mpqr-kiosk sale: amount: must be more than zero\n"),
    (["sale", "--amount", "1" * 100], 2, f"mpqr-kiosk sale: {AMOUNT_BOUND}\n"),
    (["sale", "--amount", "12\x1b[2J"], 2, f"mpqr-kiosk sale: {AMOUNT_BOUND}\n"),
    (["reprint", "POS001-\x1b[31mred"], 2, f"mpqr-kiosk reprint: {REF}\n"),
    (["refund", ""], 2, f"mpqr-kiosk refund: {REF}\n"),
    (["refund", "A" * 2**16], 2, f"mpqr-kiosk refund: {REF}\n"),
    (["sales", "--ref", "POS001-\x1b[31mred\x07"], 2,
     "mpqr-kiosk sales: --ref: 1 to 64 letters, digits, - or _ (a sale's external_reference)\n"),
    (["report", "--date", "2026-13-45"], 2, "argument --date: '2026-13-45' is not a date: write it as YYYY-MM-DD\n"),
    (["report", "--date", "0001-01-01"], 2,
     "argument --date: '0001-01-01' is out of range: a day from 2000-01-01 to 2999-12-31\n"),
    (["sales", "--from", "9999-12-31"], 2,
     "argument --from: '9999-12-31' is out of range: a day from 2000-01-01 to 2999-12-31\n"),
    (["reconcile", "--date", "9999-12-31"], 2,
     "argument --date: '9999-12-31' is out of range: a day from 2000-01-01 to 2999-12-31\n"),
    (["report", "--print", "--date", "2026-02-30"], 2,
     "argument --date: '2026-02-30' is not a date: write it as YYYY-MM-DD\n"),
    (["certify", "--step-timeout", "nan"], 2,
     "argument --step-timeout: 'nan' is not a number of seconds from 0 to 86400\n"),
    (["certify", "--step-timeout", "-1"], 2,
     "argument --step-timeout: '-1' is not a number of seconds from 0 to 86400\n"),
    (["preview", "--out", "/dev/null/x"], 3, "mpqr-kiosk preview: cannot write /dev/null/x: Not a directory\n"),
    (["demo", "--out", "/dev/null"], 3,
     "mpqr-kiosk demo: --out /dev/null: cannot make this folder (a file is in the way)\n"),
    (["reprint"], 4, '"error": "no paid sale yet"'),  # the daemon refused: its answer on stdout
    (["cancel"], 4, '"error": "no sale is waiting for payment"'),
]


@pytest.mark.parametrize(("args", "code", "message"), BAD_ARGUMENTS,
                         ids=[" ".join(a)[:40] for a, _, _ in BAD_ARGUMENTS])
def test_a_bad_argument_ends_with_a_clear_message_and_its_exit_code(kiosk, args, code, message):
    done = cli_run(kiosk, *args)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    if code == 4:
        assert message in done.stdout and '"ok": false' in done.stdout
    else:
        assert done.stderr.endswith(message) and done.stdout == ""


@pytest.mark.parametrize("command", [["status"], ["sale", "--amount", "12.50"], ["report"], ["sales"], ["check"],
                                     ["reconcile"], ["run"], ["provision"], ["preview"]])
def test_a_config_path_that_is_a_directory_is_exit_3_naming_it(kiosk, tmp_path, command):
    done = cli_run(kiosk, *command, config=str(tmp_path))
    assert done.returncode == 3 and "Traceback" not in done.stderr
    assert f"{tmp_path}: " in done.stderr and "directory" in done.stderr.lower()  # config.py words the rest


def test_a_diagnostics_bundle_that_cannot_be_written_is_exit_3_naming_it(kiosk, tmp_path):
    done = cli_run(kiosk, "diagnostics", "--out", str(tmp_path))
    assert done.returncode == 3 and done.stderr == f"mpqr-kiosk diagnostics: cannot write {tmp_path}: Is a directory\n"
