"""The emulator's transport-free HTTP messages: what the server parsed and what it must write back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mpqr_kiosk.emulator import errors
from mpqr_kiosk.emulator.errors import ApiError


@dataclass
class Request:
    """One HTTP request: path without query, query params (last value wins), lower-case header names."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def orders_api(self) -> bool:
        """``/v1/orders…`` answers errors in the Orders API shape."""
        return self.path.startswith("/v1/orders")

    def json(self) -> Any:
        """The JSON body, ``None`` when empty; 400 ``bad_request`` when it is not JSON."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            error = errors.orders if self.orders_api else errors.legacy
            raise error(400, "bad_request", "the body is not valid JSON") from None


@dataclass
class Response:
    """What to write back; ``reset`` means: abort the connection instead."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, Any] = field(default_factory=dict)
    reset: bool = False


def json_response(status: int, payload: Any, headers: dict[str, Any] | None = None) -> Response:
    """A JSON answer."""
    return Response(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"), headers=headers or {})


def error_response(exc: ApiError) -> Response:
    """An ``ApiError`` as an answer."""
    return json_response(exc.status, exc.body, exc.headers)
