"""The control socket: a Unix socket speaking one JSON object per line each way.

``mpqr-kiosk status|sale|cancel|reprint|refund|review`` are its clients (remote maintenance over SSH, and how
scripted tests drive the daemon). Requests: ``{"command": "status"}``, ``{"command": "sale", "amount":
"12.50"}``, ``{"command": "cancel"}``, ``{"command": "reprint", "reference": "…"}``, ``{"command":
"refund", "reference": "…"}``, ``{"command": "review"}``, ``{"command": "report", "date": "YYYY-MM-DD"}``
(print that day's closing ticket; no date: today), ``{"command": "hint"}`` (a notification arrived: read now).
Answers always carry ``"ok"``; failures carry ``"error"``; every string is redacted.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import socket
import socketserver
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

from mpqr_kiosk import __version__
from mpqr_kiosk.core import events as ev
from mpqr_kiosk.core.kiosk import Status
from mpqr_kiosk.core.model import Sale
from mpqr_kiosk.core.sites import Site
from mpqr_kiosk.redact import redact_all
from mpqr_kiosk.shell import Runtime

log = logging.getLogger(__name__)

MAX_REQUEST = 4096
REFUND_TIMEOUT = 40.0
REPORT_TIMEOUT = 60.0  # the printer finishes the receipts queued before the ticket first
CLIENT_TIMEOUT = 10.0
REFERENCE = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Commands:
    """What each control command does: it reads the core's latest ``Status``, or asks the core with an event
    and answers with the core's ``Reply``."""

    def __init__(self, runtime: Runtime, api: str):
        self.runtime = runtime
        self.api = api

    def handle(self, request: dict) -> dict:
        command = request.get("command")
        handler = getattr(self, f"do_{command}", None) if isinstance(command, str) else None
        if handler is None:
            known = ", ".join(name[3:] for name in dir(self) if name.startswith("do_"))
            return {"ok": False, "error": f"unknown command {command!r}; known: {known}"}
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
        amount = request.get("amount", "")
        if not isinstance(amount, str | int | float) or isinstance(amount, bool) or len(str(amount)) > 32:
            raise ValueError("the amount must be a number such as 12.50")
        amount = self.runtime.site.parse(str(amount))
        if amount <= 0:
            raise ValueError("the amount must be more than zero")
        if amount > self.runtime.site.max_amount:
            raise ValueError(f"the amount must be at most {self.runtime.site.format(self.runtime.site.max_amount)}")
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
        if reference is not None and (not isinstance(reference, str) or not REFERENCE.fullmatch(reference)):
            raise ValueError("a reference is 1 to 64 letters, digits, - or _")
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
        if text is not None and not (isinstance(text, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text)):
            raise ValueError("date is YYYY-MM-DD")
        day = date.fromisoformat(text) if text else None
        reply = self.runtime.ask(lambda request_id: ev.ReportRequested(day, request_id), timeout=REPORT_TIMEOUT)
        if not reply.ok:
            return {"ok": False, "error": reply.reason}
        return {"ok": True, "note": f"the closing ticket of {text or 'today'} is printed"}

    def do_refund(self, request: dict) -> dict:
        reference = request.get("reference")
        if not reference:
            raise ValueError("refund needs the sale's reference")
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


class _Handler(socketserver.StreamRequestHandler):
    timeout = CLIENT_TIMEOUT  # an idle client does not hold its thread for ever

    def handle(self) -> None:
        try:
            line = self.rfile.readline(MAX_REQUEST)
        except OSError:  # timed out, or hung up before asking
            return
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
            answer = self.server.commands.handle(request)
        except (ValueError, RecursionError):
            answer = {"ok": False, "error": "send one JSON object per line, e.g. {\"command\": \"status\"}"}
        except queue.Empty:
            answer = {"ok": False, "error": "the daemon did not answer in time; the request may still be "
                                            "carried out: check `mpqr-kiosk status`"}
        except Exception as exc:  # noqa: BLE001 - the socket must answer, whatever went wrong
            log.exception("control command failed")
            answer = {"ok": False, "error": f"internal error: {type(exc).__name__}"}
        try:
            self.wfile.write(json.dumps(redact_all(answer), ensure_ascii=False).encode() + b"\n")
        except OSError:
            log.debug("control client hung up before its answer")


class AlreadyRunning(Exception):
    """Another daemon answers on this control socket (rule 10)."""


class ControlServer(socketserver.ThreadingUnixStreamServer):
    """Listens on ``path`` (mode 0660) until ``close()``; refuses to take a socket a live daemon answers on."""

    daemon_threads = True
    request_queue_size = 64  # a burst of clients waits in the backlog instead of being refused

    def __init__(self, path: str, commands: Commands):
        self.path = Path(path)
        self.commands = commands
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_socket():
            if _answers(self.path):
                raise AlreadyRunning(f"another mpqr-kiosk daemon answers on {self.path}")
            self.path.unlink()  # left behind by a killed daemon
        old_umask = os.umask(0o117)
        try:
            super().__init__(str(self.path), _Handler)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o660)
        self.thread = threading.Thread(target=self.serve_forever, name="control", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
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
    """Send one request to a running daemon and return its answer. A full backlog (the daemon busy with
    other clients) is waited out, up to ``timeout``."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        while True:
            try:
                sock.connect(path)
                break
            except BlockingIOError:  # EAGAIN: the listen backlog is full right now
                if time.monotonic() >= deadline:
                    raise TimeoutError("the daemon's control socket stayed busy") from None
                time.sleep(0.05)
        sock.sendall(json.dumps(message).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data:
        raise ConnectionError("the daemon closed the control socket without answering")
    return json.loads(data)
