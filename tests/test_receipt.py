"""receipt.py: contents per site and language, code pages, column widths, the PNG picture."""

from __future__ import annotations

import codecs
from datetime import datetime

import pytest
import zxingcpp
from escpos.printer import Dummy

import mpqr_kiosk.devices.printer  # noqa: F401  (imports python-escpos the quiet way first)
from mpqr_kiosk.core.model import Item, Sale, Shop
from mpqr_kiosk.core.sites import site
from mpqr_kiosk.receipt import Line, build_receipt, print_receipt, render_png, rows

PRINTED_AT = datetime(2026, 11, 27, 10, 52, 3)
SHOP = Shop(
    name="Padaria São João",
    address="Rua da Ação, 123",
    tax_id="12.345.678/0001-90",
    receipt_header=("Señor Café",),
    receipt_footer=("Obrigado!", "Volte sempre"),
)


def sale(site_id: str, total: int, items: tuple[Item, ...] = ()) -> Sale:
    items = items or (Item("Pão de queijo", total),)
    return Sale(
        reference="mpqr-20261127-0042-7f3a",
        idempotency_key="k",
        site=site_id,
        items=items,
        total=total,
        created_at=0.0,
        payment_id="98765432101",
        paid_amount=total,
    )


def escpos_text(data: bytes, profile: Dummy) -> list[str]:
    """The text rows in ESC/POS bytes, decoded with the code page each ESC t selected."""
    pages = {int(slot): name for slot, name in profile.profile.codePages.items()}
    lines, current, page, i = [], "", "cp437", 0
    skip = {b"\x1b@": 2, b"\x1b!": 3, b"\x1bE": 3, b"\x1ba": 3, b"\x1bd": 3, b"\x1dV": 3}
    while i < len(data):
        two = data[i : i + 2]
        if two == b"\x1bt":
            page = pages[data[i + 2]].lower().replace("_", "-")
            i += 3
        elif two == b"\x1d(":
            i += 5 + data[i + 3] + 256 * data[i + 4]
        elif two in skip:
            i += skip[two]
        elif data[i] == 0x0A:
            lines.append(current)
            current, i = "", i + 1
        else:
            current += codecs.decode(data[i : i + 1], page)
            i += 1
    return lines


def printed(receipt, profile: str = "TM-T20II") -> tuple[bytes, list[str]]:
    printer = Dummy(profile=profile)
    print_receipt(printer, receipt)
    return printer.output, escpos_text(printer.output, printer)


@pytest.mark.parametrize(
    ("site_id", "total", "money"),
    [("MLB", 123450, "R$ 1.234,50"), ("MLC", 1234, "$ 1.234"), ("MPE", 123450, "S/ 1,234.50")],
)
def test_receipt_bytes_carry_total_payment_and_reference(site_id: str, total: int, money: str) -> None:
    data, text = printed(build_receipt(sale(site_id, total), SHOP, site(site_id), PRINTED_AT, copy=False))
    total_row = next(row for row in text if row.startswith("TOTAL"))
    assert total_row.endswith(money) and money.encode() in data
    assert any(row.endswith("98765432101") for row in text)
    assert any("mpqr-20261127-0042-7f3a" in row for row in text)
    assert "27/11/2026" in " ".join(text) and "10:52:03" in " ".join(text)
    assert not any("COPIA" in row or "CÓPIA" in row for row in text)
    assert data.startswith(b"\x1b@") and data.endswith(b"\x1dV\x00")  # initialised, then cut


def test_clp_total_has_no_decimals() -> None:
    _, text = printed(build_receipt(sale("MLC", 1234), SHOP, site("MLC"), PRINTED_AT, copy=False))
    assert [row for row in text if row.startswith("TOTAL")] == ["TOTAL" + "$ 1.234".rjust(24 - 5)]


@pytest.mark.parametrize(("site_id", "marker"), [("MLB", "*** CÓPIA ***"), ("MLA", "*** COPIA ***")])
def test_copy_is_marked_prominently(site_id: str, marker: str) -> None:
    receipt = build_receipt(sale(site_id, 1000), SHOP, site(site_id), PRINTED_AT, copy=True)
    marks = [line for line in receipt.lines if line.text == marker]
    assert marks and all(line.double and line.bold for line in marks)
    _, text = printed(receipt)
    assert text.count(marker) == len(marks) >= 1


@pytest.mark.parametrize("profile", ["TM-T20II", "POS-5890", "default"])
def test_accented_text_goes_out_in_a_code_page(profile: str) -> None:
    items = (Item("Pão de queijo", 900, 2), Item("Ação", 100))
    receipt = build_receipt(sale("MLB", 1900, items), SHOP, site("MLB"), PRINTED_AT, copy=True)
    data, text = printed(receipt, profile)
    assert b"\x1bt" in data  # ESC t: a code page was selected
    assert b"?" not in data
    joined = "\n".join(text)
    for word in ("Pão de queijo", "Ação", "Señor Café", "São João", "CÓPIA", "Referência"):
        assert word in joined


def test_labels_follow_the_language() -> None:
    pt = [line.text for line in build_receipt(sale("MLB", 100), SHOP, site("MLB"), PRINTED_AT, False).lines]
    es = [line.text for line in build_receipt(sale("MLA", 100), SHOP, site("MLA"), PRINTED_AT, False).lines]
    assert "Referência" in pt and "Referencia" in es
    assert "CNPJ 12.345.678/0001-90" in pt and "CUIT 12.345.678/0001-90" in es


@pytest.mark.parametrize(("profile", "columns"), [("POS-5890", 32), ("TM-T20II", 48)])
def test_rows_wrap_to_the_profile_columns(profile: str, columns: int) -> None:
    items = (Item("Pão de queijo recheado com catupiry e muito, muito mais", 123456, 3),)
    receipt = build_receipt(sale("MLB", 370368, items), SHOP, site("MLB"), PRINTED_AT, copy=False)
    _, text = printed(receipt, profile)
    assert max(len(row) for row in text) == columns
    assert "-" * columns in text
    assert any(row.endswith("R$ 3.703,68") for row in text)


def test_long_right_part_moves_to_its_own_row() -> None:
    assert rows(Line("TOTAL", "R$ 1.234.567,89", double=True), 32) == ["TOTAL", " R$ 1.234.567,89"]
    assert rows(Line("Referência", "x" * 40), 32) == ["Referência", "x" * 32, " " * 24 + "x" * 8]
    assert rows(Line("1 x Café", "R$ 7,00"), 20) == ["1 x Café     R$ 7,00"]


def test_native_qr_of_the_reference_only_where_the_printer_draws_it() -> None:
    receipt = build_receipt(sale("MLA", 1000), SHOP, site("MLA"), PRINTED_AT, copy=False)
    with_qr, _ = printed(receipt, "TM-T20II")
    without, _ = printed(receipt, "POS-5890")  # its profile says no QR support
    assert b"\x1d(k" in with_qr and b"mpqr-20261127-0042-7f3a" in with_qr.split(b"\x1d(k", 1)[1]
    assert b"\x1d(k" not in without


@pytest.mark.parametrize("width", [384, 576])
def test_png_shows_the_receipt_with_its_reference_qr(width: int) -> None:
    receipt = build_receipt(sale("MLB", 123450), SHOP, site("MLB"), PRINTED_AT, copy=True)
    image = render_png(receipt, width)
    assert image.width == width and image.height > 24 * len(receipt.lines)
    assert [code.text for code in zxingcpp.read_barcodes(image)] == ["mpqr-20261127-0042-7f3a"]
