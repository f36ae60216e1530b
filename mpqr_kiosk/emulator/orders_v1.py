"""The Orders API for QR (``/v1/orders``, ``type: "qr"``, static mode).

Statuses follow mp_orders_api.md: created → processed/accredited | canceled | expired;
processed → refunded (or processed/partially_refunded).
"""

from __future__ import annotations

import copy
from typing import Any

from mpqr_kiosk.emulator import errors, validate
from mpqr_kiosk.emulator.account import Account
from mpqr_kiosk.emulator.points import Points
from mpqr_kiosk.emulator.records import ISO3, V1Order, ulid_like, v1_time


class OrdersV1:
    """``/v1/orders`` on top of the POS table."""

    def __init__(self, account: Account, points: Points) -> None:
        self.account = account
        self.points = points
        self._v1: dict[str, V1Order] = {}
        account.on_tick(self._expire_due)

    def orders(self) -> list[V1Order]:
        return list(self._v1.values())

    def _expire_due(self) -> None:
        now = self.account.clock()
        for order in self._v1.values():
            if order.data["status"] == "created" and order.expires_at <= now:
                self.end(order, "expired", "expired")

    def create(self, user_id: int, body: Any) -> dict[str, Any]:
        """``POST /v1/orders`` (201): a created order on ``config.qr.external_pos_id``."""
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
            if pos.waiting:
                pos.waiting = False
                order.scans += 1
            self._v1[data["id"]] = order
            return copy.deepcopy(data)

    def scan(self, order: V1Order) -> dict[str, Any]:
        """The buyer scans the POS while it carries ``order``: the app shows its checkout."""
        order.scans += 1
        return copy.deepcopy(order.data)

    def _v1_get(self, user_id: int, order_id: str) -> V1Order:
        self.account.tick()
        order = self._v1.get(order_id)
        if order is None or order.data["user_id"] != str(user_id):
            raise errors.orders(404, "order_not_found", f"Order {order_id} not found.")
        return order

    def get(self, user_id: int, order_id: str) -> dict[str, Any]:
        """``GET /v1/orders/{id}``."""
        with self.account.lock:
            return copy.deepcopy(self._v1_get(user_id, order_id).data)

    def cancel(self, user_id: int, order_id: str) -> dict[str, Any]:
        """``POST /v1/orders/{id}/cancel``: only a created order; 409 ``cannot_cancel_order`` otherwise."""
        with self.account.lock:
            order = self._v1_get(user_id, order_id)
            _require(order, "created", "cancel")
            self.end(order, "canceled", "canceled_by_api")
            return copy.deepcopy(order.data)

    def refund(self, user_id: int, order_id: str, body: Any) -> dict[str, Any]:
        """``POST /v1/orders/{id}/refund``: total without a body, partial with ``transactions``."""
        with self.account.lock:
            order = self._v1_get(user_id, order_id)
            _require(order, "processed", "refund")
            payment = order.data["transactions"]["payments"][0]
            amount = self._refund_amount(order, payment["id"], body)
            if amount > order.paid - order.refunded:
                raise errors.orders(
                    400, "refund_amount_exceeds", "The refund exceeds what is left to refund."
                )
            order.refunded += amount
            refunds = order.data["transactions"].setdefault("refunds", [])
            refunds.append(
                {
                    "id": ulid_like("REF01", 24),
                    "transaction_id": payment["id"],
                    "reference_id": payment["reference_id"],
                    "amount": self.account.site.api_string(amount),
                    "status": "processed",
                }
            )
            full = order.refunded == order.paid
            order.data.update(
                status_detail="refunded" if full else "partially_refunded",
                status="refunded" if full else "processed",
                last_updated_date=v1_time(self.account.clock()),
            )
            if full:
                payment.update(status="refunded", status_detail="refunded")
            return copy.deepcopy(order.data)

    def _refund_amount(self, order: V1Order, payment_id: str, body: Any) -> int:
        if not body:
            return order.paid - order.refunded
        asked = body.get("transactions") if isinstance(body, dict) else None
        if not isinstance(asked, list) or not asked or not all(isinstance(t, dict) for t in asked):
            raise errors.orders(400, "bad_request", "transactions must be a list of {id, amount}")
        if any(t.get("id") != payment_id for t in asked):
            raise errors.orders(400, "property_value", f"transactions[].id must be {payment_id}")
        return sum(validate.v1_amount(t.get("amount"), self.account.site, "transactions.amount") for t in asked)

    def pay(self, order: V1Order, result: str, amount: int | None) -> dict[str, Any]:
        """The buyer pays an Orders-API order. A rejection leaves the order created and the API view
        unchanged (Mercado Pago documents no field for it); the attempt is kept in ``attempts``."""
        order.scans = max(order.scans, 1)
        now = self.account.clock()
        if result == "rejected":
            attempt = {"result": "rejected", "status_detail": "cc_rejected_other_reason", "t": now}
            order.attempts.append(attempt)
            return {"order": copy.deepcopy(order.data), "attempt": dict(attempt)}
        order.paid = order.total if amount is None else amount
        paid = self.account.site.api_string(order.paid)
        order.data.update(
            status="processed",
            status_detail="accredited",
            total_paid_amount=paid,
            last_updated_date=v1_time(now),
        )
        order.data["transactions"]["payments"][0].update(
            status="processed",
            status_detail="accredited",
            reference_id=str(next(self.account.ids.payment)),
            paid_amount=paid,
            payment_method={"id": "account_money", "type": "account_money", "installments": 1},
        )
        order.attempts.append({"result": "approved", "status_detail": "accredited", "t": now})
        self._unbind(order)
        return {"order": copy.deepcopy(order.data)}

    def end(self, order: V1Order, status: str, payment_detail: str) -> None:
        """A final state for a created order (canceled or expired); the payment follows it."""
        order.data.update(status=status, status_detail=status, last_updated_date=v1_time(self.account.clock()))
        order.data["transactions"]["payments"][0].update(status=status, status_detail=payment_detail)
        self._unbind(order)

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
