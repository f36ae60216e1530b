"""What the display shows: each ``Screen`` drawn for the panel's size and colour mode.

Text is white (lit) on black; the QR is dark modules on a lit quiet zone, never inverted. The font is the
DejaVu Sans Mono that python-barcode (a dependency of python-escpos) ships: Pillow's bundled default
font has no accented letters (á ã ç é ñ come out as boxes), and this needs no system font package.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import qrcode
from PIL import Image, ImageDraw, ImageFont

from mpqr_kiosk.core.model import Notice, Screen, ScreenKind
from mpqr_kiosk.core.sites import Site

log = logging.getLogger(__name__)

PHRASES: dict[str, dict[str, str]] = {
    "pt": {
        "ready": "Pronto",
        "ready_hint": "Digite o valor",
        "amount": "Valor",
        "total": "Total",
        "pay": "Pague com QR",
        "use_sticker": "Use o QR impresso",
        "customer_paying": "Cliente pagando",
        "paid": "Pago!",
        "rejected": "Pagamento recusado",
        "try_again": "Tente novamente",
        "cancelled": "Cancelado",
        "expired": "Tempo esgotado",
        "offline": "Sem conexão",
        "offline_hint": "Pagamento QR indisponível",
        "printer_problem": "Problema na impressora",
        "printer_hint": "Verifique o papel",
        "refused": "Pedido recusado",
        "unknown_code": "Código desconhecido",
        "busy": "Venda em andamento",
        "too_much": "Valor acima do máximo",
        "review": "Revisar pagamento",
        "review_hint": "Não cobre de novo",
    },
    "es": {
        "ready": "Listo",
        "ready_hint": "Ingrese el monto",
        "amount": "Monto",
        "total": "Total",
        "pay": "Pague con QR",
        "use_sticker": "Use el QR impreso",
        "customer_paying": "Cliente pagando",
        "paid": "¡Pagado!",
        "rejected": "Pago rechazado",
        "try_again": "Intente de nuevo",
        "cancelled": "Cancelado",
        "expired": "Tiempo agotado",
        "offline": "Sin conexión",
        "offline_hint": "Pago QR no disponible",
        "printer_problem": "Problema de impresora",
        "printer_hint": "Revise el papel",
        "refused": "Pedido rechazado",
        "unknown_code": "Código desconocido",
        "busy": "Venta en curso",
        "too_much": "Monto sobre el máximo",
        "review": "Revisar pago",
        "review_hint": "No cobre de nuevo",
    },
}

_FONT_FILE = files("barcode") / "fonts" / "DejaVuSansMono.ttf"
_MAX_BORDER = 2  # quiet zone in modules: phone decoders cope with 1-2; more would eat the text's room
_GAP = 3  # pixels between the QR and the text
_IMPORTANT = 80  # rows of this priority or more (title, total, entry, time left) are worth smaller text


def phrases(site: Site) -> dict[str, str]:
    """The phrase table for the site's language: Portuguese for "pt", Spanish otherwise."""
    return PHRASES["pt" if site.language == "pt" else "es"]


def notice_text(notice: Notice, t: dict[str, str]) -> str:
    """A core notice in words: its phrase, then its detail (an unknown code)."""
    return f"{t[notice.kind.value]} {notice.detail}".strip()


@lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A monospaced font with Latin accents at ``size`` pixels (Pillow's default font if it is missing).

    The layout engine is Pillow's basic one, always: Pillow picks libraqm when the system happens to have it,
    which draws other pixels, so the same box would differ from machine to machine and from ``preview``."""
    try:
        with _FONT_FILE.open("rb") as f:
            return ImageFont.truetype(f, size, layout_engine=ImageFont.Layout.BASIC)
    except OSError as exc:
        log.warning("font %s unavailable (%s); accents will not render", _FONT_FILE, exc)
        return ImageFont.load_default(size)


# ---------------------------------------------------------------------------------------------- QR


@dataclass(frozen=True)
class QrFit:
    """How the static QR fits a panel. ``px_per_module`` 0 means it does not fit at all (``image`` None)."""

    px_per_module: int
    version: int
    border: int  # quiet zone, in modules
    image: Image.Image | None  # mode "1": dark modules on white, quiet zone included


@lru_cache(maxsize=4)
def _qr_modules(payload: str) -> tuple[int, tuple[tuple[bool, ...], ...]]:
    """The QR's version and module matrix (EC level M, no border): the slow part, so cached."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    qr.add_data(payload)
    qr.make(fit=True)
    return qr.version, tuple(tuple(row) for row in qr.modules)


def _fit_area(payload: str, width: int, height: int) -> QrFit:
    """The largest whole px/module (then the widest quiet zone up to ``_MAX_BORDER``) fitting the area."""
    if not payload:
        return QrFit(0, 0, 0, None)
    version, modules = _qr_modules(payload)
    side, n = min(width, height), len(modules)
    ppm = side // (n + 2)
    if ppm < 1:
        return QrFit(0, version, 0, None)
    border = min(_MAX_BORDER, (side // ppm - n) // 2)
    image = Image.new("1", (n, n), "white")
    image.putdata([0 if dark else 255 for row in modules for dark in row])
    framed = Image.new("1", (n + 2 * border, n + 2 * border), "white")
    framed.paste(image, (border, border))
    return QrFit(ppm, version, border, framed.resize((framed.width * ppm,) * 2, Image.Resampling.NEAREST))


def _pay_layout(payload: str, width: int, height: int) -> tuple[QrFit, bool]:
    """Where the Pay screen's QR goes: beside the text or above it, whichever gives bigger modules."""
    small = font(_sizes(height)[0])
    beside = _fit_area(payload, width - int(small.getlength("0" * 10)) - _GAP, height)
    below = _fit_area(payload, width, height - 2 * _line_height(small))
    key_beside = (beside.px_per_module, beside.border, width > height)
    key_below = (below.px_per_module, below.border, width <= height)
    return (beside, True) if key_beside > key_below else (below, False)


def qr_fit(payload: str, width: int, height: int) -> QrFit:
    """The QR the Pay screen draws on a ``width`` x ``height`` panel (``check`` warns below 2 px/module)."""
    return _pay_layout(payload, width, height)[0]


# -------------------------------------------------------------------------------------------- text


@dataclass(frozen=True)
class _Row:
    """One line of text. With ``right`` it is justified (left part cut short if needed), else centred."""

    text: str
    right: str = ""
    big: bool = False
    wrap: bool = True  # break between words; otherwise shrink the font, then cut short
    prio: int = 50  # when the rows do not fit, the lowest priority goes first


@dataclass(frozen=True)
class _Line:
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont
    text: str
    right: str = ""


def _sizes(height: int) -> tuple[int, int]:
    """Small and big font sizes for a panel this tall."""
    return (9, 13) if height < 96 else (10, 16)


def _line_height(f: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    ascent, descent = f.getmetrics()
    return ascent + descent


def _cut(text: str, f: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: float) -> str:
    """``text`` shortened with an ellipsis to fit ``width`` pixels."""
    if f.getlength(text) <= width:
        return text
    while text and f.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…" if text else ""


def _wrap(text: str, f: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and f.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(_cut(word, f, width))
    return lines or [""]


def _lines(row: _Row, width: int, sizes: tuple[int, int]) -> list[_Line]:
    small, big = sizes
    size = big if row.big else small
    joined = f"{row.text} {row.right}" if row.right else row.text
    if row.wrap and not row.right:
        return [_Line(font(size), t) for t in _wrap(row.text, font(size), width)]
    while size > small and font(size).getlength(joined) > width:
        size -= 1
    f = font(size)
    if row.right:
        left = _cut(row.text, f, width - f.getlength(row.right) - f.getlength(" "))
        return [_Line(f, left, row.right)]
    return [_Line(f, _cut(row.text, f, width))]


def _fit(rows: list[_Row], width: int, height: int, sizes: tuple[int, int]) -> list[tuple[int, list[_Line]]]:
    """The rows as lines of these font sizes, without the lowest-priority rows that do not fit."""
    blocks = [(row.prio, _lines(row, width, sizes)) for row in rows]
    while blocks and sum(_line_height(line.font) for _, block in blocks for line in block) > height:
        blocks.remove(min(blocks, key=lambda block: block[0]))
    return blocks


def _column(image: Image.Image, box: tuple[int, int, int, int], rows: list[_Row], top: bool = False) -> None:
    """Draw ``rows`` inside ``box`` (x0, y0, x1, y1); big text turns small if that saves important rows."""
    x0, y0, x1, y1 = box[0] + 1, box[1], box[2] - 1, box[3]
    if x1 - x0 < 8 or y1 - y0 < 8:
        return
    small, big = _sizes(image.height)
    large = _fit(rows, x1 - x0, y1 - y0, (small, big))
    compact = _fit(rows, x1 - x0, y1 - y0, (small, small))
    important = [sum(1 for prio, _ in blocks if prio >= _IMPORTANT) for blocks in (large, compact)]
    lines = [line for _, block in (large if important[0] >= important[1] else compact) for line in block]
    draw = ImageDraw.Draw(image)
    used = sum(_line_height(line.font) for line in lines)
    y = y0 if top else y0 + (y1 - y0 - used) // 2
    for line in lines:
        if line.right:  # whole pixels: glyphs look the same wherever they are drawn
            draw.text((x0, y), line.text, font=line.font, fill="white")
            right = x1 - round(line.font.getlength(line.right))
            draw.text((right, y), line.right, font=line.font, fill="white")
        else:
            x = x0 + (x1 - x0 - round(line.font.getlength(line.text))) // 2
            draw.text((x, y), line.text, font=line.font, fill="white")
        y += _line_height(line.font)


# ----------------------------------------------------------------------------------------- screens


def _clock(seconds: int | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(max(0, seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def _entry(screen: Screen, site: Site) -> str:
    """The amount being keyed and the pending "N x" multiplier."""
    multiplier = f"{screen.quantity} x" if screen.quantity else ""
    return " ".join(p for p in (multiplier, site.format(screen.entry) if screen.entry else "") if p)


def _entering_rows(screen: Screen, site: Site, t: dict[str, str]) -> list[_Row]:
    if not screen.items:
        entry = _entry(screen, site) or site.format(0)
        return [_Row(t["amount"], prio=40), _Row(entry, big=True, wrap=False, prio=95)]
    rows = [
        _Row(f"{item.quantity}x {item.title}", site.format(item.amount), prio=i)
        for i, item in enumerate(screen.items, start=1)
    ]
    rows.append(_Row(t["total"], site.format(screen.total), big=True, wrap=False, prio=90))
    if entry := _entry(screen, site):
        rows.append(_Row(entry, big=True, wrap=False, prio=95))
    return rows


def _message_rows(screen: Screen, site: Site, t: dict[str, str]) -> list[_Row]:
    """Rows for every screen but Entering and Pay: a title, maybe a hint, the total, the time left."""
    kind = screen.kind
    title = {ScreenKind.READY: t["ready"], ScreenKind.CUSTOMER_PAYING: t["customer_paying"],
             ScreenKind.PAID: t["paid"], ScreenKind.REJECTED: t["rejected"], ScreenKind.REVIEW: t["review"],
             ScreenKind.CANCELLED: t["cancelled"], ScreenKind.EXPIRED: t["expired"],
             ScreenKind.OFFLINE: t["offline"], ScreenKind.PRINTER_PROBLEM: t["printer_problem"]}[kind]
    hints = {ScreenKind.READY: t["ready_hint"], ScreenKind.REJECTED: t["try_again"],
             ScreenKind.REVIEW: t["review_hint"], ScreenKind.OFFLINE: t["offline_hint"],
             ScreenKind.PRINTER_PROBLEM: t["printer_hint"]}
    hint = hints.get(kind, "")
    rows = [_Row(title, big=True, prio=90)]
    if hint:
        rows.append(_Row(hint, prio=70))
    if screen.total and kind not in (ScreenKind.READY, ScreenKind.OFFLINE, ScreenKind.PRINTER_PROBLEM):
        rows.append(_Row(site.format(screen.total), big=True, wrap=False, prio=80))
    if kind in (ScreenKind.CUSTOMER_PAYING, ScreenKind.REJECTED) and screen.seconds_left is not None:
        rows.append(_Row(_clock(screen.seconds_left), prio=60))
    return rows


def _draw_pay(image: Image.Image, screen: Screen, site: Site, payload: str) -> None:
    t = phrases(site)
    width, height = image.size
    fit, beside = _pay_layout(payload, width, height)
    total, clock = site.format(screen.total), _clock(screen.seconds_left)
    hint = [_Row(t["use_sticker"], prio=85)] if fit.px_per_module < 2 else []
    notice = [_Row(notice_text(screen.notice, t), prio=30)] if screen.notice else []
    if fit.image is None:
        rows = [_Row(t["pay"], big=True, prio=40), _Row(total, big=True, wrap=False, prio=90)]
        rows += [_Row(clock, prio=80)] if clock else []
        _column(image, (0, 0, width, height), rows + hint + notice)
        return
    side = fit.image.width
    if beside:
        image.paste(fit.image.convert(image.mode), (0, (height - side) // 2))
        rows = [_Row(t["pay"], prio=20), _Row(total, big=True, wrap=False, prio=90)]
        rows += [_Row(clock, prio=80)] if clock else []
        _column(image, (side + _GAP, 0, width, height), rows + hint + notice)
    else:
        image.paste(fit.image.convert(image.mode), ((width - side) // 2, 0))
        rows = [_Row(t["pay"], prio=20), _Row(total, clock, big=True, wrap=False, prio=90)]
        _column(image, (0, side, width, height), rows + hint + notice)


def render(screen: Screen, site: Site, size: tuple[int, int], mode: str, qr_payload: str) -> Image.Image:
    """Draw ``screen`` for a panel of ``size`` in the luma device's ``mode`` ("1", "L", "RGB", ...)."""
    image = Image.new(mode, size, "black")
    t = phrases(site)
    if screen.kind is ScreenKind.PAY:
        _draw_pay(image, screen, site, qr_payload)
        return image
    if screen.kind is ScreenKind.ENTERING:
        rows = _entering_rows(screen, site, t)
    else:
        rows = _message_rows(screen, site, t)
    if screen.notice:
        rows.append(_Row(notice_text(screen.notice, t), prio=99))
    _column(image, (0, 0, *size), rows, top=screen.kind is ScreenKind.ENTERING and bool(screen.items))
    return image
