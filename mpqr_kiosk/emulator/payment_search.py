"""``GET /v1/payments/search``: the seller's payments, filtered, sorted and paged.

Documented [C: sdk-nodejs ``src/clients/payment/search/types.ts``; the reference page
``/developers/en/reference/payments/_payments_search/get``]: filters ``external_reference``, ``range``
(``date_created``, ``date_approved``, ``date_last_updated``, ``money_release_date``) with ``begin_date`` and
``end_date``, ``sort`` and ``criteria`` (``asc``/``desc``), ``limit`` and ``offset``; the answer is
``{"paging": {"total", "limit", "offset"}, "results": [...]}``; error 1001 "Date format must be
yyyy-MM-dd'T'HH:mm:ss.SSSZ", 1003 "Invalid sort value", 1004 "Invalid criteria value", 1000 "Number of rows
exceeded the limits". Inferred: ``NOW-nDAYS`` dates, a default limit of 30 and a cap of 1000.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from mpqr_kiosk.emulator import errors

DATES = ("date_created", "date_approved", "date_last_updated", "money_release_date")
LIMIT, MAX_LIMIT = 30, 1000


def _when(text: str, now: float) -> float:
    relative = re.fullmatch(r"NOW(?:-(\d+)(DAYS|HOURS|MINUTES))?", text)
    if relative:
        amount, unit = int(relative[1] or 0), (relative[2] or "DAYS").lower()
        return now - timedelta(**{unit: amount}).total_seconds()
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise errors.legacy(400, "bad_request", "Date format must be yyyy-MM-dd'T'HH:mm:ss.SSSZ",
                            code=1001) from None


def _number(query: Mapping[str, str], key: str, default: int, cap: int) -> int:
    text = query.get(key, str(default))
    if not text.isdigit() or int(text) > cap:
        raise errors.legacy(400, "bad_request", "Number of rows exceeded the limits", code=1000)
    return int(text)


def search(payments: list[dict[str, Any]], query: Mapping[str, str], now: float) -> dict[str, Any]:
    sort, criteria = query.get("sort", "date_created"), query.get("criteria", "desc")
    if sort not in DATES:
        raise errors.legacy(400, "bad_request", "Invalid sort value", code=1003)
    if criteria not in ("asc", "desc"):
        raise errors.legacy(400, "bad_request", "Invalid criteria value", code=1004)
    found = [p for p in payments
             if "external_reference" not in query or p.get("external_reference") == query["external_reference"]]
    if "range" in query:
        if query["range"] not in DATES:
            raise errors.legacy(400, "bad_request", "Params Error", code=1)
        begin = _when(query.get("begin_date", "NOW-3650DAYS"), now)
        end = _when(query.get("end_date", "NOW"), now)
        found = [p for p in found if p.get(query["range"]) and begin <= _when(p[query["range"]], now) <= end]
    found.sort(key=lambda p: _when(p[sort], now) if p.get(sort) else 0.0, reverse=criteria == "desc")
    limit, offset = _number(query, "limit", LIMIT, MAX_LIMIT), _number(query, "offset", 0, 10**6)
    return {"paging": {"total": len(found), "limit": limit, "offset": offset},
            "results": found[offset:offset + limit]}
