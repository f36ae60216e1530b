"""The control socket: a Unix socket speaking one JSON object per line each way.

``mpqr-kiosk status|sale|cancel|reprint|refund|review`` are its clients (remote maintenance over SSH, and how
scripted tests drive the daemon). Requests: ``{"command": "status"}``, ``{"command": "sale", "amount":
"12.50"}``, ``{"command": "cancel"}``, ``{"command": "reprint", "reference": "…"}``, ``{"command":
"refund", "reference": "…"}``, ``{"command": "review"}``, ``{"command": "report", "date": "YYYY-MM-DD"}``
(print that day's closing ticket; no date: today), ``{"command": "hint"}`` (a notification arrived: read now).
Answers always carry ``"ok"``; failures carry ``"error"`` (naming the field at fault); every string is redacted.
Bounds: a request is one line of at most 64 KiB sent within 5 s, or the daemon hangs up; 16 clients are served
at once, the rest wait in the listen backlog.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import socket
import socketserver
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from mpqr_kiosk import __version__, report
from mpqr_kiosk.core import events as ev
from mpqr_kiosk.core.kiosk import Status
from mpqr_kiosk.core.model import Sale
from mpqr_kiosk.core.sites import Site
from mpqr_kiosk.redact import redact_all
from mpqr_kiosk.shell import Runtime

log = logging.getLogger(__name__)

MAX_REQUEST = 64 * 1024  # one request line, its newline included
MAX_ANSWER = 16 * 1024 * 1024
MAX_AMOUNT_TEXT = 32
REQUEST_DEADLINE = 5.0  # a client sends its whole request line within this, or is hung up on
WRITE_TIMEOUT = 5.0
MAX_CLIENTS = 16  # handler threads at once; more clients wait in the listen backlog
REFUND_TIMEOUT = 40.0
REPORT_TIMEOUT = 60.0  # the printer finishes the receipts queued before the ticket first
REFERENCE = re.compile(r"[A-Za-z0-9_-]{1,64}")
FIELDS = {"status": (), "review": (), "sale": ("amount",), "hint": ("topic", "id"), "cancel": (),
          "reprint": ("reference",), "report": ("date",), "refund": ("reference",)}
"""The fields each command takes besides ``command``; any other is refused. A relay may pass a notification's
``topic`` and ``id`` on with ``hint``; they are ignored (a notification never decides anything)."""
USAGE = 'send one JSON object on one line, e.g. {"command": "status"}'


class Busy(TimeoutError):
    """The daemon's listen backlog stayed full until the request's deadline."""


def parse_amount(value: object, site: Site) -> int:
    """Minor units from a request's ``amount`` (text as typed, or a JSON number), more than zero and at most
    the site's bound; ValueError names the field and what is wrong."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError('amount: give the total as text such as "12.50"')
    if isinstance(value, str):
        if len(value) > MAX_AMOUNT_TEXT or not value.isprintable():
            raise ValueError(f"amount: at most {MAX_AMOUNT_TEXT} printable characters, such as 12.50")
        try:
            number = site.to_decimal(site.parse(value))
        except ValueError as exc:
            raise ValueError(f"amount: {exc}") from None
    else:
        number = Decimal(value) if isinstance(value, int | Decimal) else Decimal(repr(value))
        if not number.is_finite():
            raise ValueError(f"amount: {value} is not an amount")
    if number <= 0:
        raise ValueError("amount: must be more than zero")
    if number > site.to_decimal(site.max_amount):
        raise ValueError(f"amount: must be at most {site.format(site.max_amount)}")
    exact = number.quantize(Decimal(1).scaleb(-site.decimals))  # bounded above, so no overflow
    if exact != number:
        raise ValueError(f"amount: {number} has more than {site.decimals} decimals for {site.currency}")
    return int(exact.scaleb(site.decimals))


def parse_reference(value: object) -> str:
    """A sale's ``external_reference`` from a request or a command line; ValueError says what one is."""
    if not isinstance(value, str) or not REFERENCE.fullmatch(value):
        raise ValueError("reference: 1 to 64 letters, digits, - or _ (a sale's external_reference)")
    return value


