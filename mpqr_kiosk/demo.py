"""``mpqr-kiosk demo``: one whole sale with no hardware and no account.

The embedded emulator plays Mercado Pago and the customer; the display writes PNG frames, the printer
is python-escpos's ``Dummy`` (saved as ``receipt.bin``, plus ``receipt.png`` for people), the LEDs and
buzzer run on gpiozero's mock pins, and the operator's keys are scripted. Everything else is the
daemon's own code, assembled the same way.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

from mpqr_kiosk import config as cfg
from mpqr_kiosk import exits
from mpqr_kiosk.assemble import build, shop_of
from mpqr_kiosk.catalog import load_catalog
from mpqr_kiosk.core import events as ev
from mpqr_kiosk.core.model import ReceiptState, SaleState, ScreenKind
from mpqr_kiosk.core.sites import site
from mpqr_kiosk.emulator.server import EmulatorServer
from mpqr_kiosk.emulator.state import Emulator
from mpqr_kiosk.logsetup import setup
from mpqr_kiosk.mercadopago.http import HttpClient
from mpqr_kiosk.provision import find_pos, static_payload
from mpqr_kiosk.receipt import build_receipt, render_png
from mpqr_kiosk.shell import Runtime

DEMO_USER = 123456789
DEMO_TOKEN = f"TEST-DEMO-{DEMO_USER}"  # the emulator takes the user id from the token's tail
STEP_TIMEOUT = 20.0
SHOPS = {"pt": "Padaria São João", "es": "Almacén Don José"}
CATALOG = {  # code, title, price in major units
    "pt": [("7891000100103", "Pão de queijo", "4.50"), ("7894900011517", "Café com leite", "6.00")],
    "es": [("7790070411716", "Alfajor de maicena", "850"), ("7790580123456", "Café con leche", "1200")],
}


class Narrator:
    """Writes the demo's story to stdout with the time since the start."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, text: str) -> None:
        sys.stdout.write(f"{time.monotonic() - self.start:7.2f}s  {text}\n")
        sys.stdout.flush()


def run(out: Path, site_id: str = "MLB") -> int:
    """Run the demo sale; return the exit code."""
    the_site = site(site_id)
    lang = the_site.language
    say = Narrator()
    if out.exists():
        for name in ("frames", "state", "receipt.bin", "receipt.png", "demo.log", "catalog.csv"):
            target = out / name
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
    with open(out / "demo.log", "w", encoding="utf-8") as log_file:
        setup(logging.INFO, journal=False, stream=log_file)
        emulator = Emulator(site=the_site.id, user_id=DEMO_USER)
        with EmulatorServer(emulator) as server:
            return _sale(out, the_site, lang, server.url, emulator, say)


