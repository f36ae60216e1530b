"""HTTP routing of the emulated Mercado Pago API: auth, idempotency keys, injected faults, the request log.

Transport-free: the server turns bytes into a ``Request`` and writes back the ``Response``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mpqr_kiosk.emulator import control, errors
from mpqr_kiosk.emulator.errors import ApiError
from mpqr_kiosk.emulator.faults import Fault
from mpqr_kiosk.emulator.messages import Request, Response, error_response, json_response
from mpqr_kiosk.emulator.state import Emulator

log = logging.getLogger(__name__)

MALFORMED = b'{"elements": [{"id": 4018801790, "status": "clo'
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
HUGE_NUMBER = b"9" * 5000  # more digits than Python's int() takes from text (4300)
AMOUNT_KEYS = frozenset({"transaction_amount", "total_amount", "paid_amount", "amount"})
FAULT_ANSWERS = {
    "http500": (500, "internal_server_error", "Internal server error (injected)"),
    "http503": (503, "service_unavailable", "Service unavailable (injected)"),
    "http429": (429, "too_many_requests", "Too many requests (injected)"),
    "http409": (409, "conflict", "Conflict (injected)"),
    "http400": (400, "bad_request", "Refused (injected)"),
}


Handler = Callable[[Emulator, Request, int, dict[str, Any]], Response]


@dataclass(frozen=True)
class Route:
    """A method + path pattern, its handler and its fault class (``push``, ``read``, ``cancel``)."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    op: str | None = None
    auth: bool = True


def _owner(path_user: str, user: int, error: str) -> None:
    """The collector in the path must be a number and the token's own user."""
    if not path_user.isdigit():
        raise errors.legacy(400, error, "user_id must be a number")
    if int(path_user) != user:
        raise errors.legacy(400, "invalid_access_token", "Access denied")


def _require_key(req: Request) -> None:
    if not req.headers.get("x-idempotency-key", "").strip():
        raise errors.orders(400, "empty_required_header", "The X-Idempotency-Key header is required.")


def _put_order(emu: Emulator, req: Request, user: int, p: dict[str, Any]) -> Response:
    _owner(p["user"], user, "invalid_collectorId")
    emu.instore.put_order(user, p["pos"], req.json(), p["store"])
    return Response(204)


def _get_order(emu: Emulator, req: Request, user: int, p: dict[str, Any]) -> Response:
    _owner(p["user"], user, "invalid_collectorId")
    return json_response(200, emu.instore.get_order(user, p["pos"], p["store"]))


def _delete_order(emu: Emulator, req: Request, user: int, p: dict[str, Any]) -> Response:
    _owner(p["user"], user, "invalid_collectorId")
    emu.instore.delete_order(user, p["pos"], p["store"])
    return Response(204)


def _stores(emu: Emulator, req: Request, user: int, p: dict[str, Any]) -> Response:
    _owner(p["user"], user, "INVALID_USER_ID")
    if req.method == "POST":
        return json_response(201, emu.points.create_store(user, req.json()))
    return json_response(200, emu.points.search_stores(user, req.query))


def _create_v1(emu: Emulator, req: Request, user: int, p: dict[str, Any]) -> Response:
    _require_key(req)
    return json_response(201, emu.orders.create(user, req.json()))


def _refund_v1(emu: Emulator, req: Request, user: int, p: dict[str, Any]) -> Response:
    _require_key(req)
    return json_response(201, emu.orders.refund(user, p["id"], req.json()))


def _png(emu: Emulator, req: Request, user: int, p: dict[str, Any]) -> Response:
    return Response(200, emu.points.qr_png(p["pos"], p["uuid"]), "image/png")


def _route(method: str, path: str, handler: Handler, op: str | None = None, auth: bool = True) -> Route:
    return Route(method, re.compile(path), handler, op, auth)