class Commands:
    """What each control command does: it reads the core's latest ``Status``, or asks the core with an event
    and answers with the core's ``Reply``."""

    def __init__(self, runtime: Runtime, api: str):
        self.runtime = runtime
        self.api = api

    def handle(self, request: dict) -> dict:
        """Answer one request: ``{"ok": true, ...}``, or ``{"ok": false, "error": ...}`` naming the field."""
        command = request.get("command")
        if not isinstance(command, str) or command not in FIELDS:
            shown = f"unknown command {command!r}" if isinstance(command, str) and len(command) <= 32 else "not known"
            return {"ok": False, "error": f"command: {shown}; known: {', '.join(sorted(FIELDS))}"}
        unknown = sorted(set(request) - {"command", *FIELDS[command]})
        if unknown:
            takes = ", ".join(FIELDS[command]) or "no other field"
            shown = repr(unknown[0]) if len(unknown[0]) <= 32 else "a long name"
            return {"ok": False, "error": f"unknown field {shown} for {command}; it takes {takes}"}
        handler = getattr(self, f"do_{command}")
        try:
            return handler(request)
        except (ValueError, LookupError) as exc:
            return {"ok": False, "error": str(exc)}

    def do_status(self, request: dict) -> dict:
        rt = self.runtime
        status, devices = rt.status, rt.devices
        return {
            "ok": True,
            "version": __version__,
            "api": self.api,
            "site": rt.site.id,
            "screen": status.view.screen.kind.value,
            "online": status.online,
            "sale": _describe(status, rt.site) if status.sale else None,
            "reconciling": list(status.reconciling),
            "print_queue": list(status.print_queue),
            "watching": list(status.watching),
            "refunding": list(status.refunding),
            "review": [s.reference for s in rt.journal.in_review()],
            "devices": {
                "display": {"healthy": bool(getattr(devices.display, "healthy", True))},
                "printer": {"ok": status.printer_ok},
                "inputs": [{"name": s.name, "healthy": s.healthy} for s in devices.inputs],
            },
            "last_errors": list(rt.last_errors),
        }

    def do_review(self, request: dict) -> dict:
        """The sales whose money needs a person, with what Mercado Pago approved."""
        the_site = self.runtime.site
        return {"ok": True, "sales": [_reviewed(sale, the_site) for sale in self.runtime.journal.in_review()]}

    def do_sale(self, request: dict) -> dict:
        amount = parse_amount(request.get("amount"), self.runtime.site)
        reply = self.runtime.ask(lambda request_id: ev.ChargeRequested(amount, request_id))
        if not reply.ok:
            return {"ok": False, "error": f"sale refused: {reply.reason}"}
        return {"ok": True, "reference": reply.reference, "total": self.runtime.site.format(amount)}

    def do_hint(self, request: dict) -> dict:
        """A notification from Mercado Pago reached the box (e.g. forwarded by a webhook relay): read now."""
        self.runtime.post(ev.Hint())
        return {"ok": True}

    def do_cancel(self, request: dict) -> dict:
        reply = self.runtime.ask(ev.CancelRequested)
        if not reply.ok:
            return {"ok": False, "error": reply.reason}
        return {"ok": True, "reference": reply.reference,
                "note": "cancel requested; a payment that raced it still wins"}

    def _sale(self, reference: object) -> Sale:
        if reference is not None:
            parse_reference(reference)
        journal = self.runtime.journal
        sale = journal.get(reference) if reference else journal.last_paid()
        if sale is None:
            raise LookupError(f"no sale {reference!r} in the journal" if reference else "no paid sale yet")
        return sale

    def do_reprint(self, request: dict) -> dict:
        sale = self._sale(request.get("reference"))
        reply = self.runtime.ask(lambda request_id: ev.ReprintRequested(sale, request_id))
        if not reply.ok:
            return {"ok": False, "error": reply.reason}
        return {"ok": True, "reference": sale.reference, "note": "a COPY is queued for the printer"}

    def do_report(self, request: dict) -> dict:
        """Print a day's closing ticket; the answer comes once it is printed (or could not be)."""
        text = request.get("date")
        if text is not None and not isinstance(text, str):
            raise ValueError("date: a day as YYYY-MM-DD, or null for today")
        try:
            day = report.parse_day(text) if text is not None else None
        except ValueError as exc:
            raise ValueError(f"date: {exc}") from None
        reply = self.runtime.ask(lambda request_id: ev.ReportRequested(day, request_id), timeout=REPORT_TIMEOUT)
        if not reply.ok:
            return {"ok": False, "error": reply.reason}
        return {"ok": True, "note": f"the closing ticket of {text or 'today'} is printed"}

    def do_refund(self, request: dict) -> dict:
        reference = request.get("reference")
        if reference is None:
            raise ValueError("reference: refund needs the sale's reference")
        sale = self._sale(reference)
        reply = self.runtime.ask(lambda request_id: ev.RefundRequested(sale, request_id), timeout=REFUND_TIMEOUT)
        if not reply.ok:
            return {"ok": False, "error": reply.reason}
        if reply.reason:  # accepted, not confirmed yet: `status` shows it until a read says it is done
            return {"ok": True, "reference": sale.reference, "state": "refunding", "note": reply.reason}
        return {"ok": True, "reference": sale.reference, "state": "refunded"}


