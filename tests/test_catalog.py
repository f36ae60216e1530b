from pathlib import Path

import pytest

from mpqr_kiosk.catalog import Catalog, CatalogError, load_catalog
from mpqr_kiosk.core.model import Item
from mpqr_kiosk.core.sites import site

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "catalog.csv"
MLB, MLA, MLC = site("MLB"), site("MLA"), site("MLC")


def write(tmp_path, text, encoding="utf-8"):
    path = tmp_path / "catalog.csv"
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def ean13_ok(code):
    digits = [int(c) for c in code]
    return len(code) == 13 and sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0


def test_the_example_catalog_loads_with_accents_and_valid_ean13_codes():
    catalog = load_catalog(EXAMPLE, MLB)
    assert isinstance(catalog, Catalog) and len(catalog) == 6
    assert all(ean13_ok(code) for code in catalog)
    assert catalog.lookup("7891000100103") == Item("Pão de queijo", 450, 1, "PDQ-001", "7891000100103")
    assert catalog.lookup("7891000100202").unit_price == 790  # written "7,90"
    assert catalog.lookup("7791234000159").title == "Café con leche"
    assert catalog.lookup("0000000000000") is None
    assert catalog.path == str(EXAMPLE)


def test_no_header_semicolons_a_byte_order_mark_and_blank_lines_are_fine(tmp_path):
    path = write(tmp_path, "\ufeff7790895000997;Alfajor;1.234,50;\n\n 12345 ; Chicle ;0,5;CH\n")
    catalog = load_catalog(path, MLA)
    assert catalog["7790895000997"] == Item("Alfajor", 123450, 1, "", "7790895000997")
    assert catalog.lookup("12345") == Item("Chicle", 50, 1, "CH", "12345")


def test_prices_follow_the_site(tmp_path):
    path = write(tmp_path, "code,title,unit price,sku\n1,Empanada,1.500,E1\n")
    assert load_catalog(path, MLC).lookup("1").unit_price == 1500  # CLP has no decimals: "." groups
    with pytest.raises(CatalogError, match="line 2: .*ambiguous"):
        load_catalog(path, MLA)  # 1.500: one and a half, or fifteen hundred? refused, not guessed
    path = write(tmp_path, "1,Empanada,1.50,E1\n")
    assert load_catalog(path, MLA).lookup("1").unit_price == 150
    path = write(tmp_path, "1,Empanada,1.2555,E1\n")
    with pytest.raises(CatalogError, match="line 1: bad unit price '1.2555'.*more than 2 decimals"):
        load_catalog(path, MLA)  # not a whole number of centavos


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("code,title,unit price,sku\n1,A,1.00,\n2,B,2.00\n", 3, "missing column 'sku'"),
        ("1,A\n", 1, "missing column 'unit price'"),
        ("1,A,1.00,s,extra\n", 1, "5 columns, expected 4"),
        ("code,title,unit price,sku\n1,A,1.00,\n2,B,dos,\n", 3, "bad unit price 'dos'"),
        ("code,title,unit price,sku\n1,A,,\n", 2, "bad unit price ''"),
        ("1,A,1.00,\n2,B,-3.50,\n", 2, "negative unit price '-3.50'"),
        ("1,A,1.00,\n\n2,B,2.00,\n1,C,3.00,\n", 4, "duplicate code '1' (first on line 1)"),
        ("code,title,unit price,sku\n1, ,1.00,\n", 2, "empty title"),
        (",A,1.00,\n", 1, "empty code"),
        ("1,A,1.00,\n" + "9" * 65 + ",B,1.00,\n", 2, "code longer than 64 characters"),
        ("code,name,price,sku\n1,A,1.00,\n", 1, "header must be exactly: code,title,unit price,sku"),
        ('1,"A,1.00,\n', 1, "bad CSV"),
    ],
)
def test_each_error_names_the_file_the_line_and_the_problem(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(CatalogError) as info:
        load_catalog(path, MLB)
    assert str(info.value).startswith(f"{path}, line {line}: ")
    assert message in str(info.value)


def test_a_file_that_is_not_utf8_names_the_line(tmp_path):
    path = write(tmp_path, "1,Pao,1.00,\n2,P\xe3o,2.00,\n", encoding="latin-1")
    with pytest.raises(CatalogError, match=r"line 2: not UTF-8"):
        load_catalog(path, MLB)


def test_a_missing_file_names_it(tmp_path):
    with pytest.raises(CatalogError, match=r"nope\.csv: cannot read"):
        load_catalog(tmp_path / "nope.csv", MLB)


def test_reloading_reads_the_file_again(tmp_path):
    path = write(tmp_path, "1,Café,5.00,\n")
    assert load_catalog(path, MLB).lookup("1").unit_price == 500
    write(tmp_path, "1,Café,5.50,\n2,Pão,1.00,\n")
    reloaded = load_catalog(path, MLB)
    assert reloaded.lookup("1").unit_price == 550 and len(reloaded) == 2


@pytest.mark.parametrize(("title", "problem"), [
    ("Pão\x1bp\x00\x19\xfa", "has control characters"),  # ESC p: the cash-drawer kick
    ("Pão\x1dV\x00", "has control characters"),  # GS V: a cut
    ("Pão\ninjected", "has control characters"),
    ("Pão\tde queijo", "has control characters"),
    ("P" * 10_000, "is longer than 80 characters"),
])
def test_a_title_that_is_not_plain_text_is_refused_with_its_line(tmp_path, title, problem):
    path = tmp_path / "catalog.csv"
    path.write_text(f'code,title,unit price,sku\n1,Café,3.00,C\n2,"{title}",4.50,P\n', encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load_catalog(path, site("MLB"))
    assert str(caught.value).startswith(f"{path}, line 3: the title of code '2' {problem}")
