"""The Orders API for QR (``/v1/orders``, ``type: "qr"``, static mode), after mp_orders_api.md.

Statuses [C: S-qr, N-qr, G-pp-es]: created → processed/accredited | canceled | expired; processed →
refunded (or processed/partially_refunded). Only one payment transaction per order [C: R-create], so a
second phone cannot pay an order already processed, and nothing pays a canceled or expired one.

Where the docs are silent this emulator picks a behaviour and says so [inferred]: a payment in review shows
as ``processing/in_process`` until decided (the generic Orders statuses, W-ostatus-gen); a rejected attempt
leaves the order ``created`` and its API view unchanged (no documented field shows it).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mpqr_kiosk.emulator import errors, validate
from mpqr_kiosk.emulator.account import Account
from mpqr_kiosk.emulator.points import Points
from mpqr_kiosk.emulator.records import ISO3, V1Order, legacy_time, ulid_like, v1_time

ORDERS_SITES = ("MLB", "MLA", "MLC", "MLU")  # [C: R-create currency enum BRL, ARS, CLP, UYU; mp_api.md §12.2]
SEARCH_WINDOW = 30 * 24 * 3600  # begin_date..end_date at most 30 days [C: R-search]


class OrdersV1:
    """``/v1/orders`` on top of the POS table."""

    def __init__(self, account: Account, points: Points, refund_delay: float = 0.0) -> None:
        self.account = account
        self.points = points
        self.refund_delay = refund_delay  # > 0: a refund answers "processing" first [C: G-pp-pt, G-ca]
        self._v1: dict[str, V1Order] = {}
        self._refunds_due: list[tuple[float, V1Order]] = []
        account.on_tick(self._tick)

    def orders(self) -> list[V1Order]:
        return list(self._v1.values())

    def _tick(self) -> None:
        now = self.account.clock()
        for order in self._v1.values():
            if order.data["status"] == "created" and order.expires_at <= now:
                self.end(order, "expired", "expired")
        due = [r for r in self._refunds_due if r[0] <= now]
        self._refunds_due = [r for r in self._refunds_due if r[0] > now]
        for _, order in due:
            self._refunded(order)

    # -- the seller's API ---------------------------------------------------------------------------

    def create(self, user_id: int, body: Any) -> dict[str, Any]:
        """``POST /v1/orders`` (201): a created order on ``config.qr.external_pos_id``."""
        if self.account.site.id not in ORDERS_SITES:
            raise errors.orders(400, "unsupported_site", f"The Orders API is not available in {self.account.site.id}.")
        total, ttl, external_pos_id = validate.v1_order(body, self.account.site)
        with self.account.lock:
            self.account.tick()
            pos = self.points.find(user_id, external_pos_id)
            if pos is None:
                raise errors.orders(404, "pos_not_found", f"Point of sale {external_pos_id} not found.")
            now = self.account.clock()
            data = {
                "id": ulid_like("ORDTST01", 22),
                "type": "qr",
                "processing_mode": "automatic",
                "external_reference": body["external_reference"],
                "total_amount": body["total_amount"],
                "expiration_time": body.get("expiration_time", "PT15M"),
                "country_code": ISO3[self.account.site.country],
                "user_id": str(user_id),
                "status": "created",
                "status_detail": "created",
                "currency": self.account.site.currency,
                "created_date": v1_time(now),
                "last_updated_date": v1_time(now),
                "transactions": {
                    "payments": [
                        {
                            "id": ulid_like("PAY01", 24),
                            "amount": body["transactions"]["payments"][0]["amount"],
                            "status": "created",
                            "status_detail": "ready_to_process",
                        }
                    ]
                },
                "config": {"qr": {"external_pos_id": external_pos_id, "mode": "static"}},
            }
            for key in ("description", "items"):
                if key in body:
                    data[key] = copy.deepcopy(body[key])
            order = V1Order(data, total, now + ttl, pos)
            busy = errors.orders(409, "point_of_sale_busy", "The point of sale already has an order.")
            self.points.occupy(pos, order, busy)
            order.scans += len(pos.waiting)  # buyers on the waiting screen get the checkout now [C: DD-events]
            order.phones |= pos.waiting
            pos.waiting.clear()
            self._v1[data["id"]] = order
            return copy.deepcopy(data)

    def get(self, user_id: int, order_id: str) -> dict[str, Any]:
        """``GET /v1/orders/{id}``."""
        with self.account.lock:
            return copy.deepcopy(self._v1_get(user_id, order_id).data)

    def search(self, user_id: int, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /v1/orders?begin_date&end_date[&external_reference][&status]`` [C: R-search, documented for
        online orders]: ``{"data": [...], "paging": {...}}`` with string paging values [C: GO mock, NODE].
        That it finds QR orders too is [inferred: unverified, mp_orders_api.md §4]."""
        begin, end = _rfc3339(query.get("begin_date")), _rfc3339(query.get("end_date"))
        if begin is None or end is None:
            raise errors.orders(400, "missing_required_params", "begin_date and end_date are required (RFC 3339)")
        if end < begin or end - begin > SEARCH_WINDOW:
            raise errors.orders(400, "property_value", "the interval must be at most 30 days")
        with self.account.lock:
            self.account.tick()
            found = [
                copy.deepcopy(o.data) for o in self._v1.values()
                if o.data["user_id"] == str(user_id) and begin <= _rfc3339(o.data["created_date"]) <= end
                and all(o.data.get(k) == query[k] for k in ("external_reference", "status") if k in query)
            ]
        return {"data": found, "paging": {"total": str(len(found)), "total_pages": "1", "offset": "0",
                                          "limit": str(max(30, len(found)))}}

    def cancel(self, user_id: int, order_id: str) -> dict[str, Any]:
        """``POST /v1/orders/{id}/cancel``: only a created order; 409 ``cannot_cancel_order`` otherwise."""
        with self.account.lock:
            order = self._v1_get(user_id, order_id)
            _require(order, "created", "cancel")
            self.end(order, "canceled", "canceled_by_api")
            return copy.deepcopy(order.data)

    def refund(self, user_id: int, order_id: str, body: Any) -> dict[str, Any]:
        """``POST /v1/orders/{id}/refund``: total without a body, partial with ``transactions``. With
        ``refund_delay`` a total refund first answers ``processed/accredited`` with the refund
        ``processing`` [C: G-pp-pt, G-ca], and reaches ``refunded`` later."""
        with self.account.lock:
            order = self._v1_get(user_id, order_id)
            _require(order, "processed", "refund")
            if any(r["status"] == "processing" for r in order.data["transactions"].get("refunds", [])):
                raise errors.orders(409, "cannot_refund_order", "A refund of this order is already processing.")
            payment = order.data["transactions"]["payments"][0]
            amount = self._refund_amount(order, payment["id"], body)
            if amount > order.paid - order.refunded:
                raise errors.orders(400, "refund_amount_exceeds", "The refund exceeds what is left to refund.")
            order.data["transactions"].setdefault("refunds", []).append(
                {
                    "id": ulid_like("REF01", 24),
                    "transaction_id": payment["id"],
                    "reference_id": payment["reference_id"],
                    "amount": self.account.site.api_string(amount),
                    "status": "processing" if self.refund_delay > 0 else "processed",
                }
            )
            order.refunding = amount
            if self.refund_delay > 0:
                self._refunds_due.append((self.account.clock() + self.refund_delay, order))
                order.data["last_updated_date"] = v1_time(self.account.clock())
            else:
                self._refunded(order)
            return copy.deepcopy(order.data)

    def payments(self, user_id: int) -> list[dict[str, Any]]:
        """The seller's Orders-API payments as the Payments API shows them: an order's payment is a Payments
        API payment whose id is the transaction's ``reference_id`` [C: G-pp-pt, refunds carry it]; the
        statuses are the Payments API's words for the order's [inferred]."""
        site = self.account.site
        found = []
        for order in self._v1.values():
            payment = order.data["transactions"]["payments"][0]
            if order.data["user_id"] != str(user_id) or "reference_id" not in payment:
                continue
            status = {"processed": "approved", "refunded": "refunded", "processing": "in_process"}.get(
                payment["status"], "rejected")
            found.append({
                "id": int(payment["reference_id"]), "status": status, "status_detail": payment["status_detail"],
                "transaction_amount": site.api_number(order.paid), "currency_id": site.currency,
                "transaction_amount_refunded": site.api_number(order.refunded),
                "date_created": legacy_time(order.attempts[-1]["t"]) if order.attempts else None,
                "date_approved": legacy_time(order.approved_at) if order.approved_at else None,
                "date_last_updated": order.data["last_updated_date"], "operation_type": "regular_payment",
                "external_reference": order.data["external_reference"], "collector_id": user_id,
                "order": {"id": order.data["id"], "type": "mercadopago"}})
        return found

    # -- the buyer ------------------------------------------------------------------------------------

    def scan(self, order: V1Order, phone: str) -> dict[str, Any]:
        """``phone`` scans the POS while it carries ``order``: the app shows its checkout."""
        order.scans += 1
        order.phones.add(phone)
        return copy.deepcopy(order.data)

    def pay(self, order: V1Order, result: str, amount: int | None) -> dict[str, Any]:
        """The buyer pays an order. Rejected: the order stays created and its API view unchanged [inferred];
        in_process: the order and its payment show processing/in_process until ``decide`` [inferred];
        approved: processed/accredited [C: N-qr]. Only a created order takes a payment [C: S-qr]."""
        if order.data["status"] != "created":
            raise errors.orders(409, "cannot_pay_order", f"An order in status {order.data['status']} cannot be paid.")
        order.scans = max(order.scans, 1)
        now = self.account.clock()
        attempt = {"result": result, "status_detail": {"rejected": "cc_rejected_other_reason"}.get(result, result),
                   "t": now}
        order.attempts.append(attempt)
        if result == "rejected":
            return {"order": copy.deepcopy(order.data), "attempt": dict(attempt)}
        order.paid = order.total if amount is None else amount
        payment = order.data["transactions"]["payments"][0]
        payment["reference_id"] = str(next(self.account.ids.payment))
        if result == "in_process":
            order.data.update(status="processing", status_detail="in_process", last_updated_date=v1_time(now))
            payment.update(status="processing", status_detail="in_process")
            return {"order": copy.deepcopy(order.data), "attempt": dict(attempt)}
        self._approve(order, now)
        return {"order": copy.deepcopy(order.data)}

    def decide(self, payment_id: str, result: str) -> dict[str, Any] | None:
        """A payment in review is decided now; ``None`` when no order of ours carries ``payment_id``."""
        order = next((o for o in self._v1.values() if o.data["transactions"]["payments"][0]["id"] == payment_id
                      or o.data["transactions"]["payments"][0].get("reference_id") == payment_id), None)
        if order is None:
            return None
        if order.data["status"] != "processing":
            status = order.data["status"]
            raise errors.orders(409, "bad_request", f"order {order.data['id']} is {status}, not in review")
        now = self.account.clock()
        if result == "approved":
            self._approve(order, now)
        else:  # the attempt failed: the order waits for another one, as after a rejection [inferred]
            order.paid = 0
            order.data.update(status="created", status_detail="created", last_updated_date=v1_time(now))
            order.data["transactions"]["payments"][0].update(status="created", status_detail="ready_to_process")
        return {"order": copy.deepcopy(order.data)}

    def end(self, order: V1Order, status: str, payment_detail: str) -> None:
        """A final state for a created order (canceled or expired); the payment follows it."""
        order.data.update(status=status, status_detail=status, last_updated_date=v1_time(self.account.clock()))
        order.data["transactions"]["payments"][0].update(status=status, status_detail=payment_detail)
        self._unbind(order)

    # -- bookkeeping ------------------------------------------------------------------------------------

    def _v1_get(self, user_id: int, order_id: str) -> V1Order:
        self.account.tick()
        order = self._v1.get(order_id)
        if order is None or order.data["user_id"] != str(user_id):
            raise errors.orders(404, "order_not_found", f"Order {order_id} not found.")
        return order

    def _approve(self, order: V1Order, now: float) -> None:
        order.approved_at = now
        paid = self.account.site.api_string(order.paid)
        order.data.update(status="processed", status_detail="accredited", total_paid_amount=paid,
                          last_updated_date=v1_time(now))
        order.data["transactions"]["payments"][0].update(
            status="processed",
            status_detail="accredited",
            paid_amount=paid,
            payment_method={"id": "account_money", "type": "account_money", "installments": 1},
        )
        self._unbind(order)

    def _refunded(self, order: V1Order) -> None:
        order.refunded += order.refunding
        order.refunding = 0
        for refund in order.data["transactions"].get("refunds", []):
            refund["status"] = "processed"
        full = order.refunded == order.paid
        order.data.update(status_detail="refunded" if full else "partially_refunded",
                          status="refunded" if full else "processed", last_updated_date=v1_time(self.account.clock()))
        if full:
            order.data["transactions"]["payments"][0].update(status="refunded", status_detail="refunded")

    def _refund_amount(self, order: V1Order, payment_id: str, body: Any) -> int:
        if not body:
            return order.paid - order.refunded
        asked = body.get("transactions") if isinstance(body, dict) else None
        if not isinstance(asked, list) or not asked or not all(isinstance(t, dict) for t in asked):
            raise errors.orders(400, "bad_request", "transactions must be a list of {id, amount}")
        if any(t.get("id") != payment_id for t in asked):
            raise errors.orders(400, "property_value", f"transactions[].id must be {payment_id}")
        return sum(validate.v1_amount(t.get("amount"), self.account.site, "transactions.amount") for t in asked)

    @staticmethod
    def _unbind(order: V1Order) -> None:
        if order.pos is not None and order.pos.slot is order:
            order.pos.slot = None
        order.pos = None


def _require(order: V1Order, status: str, verb: str) -> None:
    """409 ``cannot_<verb>_order`` unless the order is in ``status`` (the Orders API's state machine)."""
    if order.data["status"] != status:
        message = f"An order in status {order.data['status']} cannot be {verb}ed."
        raise errors.orders(409, f"cannot_{verb}_order", message)


def _rfc3339(value: str | None) -> float | None:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
    except ValueError:
        return None
    return when.timestamp() if when is not None and when.tzinfo is not None else None
