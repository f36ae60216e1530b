"""What is printed: a paid sale's receipt as styled lines, sent to an ESC/POS printer or drawn as a PNG.

The lines carry no width: ``print_receipt`` wraps them to the printer profile's columns (58 mm paper is 32
columns, 80 mm 42-48) and ``render_png`` to the picture's width at 12 dots a column, like font A.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import qrcode
from escpos.constants import QR_ECLEVEL_M
from PIL import Image, ImageDraw

from mpqr_kiosk.core.model import Sale, Shop
from mpqr_kiosk.core.sites import Site
from mpqr_kiosk.report import DayReport
from mpqr_kiosk.screens import font

if TYPE_CHECKING:
    from escpos.escpos import Escpos

LABELS: dict[str, dict[str, str]] = {
    "pt": {
        "copy": "*** CÓPIA ***",
        "amount": "Valor",
        "paid_with": "Pago com Mercado Pago (QR)",
        "payment": "Pagamento nº",
        "reference": "Referência",
        "not_fiscal": "Não é documento fiscal",
    },
    "es": {
        "copy": "*** COPIA ***",
        "amount": "Importe",
        "paid_with": "Pagado con Mercado Pago (QR)",
        "payment": "Pago N°",
        "reference": "Referencia",
        "not_fiscal": "No válido como factura",
    },
}
TAX_ID_LABELS = {
    "MLA": "CUIT", "MLB": "CNPJ", "MLC": "RUT", "MLM": "RFC", "MCO": "NIT", "MPE": "RUC", "MLU": "RUT",
}
DOT_WIDTH = 12  # dots per column in font A (12 x 24)
_LINE_DOTS = 24


@dataclass(frozen=True)
class Line:
    """One receipt line; ``right`` is flushed right on the same row (amounts, ids) when it fits."""

    text: str = ""
    right: str = ""
    bold: bool = False
    double: bool = False  # double width and height: half the columns
    center: bool = False
    rule: bool = False  # a full-width row of "-"


@dataclass(frozen=True)
class Receipt:
    lines: tuple[Line, ...]
    qr: str = ""  # printed as a QR code under the lines (the sale's external_reference)


def _tax_id(shop: Shop, site: Site) -> str:
    label = TAX_ID_LABELS.get(site.id, "")
    if not shop.tax_id or not label or shop.tax_id.upper().startswith(label):
        return shop.tax_id
    return f"{label} {shop.tax_id}"


def build_receipt(sale: Sale, shop: Shop, site: Site, printed_at: datetime, copy: bool) -> Receipt:
    """The receipt of a paid ``sale``; ``copy`` marks a reprint (or a print cut short) as a COPY."""
    t = LABELS["pt" if site.language == "pt" else "es"]
    rule = Line(rule=True)
    marker = [Line(t["copy"], bold=True, double=True, center=True)] if copy else []
    head = [Line(shop.name, bold=True, double=True, center=True)] if shop.name else []
    details = (shop.address, _tax_id(shop, site), *shop.receipt_header)
    head += [Line(text, center=True) for text in details if text]
    items = [Line(f"{i.quantity} x {i.title or t['amount']}", site.format(i.amount)) for i in sale.items]
    lines = [
        *head,
        *marker,
        rule,
        Line(printed_at.strftime("%d/%m/%Y"), printed_at.strftime("%H:%M:%S")),
        rule,
        *items,
        *([rule] if items else []),
        Line("TOTAL", site.format(sale.total), bold=True, double=True),
        rule,
        Line(t["paid_with"]),
        *([Line(t["payment"], sale.payment_id)] if sale.payment_id else []),
        Line(t["reference"], sale.reference),
        rule,
        Line(t["not_fiscal"], center=True),
        *(Line(text, center=True) for text in shop.receipt_footer),
        *marker,
    ]
    return Receipt(tuple(lines), qr=sale.reference)


REPORT_LABELS: dict[str, dict[str, str]] = {
    "pt": {"title": "FECHAMENTO DO DIA", "not_receipt": "RELATÓRIO - NÃO É RECIBO", "day": "Dia",
           "printed": "Impresso", "paid": "Vendas pagas", "taken": "Recebido", "refunds": "Estornos",
           "net": "Líquido", "cancelled": "Canceladas", "expired": "Expiradas", "review": "EM REVISÃO",
           "queued": "Recibos pendentes", "sold": "Vendido", "keyed": "Valores digitados"},
    "es": {"title": "CIERRE DEL DÍA", "not_receipt": "INFORME - NO ES COMPROBANTE", "day": "Día",
           "printed": "Impreso", "paid": "Ventas pagadas", "taken": "Cobrado", "refunds": "Devoluciones",
           "net": "Neto", "cancelled": "Canceladas", "expired": "Vencidas", "review": "EN REVISIÓN",
           "queued": "Recibos pendientes", "sold": "Vendido", "keyed": "Importes digitados"},
}


def build_closing_ticket(day: DayReport, shop: Shop, site: Site, printed_at: datetime) -> Receipt:
    """The day's closing ticket: its own layout, marked as a report at its top and bottom (and without a
    reference, a payment or a QR), so that nobody takes it for a sale's receipt."""
    t = REPORT_LABELS["pt" if site.language == "pt" else "es"]
    rule = Line(rule=True)
    marker = [Line(f"*** {t['title']} ***", bold=True, center=True),  # fits 58 mm paper (32 columns)
              Line(t["not_receipt"], bold=True, center=True)]
    sold = [Line(f"{i.quantity} x {i.title}", site.format(i.amount))
            for i in sorted(day.items.values(), key=lambda i: (-i.amount, i.title))]
    if day.keyed:
        sold.append(Line(t["keyed"], site.format(day.keyed)))
    lines = [
        *marker,
        *([Line(shop.name, center=True)] if shop.name else []),
        rule,
        Line(t["day"], day.day.strftime("%d/%m/%Y")),
        Line(t["printed"], printed_at.strftime("%d/%m/%Y %H:%M")),
        rule,
        Line(f"{t['paid']}: {day.count('paid')}", site.format(day.taken)),
        Line(f"{t['refunds']}: {day.count('refunds')}", site.format(-day.refunded) if day.refunded else site.format(0)),
        Line(t["net"], site.format(day.net), bold=True),
        Line(f"{t['cancelled']}: {day.count('cancelled')}"),
        Line(f"{t['expired']}: {day.count('expired')}"),
        *([Line(f"{t['review']}: {len(day.review)}", bold=True), *(Line(f"  {ref}") for ref in day.review)]
          if day.review else []),
        *([Line(f"{t['queued']}: {len(day.unprinted)}")] if day.unprinted else []),
        *([rule, Line(t["sold"], bold=True), *sold] if sold else []),
        rule,
        *marker,
    ]
    return Receipt(tuple(lines))


