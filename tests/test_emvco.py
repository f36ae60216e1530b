"""EMVCo payloads: CRC, TLV parsing, verification and Mercado Pago static POS payloads."""

import pytest

from mpqr_kiosk import emvco
from mpqr_kiosk.core.sites import SITES, site

# Public samples (research/mp_api.md §7), copied literally.
MLA_STATIC = (
    "00020101021143520016com.mercadolibre0128https://mpago.la/pos/1043915501300091234567895204970053030325802AR"
    "5909FULL NAME6010CITY LEGAL63040AAB"
)
MLB_DYNAMIC = (
    "00020101021243650016COM.MERCADOLIBRE0201306364a9e4780-d0a6-42e8-98d7-f6805209d83a5204000053039865802BR"
    "5909Test Test6009SAO PAULO62070503***63041A36"
)
# The docs' anonymised sample: name shortened without fixing its length (25 declared, 19 given) or the CRC.
DOCS_IZABEL = (
    "00020101021243650016COM.MERCADOLIBRE02013063638f1192a-5fd1-4180-a180-8bcae3556bc35204000053039865802BR"
    "5925IZABEL AAAA DE MELO6007BARUERI62070503***63040B6D"
)


def test_crc16_is_ccitt_false():
    assert emvco.crc16("123456789") == "29B1"  # the catalogue check value of CRC-16/CCITT-FALSE
    assert emvco.crc16("") == "FFFF"


def test_mla_static_sample_verifies_and_parses():
    emvco.verify(MLA_STATIC)
    fields = emvco.parse(MLA_STATIC)
    assert fields["01"] == "11"  # static
    assert fields["53"] == "032" and fields["58"] == "AR" and fields["63"] == "0AAB"
    assert "54" not in fields  # no amount: it comes from the order attached to the POS
    assert emvco.parse(fields["43"]) == {
        "00": "com.mercadolibre",
        "01": "https://mpago.la/pos/1043915",
    }


def test_mlb_dynamic_sample_verifies_and_parses():
    emvco.verify(MLB_DYNAMIC)
    fields = emvco.parse(MLB_DYNAMIC)
    assert fields["01"] == "12"  # dynamic
    account = emvco.parse(fields["43"])
    assert account["00"] == "COM.MERCADOLIBRE" and account["06"] == "4a9e4780-d0a6-42e8-98d7-f6805209d83a"
    assert emvco.parse(fields["62"]) == {"05": "***"}


def test_docs_sample_is_invalid():
    with pytest.raises(ValueError, match="CRC"):
        emvco.verify(DOCS_IZABEL)
    with pytest.raises(ValueError, match="length|TLV"):
        emvco.parse(DOCS_IZABEL)


@pytest.mark.parametrize(
    "payload, message",
    [
        (MLA_STATIC[:-8], "CRC"),  # no tag 63 at all
        (MLA_STATIC[:-4] + "0AAC", "CRC mismatch"),
        (MLA_STATIC.replace("FULL NAME", "FULL NAMF"), "CRC mismatch"),
        ("", "CRC"),
    ],
)
def test_verify_rejects_missing_or_wrong_crc(payload, message):
    with pytest.raises(ValueError, match=message):
        emvco.verify(payload)


def test_verify_rejects_a_correct_crc_over_broken_fields():
    body = "000201" + "5999TOO SHORT" + "6304"
    with pytest.raises(ValueError, match="length 99"):
        emvco.verify(body + emvco.crc16(body))


@pytest.mark.parametrize("payload", ["0002", "00020", "AB0201", "0002010102"])
def test_parse_rejects_bad_tlv(payload):
    with pytest.raises(ValueError):
        emvco.parse(payload)


def test_parse_rejects_a_repeated_tag():
    with pytest.raises(ValueError, match="twice"):
        emvco.parse("000201000201")


@pytest.mark.parametrize("site_id", sorted(SITES))
def test_build_static_round_trips_for_every_site(site_id):
    the_site = site(site_id)
    payload = emvco.build_static(1043915, the_site, "Padaria São João", "São Paulo")
    emvco.verify(payload)
    fields = emvco.parse(payload)
    assert fields["00"] == "01" and fields["01"] == "11"
    assert emvco.parse(fields["43"]) == {
        "00": "com.mercadolibre",
        "01": "https://mpago.la/pos/1043915",
    }
    assert fields["52"] == "0000"
    assert fields["53"] == the_site.currency_numeric and fields["58"] == the_site.country
    assert fields["59"] == "Padaria Sao Joao" and fields["60"] == "Sao Paulo"
    assert payload.isascii()
    assert 120 <= len(payload) <= 150


def test_build_static_trims_name_and_city_and_takes_the_mcc():
    payload = emvco.build_static(
        7, site("MLA"), "Almacén y Panadería de Doña Ñata", "Ciudad Autónoma de Buenos Aires", "5411"
    )
    fields = emvco.parse(payload)
    assert fields["59"] == "Almacen y Panaderia de Do"  # 25 chars, accents folded
    assert len(fields["59"]) <= 25 and len(fields["60"]) <= 15
    assert fields["60"] == "Ciudad Autonoma"
    assert fields["52"] == "5411"
    emvco.verify(payload)


@pytest.mark.parametrize(
    "name, city, mcc", [("", "X", "0000"), ("Shop", "日本", "0000"), ("Shop", "X", "54")]
)
def test_build_static_refuses_bad_input(name, city, mcc):
    with pytest.raises(ValueError):
        emvco.build_static(1, site("MLB"), name, city, mcc)