INSTORE = (
    r"/instore/qr/seller/collectors/(?P<user>[^/]+)(?:/stores/(?P<store>[^/]+))?/pos/(?P<pos>[^/]+)/orders"
)
ROUTES = [
    _route("GET", r"/users/me", lambda e, r, u, p: json_response(200, e.me(u)), "probe"),
    _route("POST", r"/users/(?P<user>[^/]+)/stores", _stores),
    _route("GET", r"/users/(?P<user>[^/]+)/stores/search", _stores),
    _route("POST", r"/pos", lambda e, r, u, p: json_response(200, e.points.create_pos(u, r.json()))),
    _route("GET", r"/pos", lambda e, r, u, p: json_response(200, e.points.search_pos(u, r.query))),
    _route("GET", r"/pos/(?P<id>[^/]+)", lambda e, r, u, p: json_response(200, e.points.get_pos(u, p["id"]))),
    _route("GET", r"/instore/merchant/qr/(?P<pos>[^/]+)/(?P<uuid>[^/]+)\.png", _png, auth=False),
    _route("PUT", INSTORE, _put_order, "push"),
    _route("GET", INSTORE, _get_order, "read"),
    _route("DELETE", INSTORE, _delete_order, "cancel"),
    _route(
        "GET",
        r"/merchant_orders/search",
        lambda e, r, u, p: json_response(200, e.instore.search_merchant_orders(u, r.query)),
        "read",
    ),
    _route(
        "GET",
        r"/merchant_orders/(?P<id>[^/]+)",
        lambda e, r, u, p: json_response(200, e.instore.merchant_order(u, p["id"])),
        "read",
    ),
    _route(
        "POST",
        r"/v1/payments/(?P<id>[^/]+)/refunds",
        lambda e, r, u, p: json_response(201, e.instore.refund_payment(u, p["id"], r.json())),
        "refund",
    ),
    _route("GET", r"/v1/payments/search", lambda e, r, u, p: json_response(200, e.search_payments(u, r.query)), "read"),
    _route(
        "GET",
        r"/v1/payments/(?P<id>[^/]+)",
        lambda e, r, u, p: json_response(200, e.instore.payment(u, p["id"])),
        "read",
    ),
    _route("POST", r"/v1/orders", _create_v1, "push"),
    _route("GET", r"/v1/orders", lambda e, r, u, p: json_response(200, e.orders.search(u, r.query)), "read"),
    _route(
        "GET",
        r"/v1/orders/(?P<id>[^/]+)",
        lambda e, r, u, p: json_response(200, e.orders.get(u, p["id"])),
        "read",
    ),
    _route(
        "POST",
        r"/v1/orders/(?P<id>[^/]+)/cancel",
        lambda e, r, u, p: json_response(200, e.orders.cancel(u, p["id"])),
        "cancel",
    ),
    _route("POST", r"/v1/orders/(?P<id>[^/]+)/refund", _refund_v1, "refund"),
]


def _match(req: Request) -> tuple[Route, dict[str, Any]]:
    error = errors.orders if req.orders_api else errors.legacy
    matched = [(route, m) for route in ROUTES if (m := route.pattern.fullmatch(req.path))]
    for route, m in matched:
        if route.method == req.method:
            return route, m.groupdict()
    if matched:
        raise error(405, "method_not_allowed", f"{req.method} is not allowed on {req.path}")
    raise error(404, "not_found", "resource not found")


def _token(req: Request) -> str | None:
    auth = req.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return req.query.get("access_token")


def _fault_answer(fault: Fault, req: Request) -> Response:
    orders_api = req.orders_api
    if fault.kind == "reset":
        return Response(0, reset=True)
    if fault.kind == "malformed":
        return Response(200, MALFORMED)
    if fault.kind == "empty":
        return Response(200, b"")
    if fault.kind == "wrong_type":
        return json_response(200, "ok")
    if fault.kind == "deep_json":
        return Response(200, DEEP_JSON)
    if fault.kind in ("foreign", "absurd"):
        return json_response(200, _lying_body(fault.kind, req))
    if fault.kind == "echo_token":
        message = f"invalid credentials for {_token(req)}"
        return json_response(400, (errors.orders if orders_api else errors.legacy)(400, "bad_request", message).body)
    status, code, message = FAULT_ANSWERS[fault.kind]
    headers = {"Retry-After": str(fault.retry_after)} if fault.kind == "http429" else None
    body = (errors.orders if orders_api else errors.legacy)(status, code, message).body
    return json_response(status, body, headers)


