"""The HTTP client under both backends: Bearer auth, timeouts, error bodies parsed into typed errors,
and the API server's clock learned from the ``Date`` header (a Pi has no real-time clock)."""

from __future__ import annotations

import email.utils
import logging
import time
import uuid
from typing import Any

import requests

from mpqr_kiosk import __version__
from mpqr_kiosk.mercadopago.errors import ApiError, BadResponse, TransportError, error_for

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 10.0


class HttpClient:
    """One keep-alive session to ``base_url``. No automatic retries: the caller decides (rule 3)."""

    def __init__(self, base_url: str, token: str, timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT)):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": f"mpqr-kiosk/{__version__}",
            }
        )
        self.clock_offset = 0.0  # API server clock minus ours, from the last Date header

    def server_time(self) -> float:
        """Now, on the API server's clock (our clock until the first answer)."""
        return time.time() + self.clock_offset

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON body (``None`` when empty) or raise an ``ApiError``."""
        what = f"{method} {path}"
        request_id = uuid.uuid4().hex[:12]
        sent = time.time()
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                params=params,
                json=json,
                headers={"X-Request-Id": request_id, **(headers or {})},
                timeout=self.timeout,
            )
        except requests.Timeout:
            raise TransportError(what, message="timed out") from None
        except requests.RequestException as exc:
            raise TransportError(what, message=type(exc).__name__) from None
        took = time.time() - sent
        self._learn_clock(response, sent + took / 2)
        log.debug("%s -> %s in %.0f ms (request %s)", what, response.status_code, took * 1000, request_id)
        if response.status_code >= 400:
            raise _api_error(what, response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise BadResponse(what, response.status_code, message="the body is not JSON") from None

    def _learn_clock(self, response: requests.Response, our_time: float) -> None:
        date = response.headers.get("Date")
        if date:
            try:
                self.clock_offset = email.utils.parsedate_to_datetime(date).timestamp() - our_time
            except (TypeError, ValueError):
                log.debug("unparsable Date header %r", date)


def _api_error(what: str, response: requests.Response) -> ApiError:
    """Parse either error shape: legacy ``{message, error, status, cause}`` or Orders ``{errors: [...]}``."""
    code = message = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            code, message = str(errors[0].get("code", "")), str(errors[0].get("message", ""))
        else:
            code, message = str(body.get("error", "")), str(body.get("message", ""))
            causes = body.get("cause") or body.get("causes") or []
            if isinstance(causes, list) and causes and isinstance(causes[0], dict):
                cause = causes[0].get("code") or causes[0].get("description") or ""
                message = f"{message} ({cause})" if cause else message
    retry_after = 0.0
    if response.status_code == 429:
        try:
            retry_after = float(response.headers.get("Retry-After", "0"))
        except ValueError:
            retry_after = 0.0
    return error_for(response.status_code)(what, response.status_code, code, message[:200], retry_after)
