"""Sites: how money is written on the screen, sent to the API, read back from it and typed by people."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mpqr_kiosk.core.sites import SITES, site

# ---------------------------------------------------------------- the table itself


def test_every_product_site_is_known_with_its_currency_and_language():
    expected = {
        "MLA": ("AR", "ARS", "032", 2, "es"),
        "MLB": ("BR", "BRL", "986", 2, "pt"),
        "MLM": ("MX", "MXN", "484", 2, "es"),
        "MLC": ("CL", "CLP", "152", 0, "es"),
        "MCO": ("CO", "COP", "170", 0, "es"),  # whole pesos (mp_api.md §12.6)
        "MPE": ("PE", "PEN", "604", 2, "es"),
        "MLU": ("UY", "UYU", "858", 2, "es"),
    }
    got = {s.id: (s.country, s.currency, s.currency_numeric, s.decimals, s.language) for s in SITES.values()}
    assert got == expected


def test_site_lookup_is_case_insensitive():
    assert site("mlb") is SITES["MLB"]
    assert site("Mlc") is SITES["MLC"]


def test_unknown_site_names_the_valid_ones():
    with pytest.raises(KeyError) as info:
        site("MLX")
    message = str(info.value)
    assert "MLX" in message
    for known in SITES:
        assert known in message


# ---------------------------------------------------------------- Site.format (the display and the receipt)


@pytest.mark.parametrize(
    ("site_id", "minor", "text"),
    [
        ("MLB", 123450, "R$ 1.234,50"),
        ("MLA", 123450, "$ 1.234,50"),
        ("MCO", 123450, "$ 123.450"),
        ("MLU", 123450, "$ 1.234,50"),
        ("MPE", 123450, "S/ 1,234.50"),
        ("MLM", 123450, "$1,234.50"),
        ("MLC", 1234, "$ 1.234"),
    ],
)
def test_format_per_site(site_id, minor, text):
    assert site(site_id).format(minor) == text


@pytest.mark.parametrize(
    ("site_id", "minor", "text"),
    [
        ("MLA", 0, "$ 0,00"),
        ("MLA", 5, "$ 0,05"),
        ("MLA", 1250, "$ 12,50"),
        ("MLB", 100, "R$ 1,00"),
        ("MLB", 123456789, "R$ 1.234.567,89"),
        ("MPE", 123456789, "S/ 1,234,567.89"),
        ("MLM", 99, "$0.99"),
        ("MLC", 0, "$ 0"),
        ("MLC", 999, "$ 999"),
        ("MLC", 1234567, "$ 1.234.567"),
    ],
)
def test_format_small_zero_and_large_amounts(site_id, minor, text):
    assert site(site_id).format(minor) == text


@pytest.mark.parametrize(
    ("site_id", "minor", "text"),
    [("MLB", -123450, "-R$ 1.234,50"), ("MLM", -5, "-$0.05"), ("MLC", -1234, "-$ 1.234")],
)
def test_format_negative_amounts_put_the_sign_before_the_symbol(site_id, minor, text):
    assert site(site_id).format(minor) == text


# ---------------------------------------------------------------- to the API


@pytest.mark.parametrize(
    ("site_id", "minor", "decimal"),
    [("MLA", 1250, Decimal("12.50")), ("MLB", 1, Decimal("0.01")), ("MLC", 1234, Decimal("1234"))],
)
def test_to_decimal_is_exact(site_id, minor, decimal):
    value = site(site_id).to_decimal(minor)
    assert value == decimal
    assert isinstance(value, Decimal)


@pytest.mark.parametrize(
    ("site_id", "minor", "text"),
    [
        ("MLB", 1250, "12.50"),
        ("MLB", 1200, "12.00"),  # BR demands two decimals, even when they are zero
        ("MLB", 5, "0.05"),
        ("MLB", 123456789, "1234567.89"),  # no thousands separators at the API
        ("MLA", 100, "1.00"),
        ("MLM", 99, "0.99"),
        ("MPE", 123450, "1234.50"),
        ("MLC", 1234, "1234"),  # CLP: whole pesos
        ("MLC", 1, "1"),
    ],
)
def test_api_string(site_id, minor, text):
    assert site(site_id).api_string(minor) == text


def test_api_number_is_a_float_of_major_units_with_decimals():
    value = site("MLA").api_number(1250)
    assert value == 12.5
    assert isinstance(value, float)
    assert site("MLB").api_number(1999) == 19.99


def test_api_number_is_an_int_for_clp():
    value = site("MLC").api_number(1234)
    assert value == 1234
    assert type(value) is int


# ---------------------------------------------------------------- from the API


@pytest.mark.parametrize(
    ("site_id", "value", "minor"),
    [
        ("MLA", "12.50", 1250),
        ("MLA", "12.5", 1250),
        ("MLA", 12.5, 1250),
        ("MLA", 19.99, 1999),  # a float that is not exact in binary still reads back exactly
        ("MLA", 12, 1200),
        ("MLA", "0.01", 1),
        ("MLB", "1234567.89", 123456789),
        ("MLC", 1234, 1234),
        ("MLC", "1234", 1234),
        ("MLC", "1234.0", 1234),
        ("MLC", 1234.0, 1234),
    ],
)
def test_from_api(site_id, value, minor):
    got = site(site_id).from_api(value)
    assert got == minor
    assert type(got) is int


@pytest.mark.parametrize(
    ("site_id", "value"),
    [("MLA", "12.505"), ("MLA", 0.001), ("MLB", "0.001"), ("MLC", "1234.5"), ("MLC", 0.5)],
)
def test_from_api_refuses_fractions_of_a_minor_unit(site_id, value):
    with pytest.raises(ValueError, match="decimals"):
        site(site_id).from_api(value)


@pytest.mark.parametrize("site_id", sorted(SITES))
@pytest.mark.parametrize("minor", [0, 1, 99, 1250, 123456789])
def test_api_round_trips(site_id, minor):
    s = site(site_id)
    assert s.from_api(s.api_string(minor)) == minor
    assert s.from_api(s.api_number(minor)) == minor


# ---------------------------------------------------------------- typed by a person or a script


@pytest.mark.parametrize(
    ("site_id", "text", "minor"),
    [
        ("MLA", "12.50", 1250),
        ("MLA", "12,50", 1250),
        ("MLA", "1.234,50", 123450),
        ("MLA", "1,234.50", 123450),
        ("MLA", "12", 1200),
        ("MLA", "12,5", 1250),
        ("MLA", " 12,50 ", 1250),
        ("MLA", "1 234,50", 123450),
        ("MLA", "1.234.567,89", 123456789),
        ("MLB", "1.234,50", 123450),
        ("MLB", "0,01", 1),
        ("MPE", "1,234.50", 123450),
        ("MPE", "12.50", 1250),
        ("MLM", "12,50", 1250),  # the last mark is the decimal one, whatever the site
        ("MLC", "1234", 1234),
        ("MLC", "1.234", 1234),
        ("MLC", "1,234", 1234),
        ("MLC", "1.234.567", 1234567),
    ],
)
def test_parse(site_id, text, minor):
    got = site(site_id).parse(text)
    assert got == minor
    assert type(got) is int


@pytest.mark.parametrize(
    ("site_id", "text"),
    [
        ("MLA", ""),
        ("MLA", "abc"),
        ("MLA", "12,5,0x"),
        ("MLA", "NaN"),
        ("MLA", "Infinity"),
        ("MLA", "1e3"),
        ("MLA", ".5"),
        ("MLA", "12.50."),
        ("MLA", "1.234.567"),  # dots only: the last one reads as a decimal mark, three decimals: refused
        ("MLA", "12.505"),  # a fraction of a centavo
        ("MLA", "1,234"),  # read as 1.234: three decimals, refused rather than guessed
        ("MLB", "R$ 12,50"),
    ],
)
def test_parse_refuses_what_is_not_an_amount(site_id, text):
    with pytest.raises(ValueError):
        site(site_id).parse(text)


@pytest.mark.parametrize("text", ["12.5", "12,50", "1.5", "1234,5", "1.234,50", "12.34"])
def test_parse_clp_refuses_decimal_looking_or_misgrouped_amounts(text):
    # CLP has no decimals: "12,50" must never become 1250 pesos, nor "12.5" 125
    with pytest.raises(ValueError):
        site("MLC").parse(text)


@pytest.mark.parametrize("text", ["1.500", "1,500", "12.345"])
def test_parse_refuses_a_single_mark_before_three_digits_as_ambiguous(text):
    with pytest.raises(ValueError, match="ambiguous"):
        site("MLA").parse(text)


@pytest.mark.parametrize("text", ["1.2.3,50", "1,5.00", "12.34.56"])
def test_parse_refuses_misgrouped_thousands_for_two_decimal_sites(text):
    with pytest.raises(ValueError):
        site("MLA").parse(text)
