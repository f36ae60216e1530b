"""Find or create the store and the POS on the account, and read the POS's static QR payload."""

from __future__ import annotations

import io
import logging
import os
import re
import sys
from pathlib import Path

import requests
import zxingcpp
from PIL import Image

from mpqr_kiosk import config as cfg
from mpqr_kiosk import emvco, exits
from mpqr_kiosk.mercadopago.errors import ApiError, BadResponse
from mpqr_kiosk.mercadopago.http import HttpClient
from mpqr_kiosk.token import load_token

log = logging.getLogger(__name__)


def find_pos(client: HttpClient, external_pos_id: str) -> dict | None:
    """The POS with this ``external_id``, or ``None``."""
    found = client.request("GET", "/pos", params={"external_id": external_pos_id}) or {}
    results = found.get("results") or []
    return results[0] if results else None


def static_payload(pos: dict, timeout: float = 10.0) -> str:
    """Download the POS's QR image and decode it to its EMVCo payload, CRC checked.

    The image lives on another host than the API: it is fetched without the access token."""
    url = (pos.get("qr") or {}).get("image", "")
    if not url:
        raise BadResponse("GET /pos", message=f"POS {pos.get('external_id')} has no qr.image")
    try:
        response = requests.get(url, timeout=timeout)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise ApiError("GET qr.image", message=f"cannot download the POS QR image: {type(exc).__name__}") from None
    codes = zxingcpp.read_barcodes(Image.open(io.BytesIO(response.content)).convert("L"))
    if not codes:
        raise BadResponse("GET qr.image", message="no QR code found in the POS image")
    payload = codes[0].text
    emvco.verify(payload)
    return payload


LOCATION_KEYS = ("street_name", "street_number", "city", "state", "latitude", "longitude")
STORE_ERRORS = {  # Mercado Pago's store validation errors [C: devsite-docs stores.json], in plain words
    "INVALID_LOCATION": "the store needs a location: fill in [shop] " + ", ".join(LOCATION_KEYS),
    "INVALID_STREET_NAME": "[shop] street_name must be the street's name",
    "INVALID_STREET_NUMBER": "[shop] street_number must be the building's number (as text, e.g. \"1234\")",
    "INVALID_CITY_NAME": "[shop] city must be the city's name",
    "INVALID_STATE_NAME": "[shop] state must be the state or province's name",
    "BAD_REQUEST": "[shop] latitude and longitude are outside the account's country: check them on a map "
                   "(south and west are negative)",
    "VALIDATION_ERROR": "Mercado Pago does not recognise [shop] city in [shop] state: check both names' spelling "
                        "as the country writes them",
    "INVALID_EXTERNAL_ID": "[mercadopago] external_store_id must be letters and digits only",
    "INVALID_NAME": "[shop] name must not be empty",
}


class ProvisionError(Exception):
    """What stops provisioning, in words a technician can act on."""


def ensure_store(client: HttpClient, user_id: int, external_id: str, shop: cfg.ShopConfig) -> dict:
    """Find the store by ``external_id`` or create it, at the ``[shop]`` location."""
    found = client.request("GET", f"/users/{user_id}/stores/search", params={"external_id": external_id}) or {}
    if isinstance(found, dict) and isinstance(found.get("results"), list) and found["results"]:
        return found["results"][0]
    missing = [key for key in LOCATION_KEYS if not getattr(shop, key)]
    if missing:
        raise ProvisionError(f"to create store {external_id}, Mercado Pago needs its location: fill in [shop] "
                             f"{', '.join(missing)} in the config")
    body = {"name": shop.name[:60], "external_id": external_id,
            "location": {"street_name": shop.street_name, "street_number": shop.street_number,
                         "city_name": shop.city, "state_name": shop.state, "latitude": shop.latitude,
                         "longitude": shop.longitude, "reference": shop.address}}
    try:
        return client.request("POST", f"/users/{user_id}/stores", json=body) or {}
    except ApiError as exc:
        if exc.code in STORE_ERRORS:
            raise ProvisionError(f"Mercado Pago refused the store: {STORE_ERRORS[exc.code]} ({exc.code})") from None
        raise


def ensure_pos(client: HttpClient, store: dict, external_store_id: str, external_pos_id: str, name: str) -> dict:
    """Find the POS by ``external_id`` or create it with ``fixed_amount: true`` (the attended model)."""
    pos = find_pos(client, external_pos_id)
    if pos:
        return pos
    body = {"name": name[:44], "fixed_amount": True, "store_id": store.get("id"),
            "external_store_id": external_store_id, "external_id": external_pos_id}
    try:
        return client.request("POST", "/pos", json=body) or {}
    except ApiError as exc:
        if exc.status == 409:  # created meanwhile (or by an earlier run that lost its answer)
            return find_pos(client, external_pos_id) or {}
        raise


def write_payload(config_path: str, payload: str) -> None:
    """Set ``qr_payload`` in the config file, keeping every comment; atomic and durable."""
    path = Path(config_path)
    text = path.read_text(encoding="utf-8")
    line = f'qr_payload = "{payload}"'
    pattern = re.compile(r"^qr_payload\s*=.*$", re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _: line, text, count=1)
    else:
        text = re.sub(r"^\[mercadopago\]\s*$", lambda m: f"{m.group(0)}\n{line}", text, count=1, flags=re.MULTILINE)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    info = path.stat()
    os.chmod(temporary, info.st_mode & 0o7777)
    os.chown(temporary, info.st_uid, info.st_gid)  # run as root, it must stay readable by the daemon's group
    os.replace(temporary, path)


def run(config_path: str) -> int:
    """``mpqr-kiosk provision``: re-runnable; prints what it found or made."""
    config = cfg.load(config_path)
    mp = config.mercadopago
    client = HttpClient(mp.api_base, load_token(mp, config.path))
    try:
        store = ensure_store(client, mp.user_id, mp.external_store_id, config.shop)
        sys.stdout.write(f"store {mp.external_store_id}: id {store.get('id')}\n")
        pos = ensure_pos(client, store, mp.external_store_id, mp.external_pos_id,
                         f"{config.shop.name} {mp.external_pos_id}")
        sys.stdout.write(f"pos   {mp.external_pos_id}: id {pos.get('id')}, fixed_amount {pos.get('fixed_amount')}\n")
        payload = static_payload(pos)
    except (ApiError, ValueError, ProvisionError) as exc:
        sys.stderr.write(f"mpqr-kiosk provision: {exc}\n")
        return exits.CHECK
    if payload == mp.qr_payload:
        sys.stdout.write(f"qr    unchanged in {config.path} ({len(payload)} chars, CRC ok)\n")
    else:
        write_payload(config.path, payload)
        sys.stdout.write(f"qr    written to {config.path} ({len(payload)} chars, CRC ok); "
                         "reload the daemon: systemctl restart mpqr-kiosk\n")
    return exits.OK