def _reviewed(sale: Sale, site: Site) -> dict:
    approved = [p for p in sale.payments if p.status == "approved"]
    return {
        "reference": sale.reference,
        "total": site.format(sale.total),
        "approved": site.format(sum(p.amount for p in approved)),
        "payments": [{"id": p.id, "status": p.status.value, "amount": site.format(p.amount)} for p in sale.payments],
        "created_at": sale.created_at,
    }


def _describe(status: Status, site: Site) -> dict:
    sale = status.sale
    assert sale is not None
    return {
        "reference": sale.reference,
        "state": sale.state.value,
        "total": site.format(sale.total),
        "seconds_left": status.seconds_left,
        "rejected_payments": sale.rejected_payments,
        "order_id": sale.order_id,
    }


class BadRequest(ValueError):
    """A request line that is not one JSON object of sane size and text."""


class TooLong(BadRequest):
    """A request line longer than ``MAX_REQUEST``: the client may still be sending it."""


def _read_line(sock: socket.socket) -> bytes | None:
    """The request line (up to its newline, or all a client sent before it stopped writing; None if it sent
    nothing), read within ``REQUEST_DEADLINE`` and at most ``MAX_REQUEST`` bytes; TimeoutError for a client
    that sends too little."""
    deadline = time.monotonic() + REQUEST_DEADLINE
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(MAX_REQUEST + 1 - len(data))
        if not chunk:
            return bytes(data) if data else None
        data += chunk
        if b"\n" in chunk:
            return bytes(data[:data.index(b"\n")])
        if len(data) > MAX_REQUEST:
            raise TooLong(f"the request is longer than {MAX_REQUEST // 1024} KiB; {USAGE}")


def _drain(sock: socket.socket) -> None:
    """Drop what a client still sends, until it stops or the deadline passes: closing on unread bytes would
    reset the connection before the client reads its answer."""
    deadline = time.monotonic() + REQUEST_DEADLINE
    try:
        sock.shutdown(socket.SHUT_WR)
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(65536):
                return
    except OSError:
        return


