"""The control socket: a Unix socket speaking one JSON object per line each way.

``mpqr-kiosk status|sale|cancel|reprint|refund`` are its clients (remote maintenance over SSH, and how
scripted tests drive the daemon). Requests: ``{"command": "status"}``, ``{"command": "sale", "amount":
"12.50"}``, ``{"command": "cancel"}``, ``{"command": "reprint", "reference": "…"}``, ``{"command":
"refund", "reference": "…"}``, ``{"command": "hint"}`` (a notification arrived: read now). Answers always
carry ``"ok"``; failures carry ``"error"``.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import socketserver
import threading
from pathlib import Path
from typing import Any

from mpqr_kiosk import __version__
from mpqr_kiosk.core import events as ev
from mpqr_kiosk.core.model import Sale, SaleState, Screen
from mpqr_kiosk.core.sites import Site
from mpqr_kiosk.mercadopago.errors import ApiError
from mpqr_kiosk.shell import Runtime

log = logging.getLogger(__name__)

MAX_REQUEST = 4096
REFUND_TIMEOUT = 40.0


class Commands:
    """What each control command does to the running kiosk."""

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
        return self.runtime.call(self._status)

    def _status(self) -> dict:
        rt, kiosk = self.runtime, self.runtime.kiosk
        devices = rt.devices
        sale = kiosk.sale
        screen = kiosk.screen()
        return {
            "ok": True,
            "version": __version__,
            "api": self.api,
            "site": kiosk.site.id,
            "screen": screen.kind.value,
            "online": kiosk.online,
            "sale": _describe(sale, kiosk.site, screen) if sale else None,
            "reconciling": [s.reference for s in kiosk.backlog],
            "print_queue": [s.reference for s in [*([kiosk.printing] if kiosk.printing else []), *kiosk.print_queue]],
            "devices": {
                "display": {"healthy": bool(getattr(devices.display, "healthy", True))},
                "printer": {"ok": kiosk.printer_ok},
                "inputs": [{"name": s.name, "healthy": s.healthy} for s in devices.inputs],
            },
            "last_errors": list(rt.last_errors),
        }

    def do_sale(self, request: dict) -> dict:
        amount = self.runtime.kiosk.site.parse(str(request.get("amount", "")))
        if amount <= 0:
            raise ValueError("the amount must be more than zero")

        def start() -> dict:
            kiosk = self.runtime.kiosk
            before = kiosk.sale
            self.runtime.dispatch(kiosk.handle(ev.ChargeRequested(amount)))
            if kiosk.sale is None or kiosk.sale is before:
                reason = "offline" if not kiosk.online else "a sale is in progress or the operator is keying one"
                return {"ok": False, "error": f"sale refused: {reason}"}
            return {"ok": True, "reference": kiosk.sale.reference, "total": kiosk.site.format(amount)}

        return self.runtime.call(start)

    def do_hint(self, request: dict) -> dict:
        """A notification from Mercado Pago reached the box (e.g. forwarded by a webhook relay): read now."""
        self.runtime.post(ev.Hint())
        return {"ok": True}

    def do_cancel(self, request: dict) -> dict:
        def cancel() -> dict:
            kiosk = self.runtime.kiosk
            if not kiosk.sale or kiosk.sale.state not in (SaleState.PUSHING, SaleState.WAITING):
                return {"ok": False, "error": "no sale is waiting for payment"}
            reference = kiosk.sale.reference
            self.runtime.dispatch(kiosk.handle(ev.CancelRequested()))
            return {"ok": True, "reference": reference, "note": "cancel requested; a payment that raced it still wins"}

        return self.runtime.call(cancel)

    def _paid_sale(self, reference: str | None) -> Sale:
        journal = self.runtime.journal
        sale = journal.get(reference) if reference else journal.last_paid()
        if sale is None:
            raise LookupError(f"no sale {reference!r} in the journal" if reference else "no paid sale yet")
        if sale.state is not SaleState.PAID:
            raise ValueError(f"sale {sale.reference} is {sale.state}, not paid")
        return sale

    def do_reprint(self, request: dict) -> dict:
        sale = self._paid_sale(request.get("reference"))
        self.runtime.call(lambda: self.runtime.dispatch(self.runtime.kiosk.reprint(sale)))
        return {"ok": True, "reference": sale.reference, "note": "a COPY is queued for the printer"}

    def do_refund(self, request: dict) -> dict:
        reference = request.get("reference")
        if not reference:
            raise ValueError("refund needs the sale's reference")
        sale = self._paid_sale(reference)
        done: queue.Queue[dict] = queue.Queue(maxsize=1)

        def job():
            try:
                self.runtime.backend.refund(sale)
            except ApiError as exc:
                log.error("sale %s: refund failed: %s", sale.reference, exc)
                failure = {"ok": False, "error": f"refund failed: {exc}"}
                return lambda: done.put(failure)

            def record() -> None:
                self.runtime.dispatch(self.runtime.kiosk.refunded(self.runtime.journal.get(sale.reference) or sale))
                done.put({"ok": True, "reference": sale.reference})

            return record

        self.runtime.api.submit(job)
        return done.get(timeout=REFUND_TIMEOUT)


def _describe(sale: Sale, site: Site, screen: Screen) -> dict:
    return {
        "reference": sale.reference,
        "state": sale.state.value,
        "total": site.format(sale.total),
        "seconds_left": screen.seconds_left,
        "rejected_payments": sale.rejected_payments,
        "order_id": sale.order_id,
    }


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(MAX_REQUEST)
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
            answer = self.server.commands.handle(request)
        except ValueError:
            answer = {"ok": False, "error": "send one JSON object per line, e.g. {\"command\": \"status\"}"}
        except queue.Empty:
            answer = {"ok": False, "error": "the daemon did not answer in time; the request may still be "
                                            "carried out: check `mpqr-kiosk status`"}
        except Exception as exc:  # noqa: BLE001 - the socket must answer, whatever went wrong
            log.exception("control command failed")
            answer = {"ok": False, "error": f"internal error: {type(exc).__name__}"}
        self.wfile.write(json.dumps(answer, ensure_ascii=False).encode() + b"\n")


class ControlServer(socketserver.ThreadingUnixStreamServer):
    """Listens on ``path`` (mode 0660) until ``close()``."""

    daemon_threads = True

    def __init__(self, path: str, commands: Commands):
        self.path = Path(path)
        self.commands = commands
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_socket():
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


def request(path: str, message: dict[str, Any], timeout: float = 60.0) -> dict:
    """Send one request to a running daemon and return its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
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
