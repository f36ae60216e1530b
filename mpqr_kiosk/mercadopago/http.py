"""The HTTP client under both backends: Bearer auth, error bodies parsed into typed errors, and the API
server's clock learned from the ``Date`` header (a Pi has no real-time clock).

Every request has an overall deadline, not only a per-read timeout: an answer dripped a byte at a time is
cut when the deadline passes (a timer shuts the socket the request uses), so it can never hold the API
worker. Redirects are never followed (the token must not travel anywhere else), bodies are capped, and the
token is taken out of anything an error message could echo back.
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import logging
import socket
import threading
import time
import uuid
from typing import Any

import requests
import requests.adapters
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions

from mpqr_kiosk import __version__
from mpqr_kiosk.mercadopago.errors import ApiError, BadResponse, TransportError, error_for

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 10.0
DEADLINE = 15.0  # seconds for a whole request, answer included
MAX_BODY = 1 << 20  # bytes: no answer of this API is anywhere near
MAX_RETRY_AFTER = 300.0  # seconds: a Retry-After of days is a mistake; five minutes is plenty


class _Cutter:
    """The connection each thread is sending on now, so a timer can shut it at the request's deadline."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[int, urllib3.connection.HTTPConnection] = {}

    def using(self, connection: urllib3.connection.HTTPConnection) -> None:
        with self._lock:
            self._active[threading.get_ident()] = connection

    def done(self, thread: int) -> None:
        with self._lock:
            self._active.pop(thread, None)

    def cut(self, thread: int) -> None:
        with self._lock:
            connection = self._active.get(thread)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _session(cutter: _Cutter) -> requests.Session:
    """A keep-alive session whose connections tell ``cutter`` when they carry a request."""

    def watched(base: type[urllib3.connection.HTTPConnection]) -> type[urllib3.connection.HTTPConnection]:
        class Watched(base):  # type: ignore[misc, valid-type]
            def request(self, *args: Any, **kwargs: Any) -> None:
                cutter.using(self)
                super().request(*args, **kwargs)

        return Watched

    class Pool(urllib3.connectionpool.HTTPConnectionPool):
        ConnectionCls = watched(urllib3.connection.HTTPConnection)

    class TlsPool(urllib3.connectionpool.HTTPSConnectionPool):
        ConnectionCls = watched(urllib3.connection.HTTPSConnection)

    session = requests.Session()
    session.trust_env = False  # no proxy or .netrc from the environment: the token goes to api_base only
    for prefix in ("http://", "https://"):
        adapter = requests.adapters.HTTPAdapter(max_retries=0)
        adapter.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TlsPool}
        session.mount(prefix, adapter)
    return session


class HttpClient:
    """One keep-alive session to ``base_url``. No automatic retries: the caller decides (rule 3)."""

    def __init__(self, base_url: str, token: str, timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
                 deadline: float = DEADLINE):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.deadline = deadline
        self._token = token
        self._cutter = _Cutter()
        self.session = _session(self._cutter)
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
        thread = threading.get_ident()
        timer = threading.Timer(self.deadline, self._cutter.cut, args=(thread,))
        timer.daemon = True
        timer.start()
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                params=params,
                json=json,
                headers={"X-Request-Id": request_id, **(headers or {})},
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            )
            with response:
                content = response.raw.read(MAX_BODY + 1, decode_content=True)
        except requests.Timeout:
            raise TransportError(what, message="timed out") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            late = time.time() - sent >= self.deadline
            raise TransportError(what, message=f"no whole answer within {self.deadline:.0f} s" if late
                                 else type(exc).__name__) from None
        finally:
            timer.cancel()
            self._cutter.done(thread)
        took = time.time() - sent
        self._learn_clock(response, sent + took / 2)
        log.debug("%s -> %s in %.0f ms (request %s)", what, response.status_code, took * 1000, request_id)
        if len(content) > MAX_BODY:
            raise BadResponse(what, response.status_code, message="the answer is larger than any this API sends")
        if 300 <= response.status_code < 400:
            raise BadResponse(what, response.status_code, message="a redirect, not followed (the token stays here)")
        if response.status_code >= 400:
            raise self._error(what, response, content)
        if not content.strip():
            return None
        try:
            return jsonlib.loads(content)
        except (ValueError, RecursionError):
            raise BadResponse(what, response.status_code, message="the body is not JSON") from None

    def _learn_clock(self, response: requests.Response, our_time: float) -> None:
        date = response.headers.get("Date")
        if date:
            try:
                self.clock_offset = email.utils.parsedate_to_datetime(date).timestamp() - our_time
            except (TypeError, ValueError, IndexError, OverflowError):
                log.debug("unparsable Date header %r", date)

    def _error(self, what: str, response: requests.Response, content: bytes) -> ApiError:
        """Either error shape: legacy ``{message, error, status, cause}`` or Orders ``{errors: [...]}``; the
        token is taken out of whatever the API echoed back."""
        code = message = ""
        try:
            body = jsonlib.loads(content)
        except (ValueError, RecursionError):
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
        code, message = self._redact(code)[:80], self._redact(message)[:200]
        retry_after = _retry_after(response.headers.get("Retry-After", "")) if response.status_code == 429 else 0.0
        return error_for(response.status_code)(what, response.status_code, code, message, retry_after)

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text


def _retry_after(value: str) -> float:
    """``Retry-After`` in seconds (a number or an HTTP date), capped; 0 when absent or unreadable."""
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return 0.0
    if seconds != seconds:  # NaN
        return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
