"""Request-body rules of the emulated endpoints (mp_api.md §2.2, §3.2; mp_orders_api.md §3, §6).

Each check raises the endpoint's own error shape; the state module only sees bodies that passed.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from mpqr_kiosk.core.sites import Site
from mpqr_kiosk.emulator import errors

log = logging.getLogger(__name__)

REFERENCE = re.compile(r"[A-Za-z0-9_-]{1,64}")
DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")
POS_FIELDS = {"name", "fixed_amount", "category", "store_id", "external_store_id", "external_id", "url"}
V1_FIELDS = set(
    "type total_amount description external_reference expiration_time config transactions items"
    " processing_mode integration_data marketplace marketplace_fee".split()
)
MIN_TTL, MAX_TTL = 30, 3600 * 3600


def is_number(value: Any) -> bool:
    """A JSON number (``true``/``false`` are not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def alphanumeric(value: Any) -> bool:
    """Letters and digits only, as POS and store ``external_id`` must be."""
    return isinstance(value, str) and value.isascii() and value.isalnum()


STORE_FIELDS = {"name", "business_hours", "location", "external_id"}
LOCATION_TEXT = ("street_name", "street_number", "city_name", "state_name")


def store(body: Any, box: tuple[float, float, float, float]) -> None:
    """``POST /users/{id}/stores`` [C: devsite-docs stores.json, mp_api.md §12.4]: a name, an alphanumeric
    ``external_id``, and a ``location`` with street, number, city, state and coordinates inside the site's
    country (``box``: south, north, west, east). Error keys as documented; the body shape is the legacy one
    with a ``causes`` entry [C: community error sample quoting ``validation_error``]."""
    if not isinstance(body, dict):
        raise errors.legacy(400, "MISSING_BODY", "body must be a JSON object")
    unknown = sorted(set(body) - STORE_FIELDS)
    if unknown:
        raise errors.legacy(400, "UNKNOWN_FIELD", f"unknown field(s): {', '.join(unknown)}")
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        raise errors.legacy(400, "INVALID_NAME", "The `name` field must be string.")
    if "external_id" in body and not alphanumeric(body["external_id"]):
        raise errors.legacy(400, "INVALID_EXTERNAL_ID", "external_id must be alphanumeric")
    where = body.get("location")
    if not isinstance(where, dict):
        raise errors.legacy(400, "INVALID_LOCATION", "The `location` field must be json_object.")
    for key in LOCATION_TEXT:
        if not isinstance(where.get(key), str) or not where[key].strip():
            raise errors.legacy(400, f"INVALID_{key.upper()}", f"The `{key}` field must be string.")
    if "reference" in where and not isinstance(where["reference"], str):
        raise errors.legacy(400, "INVALID_REFERENCE", "The `reference` field must be a string.")
    lat, lon = where.get("latitude"), where.get("longitude")
    if not (is_number(lat) and is_number(lon)):
        raise errors.legacy(400, "VALIDATION_ERROR", "location.latitude and location.longitude must be numbers")
    south, north, west, east = box
    if not (south <= lat <= north and west <= lon <= east):
        raise errors.legacy(400, "BAD_REQUEST", "The store coordinates are outside the site. Ensure that the "
                            "entered coordinates are within the specified location.")


def pos(body: Any) -> None:
    """``POST /pos`` field rules; the store reference is checked against state by the caller."""
    if not isinstance(body, dict) or not body:
        raise errors.legacy(400, "MISSING_BODY", "body must be a JSON object")
    unknown = sorted(set(body) - POS_FIELDS)
    if unknown:
        raise errors.legacy(400, "UNKNOWN_FIELD_EXCEPTION", f"unknown field(s): {', '.join(unknown)}")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise errors.legacy(400, "INVALID_NAME", "name must be a non-empty string")
    if len(name) >= 45:
        raise errors.legacy(400, "NAME_TOO_LONG", "name must be shorter than 45 characters")
    ext = body.get("external_id")
    if not alphanumeric(ext):
        raise errors.legacy(400, "INVALID_EXTERNAL_ID", "external_id must contain only letters and digits")
    if len(ext) >= 40:
        raise errors.legacy(400, "EXTERNAL_ID_TOO_LONG", "external_id must be shorter than 40 characters")
    if not isinstance(body.get("fixed_amount", False), bool):
        raise errors.legacy(400, "INVALID_FIXED_AMOUNT", "fixed_amount must be a boolean")
    if "category" in body and not (
        isinstance(body["category"], int) and not isinstance(body["category"], bool)
    ):
        raise errors.legacy(400, "INVALID_CATEGORY", "category must be a number")
    if "store_id" in body and not str(body["store_id"]).isdigit():
        raise errors.legacy(400, "INVALID_STORE_ID", "store_id must be numeric")
    if "url" in body and body.get("fixed_amount") is not True:
        raise errors.legacy(400, "FIXED_AMOUNT_FALSE", "url requires fixed_amount true")


def amount(value: Any, site: Site, error: str, name: str) -> int:
    """A positive JSON-number amount in minor units; the legacy ``error`` key otherwise."""
    if not is_number(value) or not math.isfinite(value) or value <= 0:
        raise errors.legacy(400, error, f"{name} must be a positive number")
    try:
        return site.from_api(value)
    except ValueError as exc:
        raise errors.legacy(400, error, str(exc)) from None


def expiration(value: Any, now: float) -> float:
    """``expiration_date``: ISO-8601 with an offset, in the future; the epoch seconds it names."""
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise errors.legacy(
            400,
            "invalid_expiration_date",
            "expiration_date must be ISO-8601 with an offset, e.g. 2023-08-22T16:34:56.559-04:00",
        )
    if when.timestamp() <= now:
        raise errors.legacy(400, "invalid_expiration_date", "expiration_date must be in the future")
    return when.timestamp()


def _item(item: Any, site: Site) -> int:
    if not isinstance(item, dict):
        raise errors.legacy(400, "invalid_items", "each item must be an object")
    for key in ("sku_number", "category", "title", "description", "unit_measure", "currency_id"):
        if key in item and not isinstance(item[key], str):
            raise errors.legacy(400, f"invalid_items.{key}", f"items.{key} must be a string")
    for key in ("unit_price", "quantity", "total_amount"):
        if key in item and not is_number(item[key]):
            raise errors.legacy(400, f"invalid_items.{key}", f"items.{key} must be a number")
    if item.get("unit_measure") not in ("unit", "pack"):
        raise errors.legacy(400, "invalid_unit_measure", "items.unit_measure must be unit or pack")
    if "quantity" not in item or item["quantity"] <= 0:
        raise errors.legacy(400, "invalid_quantity", "items.quantity must be present and positive")
    if "unit_price" not in item:
        raise errors.legacy(400, "invalid_unit_price", "items.unit_price must be present")
    amount(item["unit_price"], site, "invalid_unit_price", "items.unit_price")
    if "total_amount" in item:
        return amount(item["total_amount"], site, "invalid_items.total_amount", "items.total_amount")
    return round(site.from_api(item["unit_price"]) * item["quantity"])


def instore_order(body: Any, site: Site, now: float) -> tuple[int, float | None]:
    """A legacy ``PUT …/orders`` body: its total in minor units and its expiry (epoch seconds) if any."""
    if not isinstance(body, dict):
        raise errors.legacy(400, "bad_request", "body must be a JSON object")
    ref = body.get("external_reference")
    if not isinstance(ref, str) or not REFERENCE.fullmatch(ref):
        raise errors.legacy(
            400, "invalid_external_reference", "external_reference is required: 1-64 of A-Z a-z 0-9 _ -"
        )
    total = amount(body.get("total_amount"), site, "invalid_total_amount", "total_amount")
    if not isinstance(body.get("title"), str):
        raise errors.legacy(400, "invalid_title", "title must be a string")
    if not isinstance(body.get("description"), str):
        raise errors.legacy(400, "invalid_description", "description must be present")
    url = body.get("notification_url")
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise errors.legacy(400, "invalid_notification_url", "notification_url must be an http(s) URL")
    expires = expiration(body["expiration_date"], now) if "expiration_date" in body else None
    sponsor = body.get("sponsor")
    if sponsor is not None and not (isinstance(sponsor, dict) and isinstance(sponsor.get("id"), int)):
        raise errors.legacy(400, "invalid_sponsor.id", "sponsor.id must be a number")
    cash_out = body.get("cash_out")
    if cash_out is not None and not (isinstance(cash_out, dict) and is_number(cash_out.get("amount"))):
        raise errors.legacy(400, "invalid_cash_out.amount", "cash_out.amount must be a number")
    items = body.get("items")
    if items is not None and not isinstance(items, list):
        raise errors.legacy(400, "invalid_items", "items must be an array")
    if not items and cash_out is None:
        raise errors.legacy(
            400, "error_creating_seller_qr_order", "The cash out is required when order has no items"
        )
    items_total = sum(_item(item, site) for item in items or [])
    if items and items_total != total:
        log.warning("order %s: items add up to %s, total_amount is %s", ref, items_total, total)
    return total, expires


def duration(text: Any) -> int:
    """Seconds in an ISO-8601 duration such as ``PT15M``; ``property_value`` outside 30 s..3600 h."""
    match = DURATION.fullmatch(text) if isinstance(text, str) and text != "P" else None
    if match is None:
        raise errors.orders(400, "property_value", "expiration_time must be an ISO-8601 duration like PT15M")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if not MIN_TTL <= total <= MAX_TTL:
        raise errors.orders(400, "property_value", "expiration_time must be between PT30S and PT3600H")
    return total


def v1_amount(value: Any, site: Site, name: str) -> int:
    """An Orders-API string amount in minor units, by the site's rule (BR 2 decimals, CL none)."""
    if not isinstance(value, str):
        raise errors.orders(400, "property_type", f"{name} must be a string")
    if site.country == "BR":
        pattern, rule = r"\d+\.\d{2}", "two decimals"
    elif site.decimals == 0:
        pattern, rule = r"\d+", "a whole number"
    else:
        pattern, rule = r"\d+(\.\d{2})?", "two decimals or none"
    if not re.fullmatch(pattern, value):
        raise errors.orders(400, "property_value", f"{name} must be {rule} for {site.id}, not {value!r}")
    minor = site.from_api(Decimal(value))  # the pattern admits no more decimals than the site has
    if minor <= 0:
        raise errors.orders(400, "property_value", f"{name} must be positive")
    return minor


def v1_order(body: Any, site: Site) -> tuple[int, int, str]:
    """A ``POST /v1/orders`` body: its total in minor units, time to live in seconds and POS external id."""
    if not isinstance(body, dict):
        raise errors.orders(400, "bad_request", "body must be a JSON object")
    unknown = sorted(set(body) - V1_FIELDS)
    if unknown:
        raise errors.orders(400, "unsupported_properties", f"unsupported properties: {', '.join(unknown)}")
    if body.get("type") != "qr":
        raise errors.orders(400, "property_value", "type must be qr")
    total = v1_amount(body.get("total_amount"), site, "total_amount")
    ref = body.get("external_reference")
    if not isinstance(ref, str) or not REFERENCE.fullmatch(ref):
        raise errors.orders(400, "property_value", "external_reference is required: 1-64 of A-Z a-z 0-9 _ -")
    description = body.get("description", "")
    if not isinstance(description, str) or len(description) > 150:
        raise errors.orders(400, "property_value", "description must be a string of at most 150 chars")
    ttl = duration(body.get("expiration_time", "PT15M"))
    config, transactions = body.get("config"), body.get("transactions")
    qr = config.get("qr") if isinstance(config, dict) else None
    if not isinstance(qr, dict) or not isinstance(qr.get("external_pos_id"), str):
        raise errors.orders(400, "property_value", "config.qr.external_pos_id is required")
    if qr.get("mode", "static") != "static":
        raise errors.orders(
            400, "unsupported_properties", "the emulator implements config.qr.mode static only"
        )
    payments = transactions.get("payments") if isinstance(transactions, dict) else None
    if not isinstance(payments, list) or len(payments) != 1 or not isinstance(payments[0], dict):
        raise errors.orders(400, "property_value", "transactions.payments must hold exactly one payment")
    if v1_amount(payments[0].get("amount"), site, "transactions.payments.amount") != total:
        raise errors.orders(400, "property_value", "total_amount must equal the sum of the transactions")
    _v1_items(body.get("items", []), site)
    return total, ttl, qr["external_pos_id"]


def _v1_items(items: Any, site: Site) -> None:
    if not isinstance(items, list) or len(items) > 10:
        raise errors.orders(400, "property_value", "items must be an array of at most 10 items")
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("title"), str) or len(item["title"]) > 150:
            raise errors.orders(400, "property_value", "items.title must be a string of at most 150 chars")
        v1_amount(item.get("unit_price"), site, "items.unit_price")
        quantity = item.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
            raise errors.orders(400, "property_type", "items.quantity must be a positive integer")
