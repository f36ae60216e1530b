"""Find or create the store and the POS on the account, and read the POS's static QR payload.

Every answer is checked before it is used (``answers``): an answer of the wrong shape, a QR image that is not
one, or one too big to decode is a ``BadResponse``. ``provision`` exits 75 on it, as on no answer or a 5xx: the
outcome is unknown and running it again is safe; 4 when Mercado Pago refused what was asked, or the QR's
payload fails its CRC.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import zxingcpp
from PIL import Image

from mpqr_kiosk import config as cfg
from mpqr_kiosk import emvco, exits
from mpqr_kiosk.mercadopago import answers
from mpqr_kiosk.mercadopago.errors import ApiError, BadResponse, Unauthorized
from mpqr_kiosk.mercadopago.http import HttpClient, download
from mpqr_kiosk.token import load_token

log = logging.getLogger(__name__)


MAX_IMAGE = 2 << 20  # bytes of the POS's QR image: Mercado Pago's is a few kilobytes
MAX_PIXELS = 4096 * 4096  # a QR image larger than this is not one (and would take the Pi's memory to decode)


def find_pos(client: HttpClient, external_pos_id: str) -> dict[str, Any] | None:
    """The POS with this ``external_id``, or ``None``; ``BadResponse`` when the answer is not a POS search's."""
    what = "GET /pos"
    found = answers.mapping(client.request("GET", "/pos", params={"external_id": external_pos_id}), what,
                            "the POS search answer")
    results = [answers.mapping(r, what, "a POS") for r in answers.listing(found.get("results"), what, "results")]
    ours = [r for r in results if r.get("external_id") == external_pos_id]
    answers.require(bool(ours) or not results, what, f"it lists other POS only, not {external_pos_id}")
    return _pos(ours[0], what) if ours else None


def _pos(value: Any, what: str) -> dict[str, Any]:
    """A POS as the API shows it, with the fields provisioning and ``check`` read."""
    pos = answers.mapping(value, what, "the POS")
    answers.identifier(pos.get("id"), answers.PAYMENT_ID, what, "the POS id")
    answers.require(isinstance(pos.get("fixed_amount", False), bool), what, "fixed_amount is not true or false")
    return pos


def static_payload(pos: dict[str, Any], timeout: float = 10.0) -> str:
    """Download the POS's QR image and decode it to its EMVCo payload, CRC checked.

    The image lives on another host than the API: it is fetched without the access token, at most
    ``MAX_IMAGE`` bytes and ``MAX_PIXELS`` pixels of it."""
    what = "GET /pos"
    qr = answers.mapping(pos.get("qr"), what, "qr")
    url = qr.get("image")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise BadResponse(what, message=f"POS {answers.text(pos.get('external_id'))} has no qr.image URL")
    return _read_qr(download(url, "GET qr.image", MAX_IMAGE, timeout))


def _read_qr(content: bytes) -> str:
    what = "GET qr.image"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(content), formats=("PNG", "JPEG", "GIF"))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise BadResponse(what, message=f"the image is {width}x{height} pixels, far more than a QR needs")
            codes = zxingcpp.read_barcodes(image.convert("L"))
    except BadResponse:
        raise
    except Exception as exc:  # noqa: BLE001 - an image decoder fails in many ways on a garbled file
        bomb = isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning)
        kind = "a decompression bomb" if bomb else "not a whole PNG, JPEG or GIF image"
        raise BadResponse(what, message=f"the QR image is {kind} ({type(exc).__name__})") from None
    if not codes:
        raise BadResponse(what, message="no QR code found in the POS image")
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
    what = f"GET /users/{user_id}/stores/search"
    found = answers.mapping(client.request("GET", f"/users/{user_id}/stores/search",
                                           params={"external_id": external_id}), what, "the store search answer")
    results = [answers.mapping(r, what, "a store") for r in answers.listing(found.get("results"), what, "results")]
    ours = [r for r in results if r.get("external_id") == external_id]
    answers.require(bool(ours) or not results, what, f"it lists other stores only, not {external_id}")
    if ours:
        return _store(ours[0], what)
    missing = [key for key in LOCATION_KEYS if not getattr(shop, key)]
    if missing:
        raise ProvisionError(f"to create store {external_id}, Mercado Pago needs its location: fill in [shop] "
                             f"{', '.join(missing)} in the config")
    body = {"name": shop.name[:60], "external_id": external_id,
            "location": {"street_name": shop.street_name, "street_number": shop.street_number,
                         "city_name": shop.city, "state_name": shop.state, "latitude": shop.latitude,
                         "longitude": shop.longitude, "reference": shop.address}}
    try:
        return _store(client.request("POST", f"/users/{user_id}/stores", json=body), f"POST /users/{user_id}/stores")
    except ApiError as exc:
        if exc.code in STORE_ERRORS:
            raise ProvisionError(f"Mercado Pago refused the store: {STORE_ERRORS[exc.code]} ({exc.code})") from None
        raise