def rows(line: Line, columns: int) -> list[str]:
    """``line`` as printed rows ``columns`` wide (half as many for double-size text)."""
    width = max(1, columns // 2 if line.double else columns)
    if line.rule:
        return ["-" * width]
    wrapped = textwrap.wrap(line.text, width) or [""]
    if not line.right:
        return wrapped
    if len(wrapped[-1]) + 1 + len(line.right) <= width:
        wrapped[-1] = wrapped[-1].ljust(width - len(line.right)) + line.right
        return wrapped
    return wrapped + [r.rjust(width) for r in textwrap.wrap(line.right, width)]


def print_receipt(printer: Escpos, receipt: Receipt) -> None:
    """Send ``receipt`` through a python-escpos printer: styled text, a native QR where supported, a cut."""
    columns = printer.profile.get_columns("a")
    printer.hw("INIT")  # ESC @: a known state whatever the last job (or a power cycle) left behind ...
    printer.magic.encoding = None  # ... it also resets the code page, so MagicEncode must send ESC t again
    style = None
    for line in receipt.lines:
        if style != (line.center, line.bold, line.double):
            style = (line.center, line.bold, line.double)
            printer.set(
                align="center" if line.center else "left",
                bold=line.bold,
                normal_textsize=not line.double,
                double_width=line.double,
                double_height=line.double,
            )
        for row in rows(line, columns):
            printer.textln(row)
    if receipt.qr and printer.profile.supports("qrCode"):
        printer.set(align="center", bold=False, normal_textsize=True)
        printer.qr(receipt.qr, ec=QR_ECLEVEL_M, size=4, native=True)
    printer.cut()


def render_png(receipt: Receipt, width_px: int = 384) -> Image.Image:
    """A picture of the printed receipt (black on white, 12 x 24 dots a character) for the demo."""
    columns = width_px // DOT_WIDTH
    laid = [(line, row) for line in receipt.lines for row in rows(line, columns)]
    code = None
    if receipt.qr:
        qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=4, border=2)
        qr.add_data(receipt.qr)
        code = qr.make_image().get_image()
    text_rows = sum(2 if line.double else 1 for line, _ in laid)
    height = _LINE_DOTS * (1 + text_rows) + (code.height if code else 0)
    image = Image.new("L", (width_px, height), "white")
    draw = ImageDraw.Draw(image)
    y = _LINE_DOTS // 2
    for line, row in laid:
        scale = 2 if line.double else 1
        f = font(19 * scale)  # DejaVu Sans Mono advances 0.6 em: 11.4 dots a column, inside the 12
        x = (width_px - f.getlength(row)) / 2 if line.center else 0
        for dx in (0, 1) if line.bold else (0,):
            draw.text((x + dx, y), row, font=f, fill="black")
        y += _LINE_DOTS * scale
    if code:
        image.paste(code.convert("L"), ((width_px - code.width) // 2, y))
    return image
