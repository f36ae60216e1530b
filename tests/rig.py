"""A whole kiosk (the daemon's own assembly) in the test process: emulator on loopback, PNG display,
escpos Dummy printer, gpiozero mock pins. Tests drive it with events and watch the journal, the
emulator's request log, the frames and the pins."""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from pathlib import Path

from gpiozero import Device

from mpqr_kiosk import config as cfg
from mpqr_kiosk.assemble import build, timing_of
from mpqr_kiosk.catalog import load_catalog
from mpqr_kiosk.control import Commands
from mpqr_kiosk.core import events as ev
from mpqr_kiosk.core.model import SaleState
from mpqr_kiosk.core.sites import site

TOKEN = "TEST-SECRET-abcdef0123456789-123456789"
CATALOG = "code,title,unit price,sku\n7891000100103,Pão de queijo,4.50,P1\n"


def kiosk_config(emulator, tmp_path: Path, **mercadopago) -> cfg.Config:
    (tmp_path / "catalog.csv").write_text(CATALOG, encoding="utf-8")
    values = {"site": emulator.site.id, "user_id": emulator.user_id, "api_base": emulator.url,
              "qr_payload": emulator.payload("POS001"), "order_ttl": "60s", "poll_interval": "100ms"}
    values.update(mercadopago)
    return cfg.parse({
        "mercadopago": values,
        "shop": {"name": "Padaria Teste"},
        "input": {"devices": [], "catalog": str(tmp_path / "catalog.csv")},
        "display": {"driver": "png", "png_dir": str(tmp_path / "frames")},
        "printer": {"connection": "dummy"},
        "state": {"dir": str(tmp_path / "state")},
        "control": {"socket": str(tmp_path / "control.sock")},
    }, "<test>")


FAST = dict(cancel_grace=1.0, unanswered=2.0, late_watch=6.0, late_interval=0.5, watch_spacing=0.1,
            result_seconds=0.3, review_seconds=1.0, refund_reply=1.0, print_retry=0.3, retry_max=1.0)
"""Durations that let a test live through cancels, expiries and late watches in seconds."""


class Rig:
    def __init__(self, emulator, tmp_path: Path, **mercadopago):
        self.emulator = emulator
        self.tmp_path = tmp_path
        self.config = kiosk_config(emulator, tmp_path, **mercadopago)
        self.catalog = load_catalog(self.config.input.catalog, site(emulator.site.id))
        self.runtime = build(self.config, TOKEN, self.catalog)
        self.runtime.backend.client.timeout = (1.0, 0.5)  # keep fault tests quick
        self.journal = self.runtime.journal
        self.runtime.start()
        assert self.until(lambda: self.runtime.status.online), "the kiosk never came online"

    def until(self, done, timeout: float = 10.0) -> bool:
        return self.runtime.run_until(done, timeout)

    def keys(self, text: str) -> None:
        for key in text:
            self.runtime.post(ev.Key(ev.ENTER if key == "#" else ev.CLEAR if key == "C" else key))
        self.until(lambda: self.runtime.events.empty(), 5)

    def charge(self, digits: str = "1250"):
        """Key an amount and #; return the new sale's reference once it is journaled."""
        self.keys(digits + "#")
        sale = self.runtime.status.sale
        assert sale is not None, "the sale did not start"
        return sale.reference

    @property
    def status(self):
        return self.runtime.status

    def reconfigure(self, **timing) -> None:
        """New durations, as SIGHUP would bring them (the catalog stays)."""
        self.runtime.post(ev.Reconfigure(replace(timing_of(self.config), **timing), self.catalog))
        self.until(lambda: self.runtime.events.empty(), 5)

    def command(self, request: dict, timeout: float = 20.0) -> dict:
        """A control-socket command, answered while the core runs on this thread."""
        answers: list[dict] = []
        commands = Commands(self.runtime, self.config.mercadopago.api)

        def ask() -> None:
            answers.append(commands.handle(request))
            self.runtime.post(ev.Tick())  # wake the loop: a status answer posts nothing of its own

        worker = threading.Thread(target=ask, daemon=True)
        worker.start()
        assert self.until(lambda: bool(answers), timeout), f"no answer to {request}"
        worker.join()
        return answers[0]

    def state(self, reference: str):
        sale = self.journal.get(reference)
        return sale.state if sale else None

    def waiting(self, reference: str) -> bool:
        return self.until(lambda: self.state(reference) is SaleState.WAITING)

    def printed(self, reference: str, timeout: float = 10.0) -> bool:
        return self.until(lambda: (s := self.journal.get(reference)) is not None and s.receipt == "printed", timeout)

    def requests(self, method: str, fragment: str) -> list[dict]:
        return [r for r in self.emulator.requests() if r["method"] == method and fragment in r["path"]]

    def frames(self) -> list[str]:
        return [re.sub(r"^\d+-", "", p.stem) for p in sorted((self.tmp_path / "frames").glob("*.png"))]

    def receipt_bytes(self) -> bytes:
        return bytes(self.runtime.devices.printer.output)

    def pin_states(self, pin: int) -> list[bool]:
        return [bool(s.state) for s in Device.pin_factory.pin(pin).states]

    def stop(self) -> None:
        self.runtime.stop()