def _store(value: Any, what: str) -> dict[str, Any]:
    store = answers.mapping(value, what, "the store")
    answers.identifier(store.get("id"), answers.PAYMENT_ID, what, "the store id")
    return store


def ensure_pos(client: HttpClient, store: dict[str, Any], external_store_id: str, external_pos_id: str,
               name: str) -> dict[str, Any]:
    """Find the POS by ``external_id`` or create it with ``fixed_amount: true`` (the attended model)."""
    pos = find_pos(client, external_pos_id)
    if pos:
        return pos
    body = {"name": name[:44], "fixed_amount": True, "store_id": store.get("id"),
            "external_store_id": external_store_id, "external_id": external_pos_id}
    try:
        return _pos(client.request("POST", "/pos", json=body), "POST /pos")
    except ApiError as exc:
        if exc.status != 409:
            raise
    pos = find_pos(client, external_pos_id)  # 409: created meanwhile, or by an earlier run that lost its answer
    if pos is None:
        raise BadResponse("POST /pos", 409, message=f"POS {external_pos_id} exists, but the search does not show it")
    return pos


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
        sys.stdout.write(f"store {mp.external_store_id}: id {answers.text(store.get('id'))}\n")
        pos = ensure_pos(client, store, mp.external_store_id, mp.external_pos_id,
                         f"{config.shop.name} {mp.external_pos_id}")
        sys.stdout.write(f"pos   {mp.external_pos_id}: id {answers.text(pos.get('id'))}, "
                         f"fixed_amount {pos.get('fixed_amount')}\n")
        payload = static_payload(pos)
    except BadResponse as exc:
        sys.stderr.write(f"mpqr-kiosk provision: {exc.plain()}; try again later\n")
        return exits.TEMPFAIL
    except Unauthorized as exc:  # a person must put a valid token in place
        sys.stderr.write(f"mpqr-kiosk provision: Mercado Pago refused the token: {exc}\n")
        return exits.CONFIG
    except ApiError as exc:
        if exc.indeterminate:  # no answer, 5xx, 429: time may fix it
            sys.stderr.write(f"mpqr-kiosk provision: {exc}; try again later\n")
            return exits.TEMPFAIL
        sys.stderr.write(f"mpqr-kiosk provision: {exc}\n")
        return exits.CHECK
    except ProvisionError as exc:  # the config lacks what Mercado Pago needs: the technician fixes it
        sys.stderr.write(f"mpqr-kiosk provision: {exc}\n")
        return exits.CONFIG
    except ValueError as exc:  # the QR's payload failed its CRC
        sys.stderr.write(f"mpqr-kiosk provision: {exc}\n")
        return exits.CHECK
    if payload == mp.qr_payload:
        sys.stdout.write(f"qr    unchanged in {config.path} ({len(payload)} chars, CRC ok)\n")
    else:
        write_payload(config.path, payload)
        sys.stdout.write(f"qr    written to {config.path} ({len(payload)} chars, CRC ok); "
                         "reload the daemon: systemctl restart mpqr-kiosk\n")
    return exits.OK
