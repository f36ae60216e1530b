"""IPN-style ``merchant_order`` notifications, delivered only to loopback addresses."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from mpqr_kiosk.loopback import is_loopback_host

log = logging.getLogger(__name__)


def is_loopback(url: str) -> bool:
    """True for ``http(s)://`` URLs on ``localhost``, ``127.0.0.0/8`` or ``::1``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https"):
        return False
    return is_loopback_host(host)


class Notifier:
    """POSTs ``?topic=merchant_order&id=<id>`` to an order's ``notification_url`` in the background."""

    def __init__(self, clock: Callable[[], float], enabled: bool = True, timeout: float = 5.0) -> None:
        self._clock = clock
        self._enabled = enabled
        self._timeout = timeout
        self._lock = threading.Lock()
        self._deliveries: list[dict[str, Any]] = []

    def merchant_order(self, url: str | None, mo_id: int, resource: str) -> None:
        """Notify a merchant order change; non-loopback URLs are recorded as skipped, never contacted."""
        if not url or not self._enabled:
            return
        target = f"{url}{'&' if '?' in url else '?'}topic=merchant_order&id={mo_id}"
        if not is_loopback(url):
            self._record(target, mo_id, None, "skipped: not a loopback address")
            return
        body = {"resource": resource, "topic": "merchant_order"}
        threading.Thread(target=self._deliver, args=(target, mo_id, body), daemon=True).start()

    def _deliver(self, target: str, mo_id: int, body: dict[str, Any]) -> None:
        with requests.Session() as session:
            session.trust_env = False  # loopback only: never through a proxy from the environment
            try:
                status = session.post(target, json=body, timeout=self._timeout).status_code
            except requests.RequestException as exc:
                self._record(target, mo_id, None, type(exc).__name__)
                return
        self._record(target, mo_id, status, None)

    def _record(self, url: str, mo_id: int, status: int | None, error: str | None) -> None:
        log.debug("notification %s -> %s %s", url, status, error or "")
        with self._lock:
            self._deliveries.append(
                {"url": url, "id": mo_id, "status": status, "error": error, "t": self._clock()}
            )

    def deliveries(self) -> list[dict[str, Any]]:
        """Every attempt so far: ``{url, id, status, error, t}``."""
        with self._lock:
            return list(self._deliveries)
