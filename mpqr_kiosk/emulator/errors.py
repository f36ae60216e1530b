"""Mercado Pago's two error shapes, raised as one exception the HTTP layer turns into a response."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An HTTP error answer: status, JSON body and extra headers."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def legacy(status: int, error: str, message: str, code: int | None = None) -> ApiError:
    """The legacy APIs' error: ``{"message", "error", "status", "cause": []}``; the Payments API names a
    numbered cause (``{"code": 1001, "description": …}``)."""
    cause = [{"code": code, "description": message}] if code is not None else []
    return ApiError(status, {"message": message, "error": error, "status": status, "cause": cause})


def orders(status: int, code: str, message: str) -> ApiError:
    """The Orders API's error: ``{"errors": [{"code", "message", "details": []}]}``."""
    return ApiError(status, {"errors": [{"code": code, "message": message, "details": []}]})
