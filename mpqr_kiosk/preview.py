"""``mpqr-kiosk preview``: every screen, a sample receipt and a sample closing ticket as PNG, for the
configured panel and printer. ``--at`` fixes the time printed on them, so the same config draws the same
bytes (the guides' pictures in ``docs/pictures`` are made so, by ``scripts/guide-pictures``)."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path

from mpqr_kiosk import config as cfg
from mpqr_kiosk import emvco, exits
from mpqr_kiosk.assemble import display_of, shop_of
from mpqr_kiosk.core.entry import KEYED_TITLE
from mpqr_kiosk.core.model import Item, ReceiptState, Sale, SaleState, Screen, ScreenKind
from mpqr_kiosk.core.sites import site
from mpqr_kiosk.receipt import build_closing_ticket, build_receipt, render_png
from mpqr_kiosk.report import DayReport, ItemLine

SAMPLE_POS_ID = 1043915


def sample_screens(lang: str) -> list[Screen]:
    """One screen of each kind, filled the way a real sale fills them."""
    items = (Item("Pão de queijo" if lang == "pt" else "Alfajor", 450, 2, "SKU1", "7891000100103"),
             Item(KEYED_TITLE[lang], 1250))
    total = sum(i.amount for i in items)
    sale = dict(items=items, total=total, reference="POS001-9f8e7d6c5b4a3921")
    return [
        Screen(ScreenKind.READY),
        Screen(ScreenKind.ENTERING, items[:1], items[0].amount, entry=1250),
        Screen(ScreenKind.PAY, seconds_left=583, **sale),
        Screen(ScreenKind.CUSTOMER_PAYING, seconds_left=541, **sale),
        Screen(ScreenKind.REJECTED, seconds_left=512, **sale),
        Screen(ScreenKind.PAID, **sale),
        Screen(ScreenKind.CANCELLED, **sale),
        Screen(ScreenKind.EXPIRED, **sale),
        Screen(ScreenKind.REVIEW, **sale),
        Screen(ScreenKind.OFFLINE),
        Screen(ScreenKind.PRINTER_PROBLEM),
    ]


def sample_day(site_id: str, screens: list[Screen], day: date) -> DayReport:
    """A day of sales the way ``report`` adds one up, for the sample closing ticket."""
    report = DayReport(day, site_id, paid=["1", "2", "3", "4"], taken=4 * screens[2].total, refunds=["2"],
                       refunded=screens[2].total, cancelled=["5"], expired=["6"],
                       keyed=4 * screens[2].items[1].amount)
    first = screens[2].items[0]
    report.items[first.code] = ItemLine(first.code, first.title, 4 * first.quantity, 4 * first.amount)
    return report


def run(config_path: str, out: Path, at: datetime | None = None) -> int:
    config = cfg.load(config_path)
    at = at or datetime.now()
    the_site = site(config.mercadopago.site)
    payload = config.mercadopago.qr_payload or emvco.build_static(SAMPLE_POS_ID, the_site, config.shop.name, "CIDADE")
    out.mkdir(parents=True, exist_ok=True)
    frames = out / "screens"
    display = display_of(config.display, the_site, payload, driver="png", png_dir=str(frames))
    screens = sample_screens(the_site.language)
    for screen in screens:
        display.show(screen)
    display.close()
    sale = Sale("POS001-9f8e7d6c5b4a3921", "key", the_site.id, screens[2].items, screens[2].total, at.timestamp(),
                state=SaleState.PAID, payment_id="123456789012", paid_amount=screens[2].total,
                receipt=ReceiptState.PRINTED)
    receipt = build_receipt(sale, shop_of(config), the_site, at, copy=False)
    render_png(receipt).save(out / "receipt.png")
    ticket = build_closing_ticket(sample_day(the_site.id, screens, at.date()), shop_of(config), the_site, at)
    render_png(ticket).save(out / "closing-ticket.png")
    sys.stdout.write(f"{len(screens)} screens ({config.display.width}x{config.display.height}) in {frames}, "
                     f"sample receipt in {out / 'receipt.png'}, sample closing ticket in "
                     f"{out / 'closing-ticket.png'}\n")
    return exits.OK
