"""The emulated Mercado Pago, assembled: accounts, the buyer's actions, expiry and bookkeeping, one lock.

Stores and POS live in ``points``, in-store orders and merchant orders in ``instore``, the Orders API in
``orders_v1`` (research/mp_api.md §2-§4, §8; research/mp_orders_api.md). Money inside is ``int`` minor
units of the site. Every public method returns copies, safe to serialise after the lock is released.
"""

from __future__ import annotations

import copy
import itertools
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from mpqr_kiosk.core import sites
from mpqr_kiosk.emulator import errors
from mpqr_kiosk.emulator.faults import Fault, Faults
from mpqr_kiosk.emulator.instore import NO_ORDER, InstoreApi
from mpqr_kiosk.emulator.notify import Notifier
from mpqr_kiosk.emulator.orders_v1 import OrdersApi
from mpqr_kiosk.emulator.points import StoresAndPos
from mpqr_kiosk.emulator.records import InstoreOrder, Pos, Store, V1Order, legacy_time

T = TypeVar("T")


class Emulator(StoresAndPos, InstoreApi, OrdersApi):
    """One emulated Mercado Pago site; thread-safe (one re-entrant lock around all state).

    ``tokens`` maps access tokens to user ids; without it a token's trailing ``-<digits>`` is the user
    id, else ``user_id``. ``busy_pos`` is what a new order on a POS that has one does: ``"replace"``
    it or answer ``"409"``. ``seed`` creates store ``STORE001`` and POS ``POS001`` for ``user_id``.
    """

    def __init__(
        self,
        site: str = "MLA",
        user_id: int = 123456789,
        tokens: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.time,
        busy_pos: str = "replace",
        seed: bool = True,
        notify: bool = True,
    ) -> None:
        if busy_pos not in ("replace", "409"):
            raise ValueError(f"busy_pos must be 'replace' or '409', not {busy_pos!r}")
        self.site = sites.site(site)
        self.user_id = user_id
        self.tokens = dict(tokens) if tokens is not None else None
        self.clock = clock
        self.busy_pos = busy_pos
        self.base_url = "http://127.0.0.1"  # the server sets its own URL (POS image links)
        self.lock = threading.RLock()
        self.faults = Faults()
        self.notifier = Notifier(clock, enabled=notify)
        self._users: dict[int, dict[str, Any]] = {}
        self._stores: dict[int, Store] = {}
        self._pos: dict[int, Pos] = {}
        self._pos_by_ext: dict[tuple[int, str], Pos] = {}
        self._mos: dict[int, dict[str, Any]] = {}
        self._payments: dict[int, int] = {}  # payment id -> merchant order id
        self._v1: dict[str, V1Order] = {}
        self._idempotency: dict[tuple[int, str], tuple[Any, Any]] = {}
        self._log: list[dict[str, Any]] = []
        self._png: dict[int, bytes] = {}
        self._store_ids = itertools.count(40_000_001)
        self._pos_ids = itertools.count(1_043_915)
        self._mo_ids = itertools.count(4_018_801_790)
        self._payment_ids = itertools.count(25_547_902_442)
        self._refund_ids = itertools.count(1_000_000_001)
        if seed:
            self._seed()

    def _seed(self) -> None:
        spanish = self.site.language == "es"
        self.create_store(
            self.user_id,
            {"name": "Tienda de Prueba" if spanish else "Loja de Teste", "external_id": "STORE001"},
        )
        self.create_pos(
            self.user_id,
            {
                "name": "Caja 1" if spanish else "Caixa 1",
                "fixed_amount": True,
                "external_store_id": "STORE001",
                "external_id": "POS001",
            },
        )

    # -- accounts ---------------------------------------------------------------------------------

    def user_for_token(self, token: str | None) -> int | None:
        """The user an access token belongs to, ``None`` when the token is missing or unknown."""
        if not token or not token.strip():
            return None
        if self.tokens is not None:
            user_id = self.tokens.get(token)
        else:
            match = re.search(r"-(\d+)$", token)
            user_id = int(match[1]) if match else self.user_id
        if user_id is not None:
            with self.lock:
                self._user(user_id)
        return user_id

    def _user(self, user_id: int) -> dict[str, Any]:
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

    def me(self, user_id: int) -> dict[str, Any]:
        """``GET /users/me``."""
        with self.lock:
            return copy.deepcopy(self._user(user_id))

    def _occupy(self, pos: Pos, order: InstoreOrder | V1Order, busy: errors.ApiError) -> None:
        """Put an order on a POS, by the ``busy_pos`` rule when it already carries one."""
        if pos.slot is not None:
            if self.busy_pos == "409":
                raise busy
            if isinstance(pos.slot, V1Order):
                pos.slot.pos = None  # stays created, unpayable, until it expires
        pos.slot = order

    # -- the buyer ------------------------------------------------------------------------------------

    def scan(self, external_pos_id: str, user_id: int | None = None) -> dict[str, Any]:
        """The buyer scans the POS QR: a new merchant order for an in-store order, else the waiting screen."""
        with self.lock:
            self._tick()
            pos = self._pos_for(self.user_id if user_id is None else user_id, external_pos_id)
            answer: dict[str, Any] = {"external_pos_id": external_pos_id, "waiting": pos.slot is None}
            if pos.slot is None:
                pos.waiting = True
            elif isinstance(pos.slot, InstoreOrder):
                answer["merchant_order"] = copy.deepcopy(self._open_mo(pos, pos.slot))
            else:
                pos.slot.scans += 1
                answer["order"] = copy.deepcopy(pos.slot.data)
            return answer

    def pay(
        self,
        external_pos_id: str,
        result: str = "approved",
        amount: int | None = None,
        user_id: int | None = None,
    ) -> dict[str, Any]:
        """The buyer pays the POS's current order (``amount`` in minor units; default: what is due)."""
        if result not in ("approved", "rejected"):
            raise errors.legacy(400, "bad_request", "result must be approved or rejected")
        if amount is not None and amount <= 0:
            raise errors.legacy(400, "bad_request", "amount must be positive")
        with self.lock:
            self._tick()
            pos = self._pos_for(self.user_id if user_id is None else user_id, external_pos_id)
            if pos.slot is None:
                raise errors.legacy(404, *NO_ORDER)
            if isinstance(pos.slot, V1Order):
                paid = self._pay_v1(pos.slot, result, amount)
            else:
                paid = self._pay_instore(pos, pos.slot, result, amount)
            return {"external_pos_id": external_pos_id, "result": result, **paid}

    def expire(self, external_pos_id: str, user_id: int | None = None) -> dict[str, Any]:
        """The POS's current order runs out of time now (as its expiry would do)."""
        with self.lock:
            self._tick()
            pos = self._pos_for(self.user_id if user_id is None else user_id, external_pos_id)
            order = pos.slot
            if order is None:
                raise errors.legacy(404, *NO_ORDER)
            if isinstance(order, V1Order):
                self._end_v1(order, "expired", "expired")
                return {"external_pos_id": external_pos_id, "order": copy.deepcopy(order.data)}
            expired = self._expire_instore(pos, order)
            return {"external_pos_id": external_pos_id, "merchant_orders": copy.deepcopy(expired)}

    def _tick(self) -> None:
        """Expire what is due by the clock (checked lazily on each request and action)."""
        now = self.clock()
        for pos in self._pos.values():
            order = pos.slot
            if isinstance(order, InstoreOrder) and order.expires_at is not None and order.expires_at <= now:
                self._expire_instore(pos, order)
        for v1 in self._v1.values():
            if v1.data["status"] == "created" and v1.expires_at <= now:
                self._end_v1(v1, "expired", "expired")

    # -- bookkeeping ------------------------------------------------------------------------------------

    def idempotent(self, user_id: int, key: str, fingerprint: Any, apply: Callable[[], T]) -> T:
        """Run ``apply`` once per (user, key): the same request again gets the stored answer, another
        request with the key gets 409 ``idempotency_key_already_used``. Failed requests store nothing."""
        with self.lock:
            seen = self._idempotency.get((user_id, key))
            if seen is not None:
                if seen[0] != fingerprint:
                    raise errors.orders(
                        409,
                        "idempotency_key_already_used",
                        "The idempotency key was already used with a different request.",
                    )
                return seen[1]
            answer = apply()
            self._idempotency[(user_id, key)] = (fingerprint, answer)
            return answer

    def inject(
        self, op: str, kind: str, count: int = 1, after: bool = True, delay: float = 5.0, retry_after: int = 1
    ) -> dict[str, Any]:
        """Arm a fault on ``push``, ``read`` or ``cancel`` requests (see ``faults.Fault``)."""
        fault = Fault(op, kind, count, after, delay, retry_after)
        self.faults.arm(fault)
        return fault.to_dict()

    def clear_faults(self) -> int:
        """Disarm every fault."""
        return self.faults.clear()

    def record(self, entry: dict[str, Any]) -> None:
        """Log one API request (``{method, path, status, t, ...}``)."""
        with self.lock:
            self._log.append(entry)

    def requests(self, clear: bool = False) -> list[dict[str, Any]]:
        """The API request log, optionally emptied."""
        with self.lock:
            entries = copy.deepcopy(self._log)
            if clear:
                self._log.clear()
            return entries

    def snapshot(self) -> dict[str, Any]:
        """Everything, as JSON (``GET /_emu/state``)."""
        with self.lock:
            self._tick()
            return copy.deepcopy(
                {
                    "site": self.site.id,
                    "user_id": self.user_id,
                    "busy_pos": self.busy_pos,
                    "users": list(self._users.values()),
                    "stores": [s.data for s in self._stores.values()],
                    "pos": [
                        {
                            **self._pos_view(p),
                            "payload": p.payload,
                            "waiting": p.waiting,
                            "order": _slot_view(p),
                        }
                        for p in self._pos.values()
                    ],
                    "merchant_orders": list(self._mos.values()),
                    "orders": [
                        {
                            **o.data,
                            "emulator": {
                                "scans": o.scans,
                                "attempts": o.attempts,
                                "expires_at": o.expires_at,
                            },
                        }
                        for o in self._v1.values()
                    ],
                    "faults": self.faults.armed(),
                    "notifications": self.notifier.deliveries(),
                }
            )


def _slot_view(pos: Pos) -> dict[str, Any] | None:
    if isinstance(pos.slot, InstoreOrder):
        return {
            "api": "instore",
            "order": pos.slot.body,
            "expires_at": pos.slot.expires_at,
            "merchant_orders": pos.slot.mo_ids,
        }
    if isinstance(pos.slot, V1Order):
        return {"api": "orders", "id": pos.slot.data["id"]}
    return None
