"""screens.py: every screen renders; the Pay QR decodes at the largest whole px/module that fits."""

from __future__ import annotations

import pytest
import zxingcpp
from luma.core.device import dummy
from PIL import Image, ImageChops, ImageDraw

from mpqr_kiosk.core.model import Item, Notice, NoticeKind, Screen, ScreenKind
from mpqr_kiosk.core.sites import site
from mpqr_kiosk.screens import font, qr_fit, render

MP_PAYLOAD = (
    "00020101021143520016com.mercadolibre0128https://mpago.la/pos/1043915501300091234567895204970053030325802AR"
    "5909FULL NAME6010CITY LEGAL63040AAB"
)


def crc16_ccitt_false(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def tlv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def _long_payload() -> str:
    account = tlv("00", "com.mercadolibre") + tlv("01", "https://mpago.la/pos/98765432")
    body = (
        tlv("00", "01") + tlv("01", "11") + tlv("43", account) + tlv("52", "5812") + tlv("53", "986")
        + tlv("58", "BR") + tlv("59", "Padaria Sao Joao") + tlv("60", "Sao Paulo")
        + tlv("62", tlv("05", "POS001")) + "6304"
    )
    return body + f"{crc16_ccitt_false(body.encode()):04X}"


LONG_PAYLOAD = _long_payload()
PAYLOADS = [MP_PAYLOAD, LONG_PAYLOAD]
ITEMS = (Item("Pão de queijo", 450, 2), Item("Café com leite", 700), Item("Água sem gás", 350, 3))


def all_screens() -> list[Screen]:
    return [
        Screen(ScreenKind.READY, notice=Notice(NoticeKind.UNKNOWN_CODE, "789123")),
        Screen(ScreenKind.ENTERING, entry=1250),
        Screen(ScreenKind.ENTERING, items=ITEMS, total=2650, quantity=3),
        Screen(ScreenKind.PAY, items=ITEMS, total=123450, seconds_left=599),
        Screen(ScreenKind.CUSTOMER_PAYING, total=123450, seconds_left=42),
        Screen(ScreenKind.PAID, total=123450),
        Screen(ScreenKind.REJECTED, total=123450, seconds_left=200),
        Screen(ScreenKind.CANCELLED, total=123450),
        Screen(ScreenKind.EXPIRED, total=123450),
        Screen(ScreenKind.OFFLINE),
        Screen(ScreenKind.PRINTER_PROBLEM, notice=Notice(NoticeKind.BUSY)),
    ]


def contains_text(image: Image.Image, text: str, size: int) -> bool:
    """Whether ``text``, drawn as one line in the screens' font at ``size``, appears pixel for pixel in a
    mode-"1" image (a word inside a longer line may not: the font's advance is a fraction of a pixel)."""
    f = font(size)
    glyphs = Image.new("1", (round(f.getlength(text)) + 4, sum(f.getmetrics()) + 4), 0)
    ImageDraw.Draw(glyphs).text((2, 2), text, font=f, fill="white")
    template = glyphs.crop(glyphs.getbbox())
    w, h = template.size
    for y in range(image.height - h + 1):
        for x in range(image.width - w + 1):
            if ImageChops.difference(image.crop((x, y, x + w, y + h)), template).getbbox() is None:
                return True
    return False


def test_crc_helper_matches_the_ccitt_false_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert 130 <= len(LONG_PAYLOAD) <= 150 and len(MP_PAYLOAD) > 130


def glyph(text: str) -> bytes:
    image = Image.new("1", (40, 24), 0)
    ImageDraw.Draw(image).text((2, 2), text, font=font(14), fill="white")
    return image.tobytes()


def test_font_draws_accented_letters_not_boxes() -> None:
    missing = glyph("\u0378")  # an unassigned code point: the "missing glyph" box
    for accented, plain in zip("áãçéñÓ", "aacenO", strict=True):
        assert glyph(accented) not in (missing, glyph(plain))


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("mode", ["1", "RGB"])
def test_pay_screen_on_128x128_luma_dummy_decodes_to_the_payload(payload: str, mode: str) -> None:
    device = dummy(width=128, height=128, mode=mode)
    screen = Screen(ScreenKind.PAY, total=123450, seconds_left=305)
    device.display(render(screen, site("MLA"), device.size, device.mode, payload))
    assert [code.text for code in zxingcpp.read_barcodes(device.image)] == [payload]


def test_pay_screen_on_128x64_decodes_at_one_px_per_module() -> None:
    device = dummy(width=128, height=64, mode="1")
    screen = Screen(ScreenKind.PAY, total=100, seconds_left=5)
    device.display(render(screen, site("MLB"), device.size, device.mode, MP_PAYLOAD))
    assert [code.text for code in zxingcpp.read_barcodes(device.image)] == [MP_PAYLOAD]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_qr_fit_uses_the_largest_whole_px_per_module(payload: str) -> None:
    big, small = qr_fit(payload, 128, 128), qr_fit(payload, 128, 64)
    assert big.px_per_module == 2 and small.px_per_module == 1
    for fit, height in ((big, 128), (small, 64)):
        assert fit.image is not None and fit.image.width <= height and fit.border >= 1
        assert fit.image.getpixel((0, 0)) == 255  # quiet zone lit: dark modules on white, never inverted
    assert qr_fit(payload, 128, 32).px_per_module == 0  # too small a panel: nothing fits
    short = qr_fit("https://pay.example/i/ABC123", 128, 64)
    assert short.px_per_module == 2  # a short URL gets 2 px/module on 128x64 (border shrinks to 1)


def test_128x64_pay_screen_says_to_use_the_printed_sticker() -> None:
    screen = Screen(ScreenKind.PAY, total=1250, seconds_left=60)
    assert contains_text(render(screen, site("MLB"), (128, 64), "1", MP_PAYLOAD), "impresso", 9)
    assert contains_text(render(screen, site("MLA"), (128, 64), "1", MP_PAYLOAD), "impreso", 9)
    assert not contains_text(render(screen, site("MLB"), (128, 128), "1", MP_PAYLOAD), "impresso", 10)


def test_pay_screen_without_a_payload_still_shows_total_and_sticker_hint() -> None:
    image = render(Screen(ScreenKind.PAY, total=1250, seconds_left=60), site("MLB"), (128, 64), "1", "")
    assert not zxingcpp.read_barcodes(image)
    assert contains_text(image, "Use o QR impresso", 9)


def test_entering_shows_the_multiplier_and_the_keyed_amount() -> None:
    screen = Screen(ScreenKind.ENTERING, items=ITEMS, total=2650, quantity=3)
    multiplier = render(screen, site("MLB"), (128, 128), "1", "")
    assert contains_text(multiplier, "3 x", 16)
    keyed = render(Screen(ScreenKind.ENTERING, entry=1250), site("MLB"), (128, 64), "1", "")
    assert contains_text(keyed, "R$ 12,50", 13)
    assert contains_text(keyed, "Valor", 9)


@pytest.mark.parametrize("site_id", ["MLB", "MLA"])
@pytest.mark.parametrize("size", [(128, 64), (128, 128)])
@pytest.mark.parametrize("screen", all_screens(), ids=lambda s: s.kind.value)
def test_every_screen_renders_in_both_languages(site_id: str, size: tuple[int, int], screen: Screen) -> None:
    image = render(screen, site(site_id), size, "1", MP_PAYLOAD)
    assert image.size == size and image.mode == "1"
    assert image.getbbox() is not None  # something is lit


def test_titles_follow_the_language() -> None:
    paid_pt = render(Screen(ScreenKind.PAID, total=100), site("MLB"), (128, 64), "1", "")
    paid_es = render(Screen(ScreenKind.PAID, total=100), site("MLA"), (128, 64), "1", "")
    assert contains_text(paid_pt, "Pago!", 13)
    assert contains_text(paid_es, "¡Pagado!", 13)


@pytest.mark.parametrize("mode", ["1", "L", "RGB"])
def test_renders_in_the_device_mode(mode: str) -> None:
    image = render(Screen(ScreenKind.READY), site("MLC"), (256, 64), mode, MP_PAYLOAD)
    assert image.mode == mode and image.size == (256, 64)


@pytest.mark.parametrize(
    ("site_id", "notice", "expected"),
    [("MLB", Notice(NoticeKind.OFFLINE), "Sem conexão"), ("MLA", Notice(NoticeKind.REFUSED), "Pedido rechazado"),
     ("MLB", Notice(NoticeKind.UNKNOWN_CODE, "789123"), "Código desconhecido 789123"),
     ("MLA", Notice(NoticeKind.BUSY), "Venta en curso")],
)
def test_core_notices_are_said_in_the_site_language(site_id: str, notice: Notice, expected: str) -> None:
    from mpqr_kiosk.screens import notice_text, phrases

    assert notice_text(notice, phrases(site(site_id))) == expected


@pytest.mark.parametrize("language", ["pt", "es"])
def test_every_notice_has_a_phrase(language: str) -> None:
    from mpqr_kiosk.screens import PHRASES

    assert all(PHRASES[language].get(kind.value) for kind in NoticeKind)