def _pairs(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object with no key twice and no string that is not text (a lone surrogate)."""
    found: dict = {}
    for key, value in pairs:
        name = repr(key) if len(key) <= 32 else "a long name"
        if key in found:
            raise BadRequest(f"field {name} is given twice")
        for text in (key, value) if isinstance(value, str) else (key,):
            try:
                text.encode()
            except UnicodeEncodeError:
                raise BadRequest(f"field {name}: not valid Unicode text") from None
        found[key] = value
    return found


def parse_request(line: bytes) -> dict:
    """One request from its line: UTF-8, one JSON object, numbers kept exact (``Decimal``: no float
    rounding, no NaN or infinity, no integer too long to print); BadRequest says what is wrong."""
    try:
        text = line.decode()
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the request is not UTF-8 text (byte {exc.start}); {USAGE}") from None
    try:
        request = json.loads(text, parse_int=Decimal, parse_float=Decimal, parse_constant=Decimal,
                             object_pairs_hook=_pairs)
    except RecursionError:
        raise BadRequest(f"the request is nested too deeply; {USAGE}") from None
    except BadRequest:
        raise
    except ValueError as exc:
        raise BadRequest(f"the request is not JSON ({exc}); {USAGE}") from None
    if not isinstance(request, dict):
        kind = {list: "an array", str: "a string", Decimal: "a number", bool: "a boolean"}.get(type(request), "null")
        raise BadRequest(f"the request is {kind}, not a JSON object; {USAGE}")
    return request


def _line(answer: dict) -> bytes:
    """One answer line, every secret masked."""
    return json.dumps(redact_all(answer), ensure_ascii=False).encode("utf-8", "replace") + b"\n"


class _Handler(socketserver.BaseRequestHandler):
    """One connection: one request line in, one answer line out, then the connection is closed."""

    def _answer(self, request: dict) -> bytes:
        """The command's answer line, whatever went wrong carrying it out."""
        try:
            return _line(self.server.commands.handle(request))
        except queue.Empty:
            return _line({"ok": False, "error": "the daemon did not answer in time; the request may still be "
                                                "carried out: check `mpqr-kiosk status`"})
        except Exception as exc:  # noqa: BLE001 - the socket must answer, whatever went wrong
            log.exception("control command failed")
            return _line({"ok": False, "error": f"internal error: {type(exc).__name__}"})

    def handle(self) -> None:
        too_long = False
        try:
            line = _read_line(self.request)
            if line is None:
                log.debug("control client hung up before asking")
                return
            request = parse_request(line)
        except TimeoutError:
            log.info("control client sent no whole request in %ss; hung up on it", REQUEST_DEADLINE)
            return
        except BadRequest as exc:
            log.info("control request refused: %s", str(exc).split(";")[0])
            request, too_long = None, isinstance(exc, TooLong)
            data = _line({"ok": False, "error": str(exc)})
        except OSError as exc:
            log.debug("control client hung up before asking (%s)", type(exc).__name__)
            return
        if request is not None:
            data = self._answer(request)
        try:
            self.request.settimeout(WRITE_TIMEOUT)
            self.request.sendall(data)
        except OSError:
            log.debug("control client hung up before its answer")
            return
        if too_long:
            _drain(self.request)


class AlreadyRunning(Exception):
    """Another daemon answers on this control socket (rule 10)."""


class SocketUnusable(Exception):
    """No socket can be made at this path: a directory or file is in its place, or its folder cannot exist."""


def occupied(path: Path) -> str:
    """What stands where the socket should be, other than a socket ("" when nothing does)."""
    if path.is_socket() or not (path.is_symlink() or path.exists()):
        return ""
    return f"{path} is {'a directory' if path.is_dir() else 'a file'}, not a socket: remove it or choose another path"


class ControlServer(socketserver.ThreadingUnixStreamServer):
    """Listens on ``path`` (mode 0660) until ``close()``; refuses to take a socket a live daemon answers on."""

    daemon_threads = True
    request_queue_size = 128  # a burst of clients waits in the backlog instead of being refused
    closing = False

    def __init__(self, path: str, commands: Commands):
        self.path = Path(path)
        self.commands = commands
        self.slots = threading.BoundedSemaphore(MAX_CLIENTS)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SocketUnusable(f"{self.path}: its folder {self.path.parent} cannot be made: {exc.strerror}") from None
        if self.path.is_socket():
            if _answers(self.path):
                raise AlreadyRunning(f"another mpqr-kiosk daemon answers on {self.path}")
            self.path.unlink()  # left behind by a killed daemon
        elif problem := occupied(self.path):
            raise SocketUnusable(problem)
        old_umask = os.umask(0o117)
        try:
            super().__init__(str(self.path), _Handler)
        except OSError as exc:
            raise SocketUnusable(f"{self.path}: cannot listen there: {exc.strerror or exc}") from None
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o660)
        self.thread = threading.Thread(target=self.serve_forever, name="control", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Hand the connection to a thread once fewer than ``MAX_CLIENTS`` are busy; until then the accept
        loop waits and newer clients queue in the backlog (a full backlog makes them wait, see ``request``)."""
        while not self.slots.acquire(timeout=0.2):
            if self.closing:
                self.shutdown_request(request)
                return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One log line, never a traceback on stderr: a client that hangs up early is no error of ours."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            log.debug("control client gone: %s", type(exc).__name__)
        else:
            log.error("control connection failed: %s: %s", type(exc).__name__, exc)

    def close(self) -> None:
        self.closing = True
        self.shutdown()
        self.server_close()
        self.path.unlink(missing_ok=True)


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def request(path: str, message: dict[str, Any], timeout: float = 60.0) -> dict:
    """Send one request to a running daemon and return its answer, all within ``timeout`` seconds. A full
    backlog (the daemon busy with other clients) is waited out: ``Busy`` if it stays full; ``TimeoutError``
    if the answer is late; ``ConnectionError`` if the daemon hangs up or answers with something else."""
    deadline = time.monotonic() + timeout

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no answer within {timeout:g}s")
        return remaining

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        while True:
            sock.settimeout(left())
            try:
                sock.connect(path)
                break
            except BlockingIOError:  # EAGAIN: the listen backlog is full right now
                if deadline - time.monotonic() <= 0.05:
                    raise Busy(f"the daemon is busy: its control socket stayed full for {timeout:g}s") from None
                time.sleep(0.05)
        try:
            sock.sendall(json.dumps(message).encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # it stopped reading (a request too long): its answer may be waiting all the same
        data = bytearray()
        while not data.endswith(b"\n"):
            sock.settimeout(left())
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_ANSWER:
                raise ConnectionError(f"the answer is longer than {MAX_ANSWER // 2**20} MiB")
    if not data:
        raise ConnectionError("the daemon closed the control socket without answering")
    try:
        answer = json.loads(data)
    except ValueError:
        raise ConnectionError("the answer is not JSON") from None
    if not isinstance(answer, dict) or "ok" not in answer:
        raise ConnectionError("the answer is not a control answer")
    return answer
