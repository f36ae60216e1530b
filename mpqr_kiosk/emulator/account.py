"""What every part of one emulated Mercado Pago site shares: the site, the clock, one lock, the id counters,
the seller accounts and the notifier. The parts (``points``, ``instore``, ``orders_v1``) each hold their own
records and reach each other only through their public methods."""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable
from typing import Any

from mpqr_kiosk.core.sites import Site
from mpqr_kiosk.emulator.notify import Notifier
from mpqr_kiosk.emulator.records import legacy_time


class Ids:
    """Id counters, shaped like Mercado Pago's (mp_api.md §2, §4 examples)."""

    def __init__(self) -> None:
        self.store = itertools.count(40_000_001)
        self.pos = itertools.count(1_043_915)
        self.merchant_order = itertools.count(4_018_801_790)
        self.payment = itertools.count(25_547_902_442)
        self.refund = itertools.count(1_000_000_001)


class Account:
    def __init__(self, site: Site, clock: Callable[[], float], notify: bool) -> None:
        self.site = site
        self.clock = clock
        self.lock = threading.RLock()
        self.ids = Ids()
        self.notifier = Notifier(clock, enabled=notify)
        self.base_url = "http://127.0.0.1"  # the server sets its own URL (POS image links)
        self._users: dict[int, dict[str, Any]] = {}
        self._tickers: list[Callable[[], None]] = []

    def on_tick(self, ticker: Callable[[], None]) -> None:
        """Have ``ticker`` run on every request and buyer action (expiry is checked lazily, by the clock)."""
        self._tickers.append(ticker)

    def tick(self) -> None:
        with self.lock:
            for ticker in self._tickers:
                ticker()

    def user(self, user_id: int) -> dict[str, Any]:
        """The seller account ``user_id`` (``GET /users/me``), made on first use."""
        with self.lock:
            if user_id not in self._users:
                self._users[user_id] = {
                    "id": user_id,
                    "nickname": f"TESTUSER{user_id}",
                    "first_name": "Test",
                    "last_name": "User",
                    "email": f"test_user_{user_id}@testuser.com",
                    "site_id": self.site.id,
                    "country_id": self.site.country,
                    "registration_date": legacy_time(self.clock()),
                    "user_type": "normal",
                    "status": {"site_status": "active"},
                }
            return self._users[user_id]

    def users(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(list(self._users.values()))
