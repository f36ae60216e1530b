"""The emulated Mercado Pago, assembled from its parts: the seller accounts (``account``), stores and POS
(``points``), in-store orders and merchant orders (``instore``), the Orders API (``orders_v1``); plus the
buyer's actions, idempotency keys, injected faults and the request log.

Research: mp_api.md §2-§4, §8, §12; mp_orders_api.md. Money inside is ``int`` minor units of the site.
Every public method returns copies, safe to serialise after the lock is released.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from mpqr_kiosk.core import sites
from mpqr_kiosk.emulator import errors, payment_search
from mpqr_kiosk.emulator.account import Account
from mpqr_kiosk.emulator.faults import Fault, Faults
from mpqr_kiosk.emulator.instore import NO_ORDER, RESULTS, Instore
from mpqr_kiosk.emulator.orders_v1 import OrdersV1
from mpqr_kiosk.emulator.points import Points
from mpqr_kiosk.emulator.records import InstoreOrder, Pos, V1Order

T = TypeVar("T")
KEY_LIFETIME = 24 * 3600.0


class Emulator:
    """One emulated Mercado Pago site; thread-safe (one re-entrant lock around all state).

    ``tokens`` maps access tokens to user ids; without it a token's trailing ``-<digits>`` is the user
    id, else ``user_id``. ``busy_pos``: see ``Points``; ``merchant_order``: when merchant orders appear
    (see ``instore``); ``refund_delay``: seconds a refund stays processing. ``seed`` creates store
    ``STORE001`` and POS ``POS001`` for ``user_id``.
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
        merchant_order: str = "at_create",
        refund_delay: float = 0.0,
    ) -> None:
        self.account = Account(sites.site(site), clock, notify)
        self.points = Points(self.account, busy_pos)
        self.instore = Instore(self.account, self.points, merchant_order, refund_delay)
        self.orders = OrdersV1(self.account, self.points, refund_delay)
        self.user_id = user_id
        self.tokens = dict(tokens) if tokens is not None else None
        self.faults = Faults()
        self._idempotency: dict[tuple[int, str], tuple[Any, Any, float]] = {}
        self._log: list[dict[str, Any]] = []
        if seed:
            self.points.seed(user_id)

    @property
    def site(self) -> sites.Site:
        return self.account.site

    def search_payments(self, user_id: int, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /v1/payments/search`` over both APIs' payments (see ``payment_search``)."""
        with self.account.lock:
            self.account.tick()
            found = self.instore.payments(user_id) + self.orders.payments(user_id)
            return copy.deepcopy(payment_search.search(found, query, self.account.clock()))

    @property
    def clock(self) -> Callable[[], float]:
        return self.account.clock

    @property
    def lock(self):
        return self.account.lock

    @property
    def base_url(self) -> str:
        return self.account.base_url

    @base_url.setter
    def base_url(self, url: str) -> None:
        self.account.base_url = url

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
            self.account.user(user_id)
        return user_id

    def me(self, user_id: int) -> dict[str, Any]:
        """``GET /users/me``."""
        with self.lock:
            return copy.deepcopy(self.account.user(user_id))

    def payload(self, external_pos_id: str, user_id: int | None = None) -> str:
        """The static EMVCo payload of a POS (what its QR image encodes)."""
        return self.points.payload(self.user_id if user_id is None else user_id, external_pos_id)

    # -- the buyer ------------------------------------------------------------------------------------

    def scan(self, external_pos_id: str, user_id: int | None = None, phone: str = "buyer") -> dict[str, Any]:
        """``phone`` scans the POS QR: the order's checkout, or the waiting screen when it has none."""
        with self.lock:
            self.account.tick()
            pos = self._pos(external_pos_id, user_id)
            answer: dict[str, Any] = {"external_pos_id": external_pos_id, "waiting": pos.slot is None}
            if pos.slot is None:
                pos.waiting.add(phone)
            elif isinstance(pos.slot, InstoreOrder):
                answer["merchant_order"] = self.instore.scan(pos, pos.slot, phone)
            else:
                answer["order"] = self.orders.scan(pos.slot, phone)
            return answer

    def pay(
        self,
        external_pos_id: str,
        result: str = "approved",
        amount: int | None = None,
        user_id: int | None = None,
        phone: str = "buyer",
    ) -> dict[str, Any]:
        """``phone`` pays (``approved``, ``rejected``, or ``in_process``: in review until ``decide``) the order
        it has open, else the POS's current one; ``amount`` in minor units, by default what is due."""
        if result not in RESULTS:
            raise errors.legacy(400, "bad_request", f"result must be one of {', '.join(RESULTS)}")
        if amount is not None and amount <= 0:
            raise errors.legacy(400, "bad_request", "amount must be positive")
        with self.lock:
            self.account.tick()
            pos = self._pos(external_pos_id, user_id)
            if isinstance(pos.slot, V1Order):
                paid = self.orders.pay(pos.slot, result, amount)
            else:
                paid = self.instore.pay(pos, phone, result, amount)
            return {"external_pos_id": external_pos_id, "result": result, **paid}

    def decide(self, payment_id: str, result: str) -> dict[str, Any]:
        """A payment in review is approved or rejected now (Mercado Pago's review, minutes later)."""
        if result not in ("approved", "rejected"):
            raise errors.legacy(400, "bad_request", "result must be approved or rejected")
        with self.lock:
            self.account.tick()
            decided = self.instore.decide(int(payment_id), result) if str(payment_id).isdigit() else None
            decided = decided or self.orders.decide(str(payment_id), result)
            if decided is None:
                raise errors.legacy(404, "not_found", f"no payment {payment_id} in review")
            return decided

    def expire(self, external_pos_id: str, user_id: int | None = None) -> dict[str, Any]:
        """The POS's current order runs out of time now (as its expiry would do)."""
        with self.lock:
            self.account.tick()
            pos = self._pos(external_pos_id, user_id)
            order = pos.slot
            if order is None:
                raise errors.legacy(404, *NO_ORDER)
            if isinstance(order, V1Order):
                self.orders.end(order, "expired", "expired")
                return {"external_pos_id": external_pos_id, "order": copy.deepcopy(order.data)}
            expired = self.instore.expire(pos, order)
            return {"external_pos_id": external_pos_id, "merchant_orders": copy.deepcopy(expired)}

    def _phones(self, pos: Pos) -> list[str]:
        if isinstance(pos.slot, V1Order):
            return sorted(pos.slot.phones)
        return self.instore.phones(pos)

    def _pos(self, external_pos_id: str, user_id: int | None) -> Pos:
        return self.points.pos_for(self.user_id if user_id is None else user_id, external_pos_id)

    # -- bookkeeping ------------------------------------------------------------------------------------

    def idempotent(self, user_id: int, key: str, fingerprint: Any, apply: Callable[[], T]) -> T:
        """Run ``apply`` once per (user, key) for 24 hours: the same request again gets the stored answer
        [C: W-ocreate], another request with the key gets 409 ``idempotency_key_already_used`` [C], and after
        24 h the key is forgotten, so a replay creates anew [inferred: mp_api.md §12.3]. Failed requests
        store nothing."""
        with self.lock:
            seen = self._idempotency.get((user_id, key))
            if seen is not None and self.clock() - seen[2] >= KEY_LIFETIME:
                seen = None
            if seen is not None:
                if seen[0] != fingerprint:
                    raise errors.orders(
                        409,
                        "idempotency_key_already_used",
                        "The idempotency key was already used with a different request.",
                    )
                return seen[1]
            answer = apply()
            self._idempotency[(user_id, key)] = (fingerprint, answer, self.clock())
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
            self.account.tick()
            return copy.deepcopy(
                {
                    "site": self.site.id,
                    "user_id": self.user_id,
                    "busy_pos": self.points.busy_pos,
                    "merchant_order": self.instore.mode,
                    "users": self.account.users(),
                    "stores": self.points.stores(),
                    "pos": [
                        {**self.points.view(p), "payload": p.payload, "waiting": sorted(p.waiting),
                         "order": _slot_view(p), "checkouts": self._phones(p)}
                        for p in self.points.all()
                    ],
                    "merchant_orders": self.instore.merchant_orders(),
                    "orders": [
                        {**o.data, "emulator": {"scans": o.scans, "attempts": o.attempts, "expires_at": o.expires_at}}
                        for o in self.orders.orders()
                    ],
                    "faults": self.faults.armed(),
                    "notifications": self.account.notifier.deliveries(),
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
