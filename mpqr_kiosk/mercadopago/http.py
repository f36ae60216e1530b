"""The HTTP client under both backends: Bearer auth, error bodies parsed into typed errors, and the API
server's clock learned from the ``Date`` header (a Pi has no real-time clock).

Every request has an overall deadline, not only a per-read timeout: an answer dripped a byte at a time is
cut when the deadline passes (a timer shuts the socket the request uses), so it can never hold the API
worker. Redirects are never followed (the token must not travel anywhere else), bodies are capped, and the
token is taken out of anything an error message could echo back. A body is JSON only within bounds: nesting
deeper than ``MAX_DEPTH``, a number longer than ``MAX_NUMBER`` characters, one too large or too small for
money, or ``NaN``/``Infinity`` make it a ``BadResponse``, never a ``RecursionError`` or a 5000-digit integer.
"""

from __future__ import annotations

import email.utils
import itertools
import json as jsonlib
import logging
import math
import re
import socket
import threading
import time
import uuid
from decimal import Decimal
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
MAX_BODY = 4 << 20  # bytes: the largest real answer, a payments search page of 100 with a Pix QR in each, is ~1 MiB
MAX_RETRY_AFTER = 300.0  # seconds: a Retry-After of days is a mistake; five minutes is plenty
MAX_DEPTH = 32  # levels of JSON nesting: this API's deepest answer has about six
MAX_NUMBER = 40  # characters in one JSON number: ids have at most 20 digits, amounts fewer
MAX_EXPONENT = 30  # a number's decimal exponent: no id or amount is beyond 10**30 or below 10**-30
# possessive: each quote starts one linear match (a string left open runs to the end: the body is no JSON then)
STRINGS = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"?', re.S)
NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
STEP = [1 if chr(b) in "[{" else -1 for b in range(256)]  # what each bracket does to the depth


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
        return decode(content, what, response.status_code)

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
            body = decode(content, what, response.status_code)
        except BadResponse:
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
        code, message = self._redact(code), self._redact(message)  # ApiError bounds both
        retry_after = _retry_after(response.headers.get("Retry-After", "")) if response.status_code == 429 else 0.0
        return error_for(response.status_code)(what, response.status_code, code, message, retry_after)

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text


def download(url: str, what: str, limit: int, deadline: float = DEADLINE) -> bytes:
    """GET a file that is not the API's, without the token: at most ``limit`` bytes within ``deadline``
    seconds, up to three redirects followed. ``TransportError`` when no whole answer came in time, the status's
    ``ApiError`` for an error status, ``BadResponse`` for a body larger than ``limit``."""
    cutter = _Cutter()
    thread = threading.get_ident()
    timer = threading.Timer(deadline, cutter.cut, args=(thread,))
    timer.daemon = True
    sent = time.time()
    timer.start()
    try:
        with _session(cutter) as session:
            session.max_redirects = 3
            with session.get(url, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), stream=True,
                             headers={"User-Agent": f"mpqr-kiosk/{__version__}"}) as response:
                content = response.raw.read(limit + 1, decode_content=True)
    except requests.Timeout:
        raise TransportError(what, message="timed out") from None
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        late = time.time() - sent >= deadline
        raise TransportError(what, message=f"no whole answer within {deadline:.0f} s" if late
                             else type(exc).__name__) from None
    finally:
        timer.cancel()
        cutter.done(thread)
    if response.status_code >= 400:
        raise error_for(response.status_code)(what, response.status_code, message="the download was refused")
    if len(content) > limit:
        raise BadResponse(what, response.status_code, message=f"the answer is larger than {limit} bytes")
    return content


class _Refused(ValueError):
    """A JSON value out of bounds, met while decoding."""


def decode(content: bytes, what: str, status: int = 200) -> Any:
    """A JSON body within bounds; ``BadResponse`` (naming ``what`` and the problem, never the body) otherwise."""
    if _depth(content) > MAX_DEPTH:
        raise BadResponse(what, status, message=f"the body nests deeper than {MAX_DEPTH} levels")
    try:
        return jsonlib.loads(content, parse_int=_integer, parse_float=_real, parse_constant=_constant)
    except _Refused as exc:
        raise BadResponse(what, status, message=str(exc)) from None
    except (ValueError, RecursionError):
        raise BadResponse(what, status, message="the body is not JSON") from None


def _depth(content: bytes) -> int:
    """How deep the body's arrays and objects nest (brackets inside strings do not count)."""
    brackets = STRINGS.sub(b"", content).translate(None, NOT_BRACKETS)
    return max(itertools.accumulate(map(STEP.__getitem__, brackets)), default=0)


def _integer(text: str) -> int:
    if len(text) > MAX_NUMBER:
        raise _Refused(f"a number in the body has {len(text)} digits")
    if len(text.lstrip("-")) > MAX_EXPONENT + 1:  # the bound _real keeps: no id or amount is beyond 10**30
        raise _Refused(f"a number in the body is out of range ({text})")
    return int(text)


def _real(text: str) -> float:
    if len(text) > MAX_NUMBER:
        raise _Refused(f"a number in the body has {len(text)} characters")
    value = float(text)
    exact = Decimal(text)
    if not math.isfinite(value) or exact and not -MAX_EXPONENT <= exact.adjusted() <= MAX_EXPONENT:
        raise _Refused(f"a number in the body is out of range ({text[:MAX_NUMBER]})")
    return value


def _constant(name: str) -> float:
    raise _Refused(f"the body has {name}, which is not a JSON number")


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
