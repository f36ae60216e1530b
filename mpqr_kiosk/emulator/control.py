"""``/_emu/…``: the buyer's actions, fault injection, the request log and a state dump (no auth)."""

from __future__ import annotations

from typing import Any

from mpqr_kiosk.emulator import errors
from mpqr_kiosk.emulator.errors import ApiError
from mpqr_kiosk.emulator.messages import Request, Response, error_response, json_response
from mpqr_kiosk.emulator.state import Emulator

FAULT_FIELDS = ("op", "kind", "count", "after", "delay", "retry_after")


def _body(req: Request) -> dict[str, Any]:
    body = req.json()
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise errors.legacy(400, "bad_request", "body must be a JSON object")
    return body


def _pay(emu: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    amount = body.get("amount")
    if amount is not None:
        if not isinstance(amount, str | int | float) or isinstance(amount, bool):
            raise errors.legacy(400, "bad_request", "amount must be a number or a numeric string")
        # major units in ("12.50", "12,50" or 12.5), minor units to the emulator
        amount = emu.site.parse(amount) if isinstance(amount, str) else emu.site.from_api(amount)
    return emu.pay(
        body.get("external_pos_id", "POS001"), body.get("result", "approved"), amount, body.get("user_id"),
        str(body.get("phone", "buyer")),
    )


def _answer(emu: Emulator, req: Request) -> tuple[int, Any]:
    action = (req.method, req.path.removeprefix("/_emu/"))
    if action == ("POST", "scan"):
        body = _body(req)
        phone = str(body.get("phone", "buyer"))
        return 200, emu.scan(body.get("external_pos_id", "POS001"), body.get("user_id"), phone)
    if action == ("POST", "decide"):
        body = _body(req)
        return 200, emu.decide(str(body.get("payment_id", "")), body.get("result", "approved"))
    if action == ("POST", "pay"):
        return 200, _pay(emu, _body(req))
    if action == ("POST", "expire"):
        body = _body(req)
        return 200, emu.expire(body.get("external_pos_id", "POS001"), body.get("user_id"))
    if action == ("POST", "faults"):
        body = _body(req)
        return 201, {"fault": emu.inject(**{k: body[k] for k in FAULT_FIELDS if k in body})}
    if action == ("GET", "faults"):
        return 200, {"faults": emu.faults.armed()}
    if action == ("DELETE", "faults"):
        return 200, {"cleared": emu.clear_faults()}
    if action == ("GET", "requests"):
        return 200, emu.requests()
    if action == ("DELETE", "requests"):
        return 200, {"cleared": len(emu.requests(clear=True))}
    if action == ("GET", "state"):
        return 200, emu.snapshot()
    raise errors.legacy(404, "not_found", f"no emulator control endpoint {req.method} {req.path}")


def handle(emu: Emulator, req: Request) -> Response:
    """Answer a control request (JSON in, JSON out; errors in the legacy shape)."""
    try:
        status, payload = _answer(emu, req)
    except ApiError as exc:
        return error_response(exc)
    except (TypeError, ValueError, ArithmeticError) as exc:
        return error_response(errors.legacy(400, "bad_request", str(exc)))
    return json_response(status, payload)
