"""An answer is checked before it is believed: anything a backend reads from Mercado Pago goes through here.

A body that is empty, of the wrong shape, about another sale or another order, with a status we do not know
or an amount that cannot be money is indeterminate (``BadResponse``): the core reads again, and it is never
taken as "not paid", "cancelled" or an order id.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from mpqr_kiosk.core.sites import Site
from mpqr_kiosk.mercadopago.errors import BadResponse

ORDER_ID = re.compile(r"[0-9A-Z]{10,48}")  # "ORD" + 26 for QR [C: E-ref], "ORDTST01…" [I: MATE]; path-safe
PAYMENT_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")  # digits (Payments API), PAY01... (Orders API): path-safe


def require(ok: bool, what: str, problem: str) -> None:
    if not ok:
        raise BadResponse(what, message=problem)


def mapping(value: Any, what: str, name: str) -> dict[str, Any]:
    require(isinstance(value, dict), what, f"{name} is not a JSON object")
    return value


def listing(value: Any, what: str, name: str) -> list[Any]:
    """A JSON array; ``null`` reads as empty (Mercado Pago writes either for "none")."""
    value = [] if value is None else value
    require(isinstance(value, list), what, f"{name} is not a list")
    return value


def amount(value: Any, site: Site, what: str, name: str, bound: int | None = None) -> int:
    """A payment amount in minor units: a JSON number or numeric string, finite, not negative, within
    ``bound`` (by default the site's for one sale) and with no more decimals than the currency has."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadResponse(what, message=f"{name} is not an amount")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadResponse(what, message=f"{name} is not a finite amount")
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,15}(\.[0-9]{1,6})?", value):
        raise BadResponse(what, message=f"{name} is not a plain decimal amount")
    try:
        minor = site.from_api(Decimal(str(value)))
    except (ValueError, InvalidOperation):
        raise BadResponse(what, message=f"{name} has more decimals than {site.currency}") from None
    require(0 <= minor <= (site.max_amount if bound is None else bound), what,
            f"{name} is out of range{' for one sale' if bound is None else ''}")
    return minor


def shown(value: Any, limit: int = 40) -> str:
    """A value from an answer as an error message may quote it: its repr, cut to ``limit`` characters."""
    if isinstance(value, dict | list):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def text(value: Any, limit: int = 60) -> str:
    """A name from an answer for a terminal or a log: printable characters only, at most ``limit`` of them;
    ``"?"`` when it is not a string or a number."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return "?"
    cleaned = "".join(c if c.isprintable() else "?" for c in str(value)[:limit])
    return cleaned or "?"


def identifier(value: Any, pattern: re.Pattern[str], what: str, name: str) -> str:
    """An id we may put in a request path or on a receipt: a string (or integer) of safe characters."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    require(isinstance(value, str) and pattern.fullmatch(value) is not None, what, f"{name} is not a usable id")
    return value