def _lying_body(kind: str, req: Request) -> Any:
    """A well-formed answer no box may believe: paid, but for another sale (``foreign``), or for this sale with
    amounts no payment has (``absurd``: negative and astronomically large)."""
    reference = "OTHER-SALE" if kind == "foreign" else req.query.get("external_reference", "")
    amounts = (1.0, 2.0) if kind == "foreign" else (-5.0, 1e300)
    payments = [{"id": 100 + i, "status": "approved", "transaction_amount": a} for i, a in enumerate(amounts)]
    if req.orders_api:
        return {"id": "ORDTST01LYINGLYINGLYINGLYIN", "external_reference": reference, "status": "processed",
                "transactions": {"payments": [{"id": "PAY01LYING", "status": "processed", "amount": str(amounts[1]),
                                               "reference_id": "100"}]}}
    return {"elements": [{"id": 1, "status": "closed", "external_reference": reference, "payments": payments}],
            "total": 1, "next_offset": 1}


def _huge_amounts(response: Response) -> Response:
    """The real answer with every amount in it written as a 5000-digit JSON number."""
    if response.status >= 300 or not response.body.strip():
        return response
    marker = "__HUGE_AMOUNT__"

    def garble(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: marker if k in AMOUNT_KEYS else garble(v) for k, v in value.items()}
        if isinstance(value, list):
            return [garble(v) for v in value]
        return value

    body = json.dumps(garble(json.loads(response.body)), ensure_ascii=False).encode("utf-8")
    return Response(response.status, body.replace(f'"{marker}"'.encode(), HUGE_NUMBER), response.content_type,
                    response.headers)


def _call(emu: Emulator, route: Route, req: Request, user: int, params: dict[str, Any]) -> Response:
    """Run the handler; a POST to ``/v1/…`` (orders, refunds) with an idempotency key runs once per key
    [C: W-ocreate for orders; the SDKs send the key on every POST, PY request_options]."""
    try:
        key = req.headers.get("x-idempotency-key", "").strip()
        if key and req.method == "POST" and req.path.startswith("/v1/"):
            fingerprint = (req.method, req.path, _canonical(req.body))
            return emu.idempotent(user, key, fingerprint, lambda: route.handler(emu, req, user, params))
        return route.handler(emu, req, user, params)
    except ApiError as exc:
        return error_response(exc)


def _canonical(body: bytes) -> str:
    try:
        return json.dumps(json.loads(body), sort_keys=True) if body.strip() else ""
    except ValueError:
        return body.decode("utf-8", "replace")


def _apply(
    emu: Emulator, route: Route, req: Request, user: int, params: dict[str, Any], fault: Fault | None
) -> Response:
    """The handler's answer, or the fault's: before (``after=False``) or after applying the operation."""
    if fault is None:
        return _call(emu, route, req, user, params)
    if fault.kind == "huge_amount":
        return _huge_amounts(_call(emu, route, req, user, params))
    if fault.kind == "timeout":
        if not fault.after:
            time.sleep(fault.delay)
        response = _call(emu, route, req, user, params)
        if fault.after:
            time.sleep(fault.delay)
        return response
    if fault.after:
        _call(emu, route, req, user, params)
    return _fault_answer(fault, req)


def handle(emu: Emulator, req: Request) -> Response:
    """Answer one request: ``/_emu/…`` control endpoints, or the emulated API (logged)."""
    if req.path == "/_emu" or req.path.startswith("/_emu/"):
        return control.handle(emu, req)
    fault = None
    try:
        route, params = _match(req)
        user = 0
        if route.auth:
            found = emu.user_for_token(_token(req))
            if found is None:
                raise (errors.orders if req.orders_api else errors.legacy)(
                    401, "unauthorized", "invalid_token"
                )
            user = found
        fault = emu.faults.take(route.op) if route.op else None
        response = _apply(emu, route, req, user, params, fault)
    except ApiError as exc:
        response = error_response(exc)
    entry = {
        "method": req.method,
        "path": req.path,
        "status": None if response.reset else response.status,
        "t": emu.clock(),
    }
    query = {k: v for k, v in req.query.items() if k != "access_token"}
    if query:
        entry["query"] = query
    if fault is not None:
        entry["fault"] = fault.kind
    emu.record(entry)
    log.debug(
        "%s %s -> %s%s", req.method, req.path, entry["status"], f" (fault {fault.kind})" if fault else ""
    )
    return response