def _sale(out: Path, the_site, lang: str, url: str, emulator: Emulator, say: Narrator) -> int:
    say(f"Mercado Pago emulator listening on {url} (site {the_site.id}, {the_site.currency})")
    pos = find_pos(HttpClient(url, DEMO_TOKEN), "POS001")
    payload = static_payload(pos)
    say(f"POS001's QR image decoded to its static EMVCo payload ({len(payload)} chars, CRC ok)")

    (out / "catalog.csv").write_text(
        "code,title,unit price,sku\n" + "".join(f"{c},{t},{p},SKU{i}\n" for i, (c, t, p) in enumerate(CATALOG[lang])),
        encoding="utf-8",
    )
    config = cfg.parse({
        "mercadopago": {"site": the_site.id, "user_id": DEMO_USER, "api_base": url, "qr_payload": payload,
                        "order_ttl": "2m", "poll_interval": "250ms"},
        "shop": {"name": SHOPS[lang], "address": "Rua das Flores 12" if lang == "pt" else "Av. Corrientes 1234",
                 "receipt_footer": ["Obrigado!" if lang == "pt" else "¡Gracias!"]},
        "input": {"devices": [], "catalog": str(out / "catalog.csv")},
        "display": {"driver": "png", "png_dir": str(out / "frames"), "width": 128, "height": 128},
        "printer": {"connection": "dummy", "profile": "TM-T20II"},
        "state": {"dir": str(out / "state")},
    }, "<demo>")
    runtime = build(config, DEMO_TOKEN, load_catalog(config.input.catalog, the_site))
    try:
        runtime.start()
        _expect(runtime.run_until(lambda: runtime.status.online, STEP_TIMEOUT), "the emulator never answered")
        say("kiosk is READY (journal open, display, printer and LEDs up, API reachable)")

        (code1, title1, _), (code2, title2, _) = CATALOG[lang]
        script = [(f"operator scans {code1} ({title1})", [ev.Scan(code1)]),
                  (f"operator keys 2 * and scans {code2} ({title2})", [ev.Key("2"), ev.Key("*"), ev.Scan(code2)]),
                  ("operator keys 1 2 5 0 (a keyed amount) and #", [ev.Key(k) for k in "1250"] + [ev.Key(ev.ENTER)])]
        for text, events in script:
            for event in events:
                runtime.post(event)
            runtime.run_until(lambda: runtime.events.empty(), STEP_TIMEOUT)
            say(text)
        sale = runtime.status.sale
        _expect(sale is not None, "the sale did not start")
        say(f"sale {sale.reference} journaled, total {the_site.format(sale.total)}; pushing to POS001")
        _expect(runtime.run_until(lambda: _live_state(runtime) is SaleState.WAITING, STEP_TIMEOUT),
                "the order never reached the POS")
        say("order is on the POS: display shows the QR, the total and the countdown; yellow LED blinks")

        emulator.scan("POS001")
        say("customer scanned the QR: the app shows the checkout (the box sees nothing until a payment attempt)")
        emulator.pay("POS001", "rejected")
        _expect(runtime.run_until(lambda: _rejections(runtime) >= 1, STEP_TIMEOUT), "the rejection was not seen")
        say("payment REJECTED: the order stays on the POS, the customer may try again")
        _expect(runtime.run_until(lambda: _screen(runtime) is ScreenKind.CUSTOMER_PAYING, STEP_TIMEOUT),
                "the attempt was not shown")
        say("display says the customer is paying")
        emulator.pay("POS001", "approved")
        reference = sale.reference
        _expect(runtime.run_until(lambda: _printed(runtime, reference), STEP_TIMEOUT), "the receipt never printed")
        paid = runtime.journal.get(reference)
        say(f"payment {paid.payment_id} APPROVED for {the_site.format(paid.paid_amount)}: paid, green LED, long beep")
        runtime.run_until(lambda: False, 0.5)  # let the Paid screen reach the display
    finally:
        runtime.stop()

    printer = runtime.devices.printer
    (out / "receipt.bin").write_bytes(bytes(printer.output))
    receipt = build_receipt(paid, shop_of(config), the_site, datetime.fromtimestamp(paid.paid_at), copy=False)
    render_png(receipt).save(out / "receipt.png")
    frames = sorted((out / "frames").glob("*.png"))
    say(f"receipt printed once ({len(printer.output)} ESC/POS bytes): {out / 'receipt.bin'}, {out / 'receipt.png'}")
    say(f"{len(frames)} display frames in {out / 'frames'}; log in {out / 'demo.log'}")
    return exits.OK


def _live_state(runtime: Runtime) -> SaleState | None:
    sale = runtime.status.sale
    return sale.state if sale else None


def _screen(runtime: Runtime) -> ScreenKind:
    return runtime.status.view.screen.kind


def _rejections(runtime: Runtime) -> int:
    sale = runtime.status.sale
    return sale.rejected_payments if sale else 0


def _printed(runtime: Runtime, reference: str) -> bool:
    sale = runtime.journal.get(reference)
    return sale is not None and sale.state is SaleState.PAID and sale.receipt is ReceiptState.PRINTED


class DemoFailed(Exception):
    pass


def _expect(ok: bool, problem: str) -> None:
    if not ok:
        raise DemoFailed(problem)

