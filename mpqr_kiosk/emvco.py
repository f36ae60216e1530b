"""EMVCo merchant-presented QR payloads as Mercado Pago prints them on a point of sale.

A payload is a run of TLV fields: a 2-digit tag, a 2-digit length and the value. Tag ``63`` closes it
with a CRC-16/CCITT-FALSE over everything before the CRC value, ``"6304"`` included.
"""

from __future__ import annotations

import unicodedata

from mpqr_kiosk.core.sites import Site

MP_GUI = "com.mercadolibre"
MP_POS_URL = "https://mpago.la/pos/"


def crc16(data: str) -> str:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection) as 4 uppercase hex digits."""
    crc = 0xFFFF
    for byte in data.encode("utf-8"):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return f"{crc:04X}"


def parse(payload: str) -> dict[str, str]:
    """The top-level fields of a payload, tag to value; ``ValueError`` names the first bad field."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(payload):
        head = payload[pos : pos + 4]
        if len(head) < 4 or not head.isdigit():
            raise ValueError(f"bad TLV header {head!r} at offset {pos}: want 2-digit tag + 2-digit length")
        tag, length = head[:2], int(head[2:])
        end = pos + 4 + length
        if end > len(payload):
            raise ValueError(
                f"tag {tag} at offset {pos} declares length {length}; {len(payload) - pos - 4} chars left"
            )
        if tag in fields:
            raise ValueError(f"tag {tag} appears twice")
        fields[tag] = payload[pos + 4 : end]
        pos = end
    return fields


def verify(payload: str) -> None:
    """Check that the payload is well formed and ends with a correct CRC (tag 63); ``ValueError`` if not."""
    if len(payload) < 8 or payload[-8:-4] != "6304":
        raise ValueError("CRC field (tag 63, length 04) missing at the end of the payload")
    declared, computed = payload[-4:].upper(), crc16(payload[:-4])
    if declared != computed:
        raise ValueError(f"CRC mismatch: payload says {declared}, computed {computed}")
    parse(payload)


def ascii_fold(text: str, limit: int) -> str:
    """Printable ASCII only (accents dropped: ``São`` → ``Sao``), trimmed to ``limit`` characters."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    printable = "".join(ch for ch in folded if " " <= ch <= "~")
    return " ".join(printable.split())[:limit].strip()


def tlv(tag: str, value: str) -> str:
    """One field: tag, 2-digit length, value."""
    if len(value) > 99:
        raise ValueError(f"tag {tag}: value longer than 99 chars")
    return f"{tag}{len(value):02d}{value}"


def build_static(pos_id: int, site: Site, merchant_name: str, city: str, mcc: str = "0000") -> str:
    """The static payload Mercado Pago prints on a point of sale (point of initiation ``11``)."""
    name, town = ascii_fold(merchant_name, 25), ascii_fold(city, 15)
    if not name or not town:
        raise ValueError("merchant name and city must have at least one printable character")
    if len(mcc) != 4 or not mcc.isdigit():
        raise ValueError(f"MCC must be 4 digits, not {mcc!r}")
    account = tlv("00", MP_GUI) + tlv("01", f"{MP_POS_URL}{pos_id}")
    body = (
        tlv("00", "01")
        + tlv("01", "11")
        + tlv("43", account)
        + tlv("52", mcc)
        + tlv("53", site.currency_numeric)
        + tlv("58", site.country)
        + tlv("59", name)
        + tlv("60", town)
        + "6304"
    )
    return body + crc16(body)
