"""Typed Mercado Pago API errors. Messages carry the method, path, status and the API's error key,
never the access token or request headers."""

from __future__ import annotations

# Status codes whose outcome is unknown (the request may or may not have taken effect): read back, never
# blindly repeat a create (rule 3). 409/423 are idempotency or state conflicts, 424 a failed dependency.
INDETERMINATE_STATUSES = frozenset({408, 409, 423, 424, 429})
MAX_MESSAGE = 300  # characters of an error's message: a log line stays one short line whatever the API sent


class ApiError(Exception):
    """A request to the Mercado Pago API failed."""

    def __init__(self, what: str, status: int = 0, code: str = "", message: str = "", retry_after: float = 0.0):
        self.what = what  # "PUT /instore/qr/.../orders"
        self.status = status  # 0 when no HTTP answer arrived
        self.code = code[:80]  # the API's error key, e.g. "invalid_external_reference"
        self.message = message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE - 3] + "..."
        self.retry_after = retry_after
        detail = " ".join(part for part in (str(status or ""), self.code, self.message) if part)
        super().__init__(f"{what}: {detail}" if detail else what)

    @property
    def indeterminate(self) -> bool:
        """True when the request may have taken effect anyway."""
        return self.status == 0 or self.status >= 500 or self.status in INDETERMINATE_STATUSES


class TransportError(ApiError):
    """No answer: timeout, connection refused or reset, DNS failure."""


class BadResponse(ApiError):
    """An answer that is not the JSON the API documents: whatever the status, the outcome is unknown."""

    @property
    def indeterminate(self) -> bool:
        return True

    def plain(self) -> str:
        """One line for a technician: which answer was not usable, and why."""
        return f"Mercado Pago's answer to {self.what} was not usable: {self.message}"


class NotSent(ApiError):
    """We did not send the request: what it would carry is wrong (a total above the site's bound, an order
    whose time is up). Nothing reached Mercado Pago: a definite answer."""

    @property
    def indeterminate(self) -> bool:
        return False


class Unauthorized(ApiError):
    """401/403: the access token is wrong, expired or lacks permission."""


class NotFound(ApiError):
    """404."""


class RateLimited(ApiError):
    """429: slow down for ``retry_after`` seconds."""


class ServerError(ApiError):
    """5xx."""


def error_for(status: int) -> type[ApiError]:
    """The exception class for an HTTP error status."""
    if status in (401, 403):
        return Unauthorized
    if status == 404:
        return NotFound
    if status == 429:
        return RateLimited
    if status >= 500:
        return ServerError
    return ApiError
