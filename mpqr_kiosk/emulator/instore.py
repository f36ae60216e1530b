"""The legacy in-store orders API (mp_api.md §3), merchant orders (§4) and the payments they carry."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from typing import Any

from mpqr_kiosk.emulator import errors, validate
from mpqr_kiosk.emulator.account import Account
from mpqr_kiosk.emulator.points import Points, page
from mpqr_kiosk.emulator.records import InstoreOrder, Pos, legacy_time

BUYER_ID = 1192472807
NO_ORDER = ("point_of_sale_in_store_order_not_found", "No associated order found.")


class Instore:
    """PUT/GET/DELETE of a POS's order, merchant orders and payment refunds."""

    def __init__(self, account: Account, points: Points) -> None:
        self.account = account
        self.points = points
        self._mos: dict[int, dict[str, Any]] = {}
        self._payments: dict[int, int] = {}  # payment id -> merchant order id
        account.on_tick(self._expire_due)

    def merchant_orders(self) -> list[dict[str, Any]]:
        return list(self._mos.values())

    def put_order(
        self, user_id: int, external_pos_id: str, body: Any, external_store_id: str | None = None
    ) -> None:
        """``PUT /instore/qr/seller/collectors/{user_id}[/stores/{store}]/pos/{pos}/orders`` (204)."""
        with self.account.lock:
            self.account.tick()
            pos = self.points.pos_for(user_id, external_pos_id, external_store_id)
            total, expires = validate.instore_order(body, self.account.site, self.account.clock())
            if isinstance(pos.slot, InstoreOrder) and pos.slot.body == body:
                return  # the same order again: PUT is idempotent
            order = InstoreOrder(copy.deepcopy(body), total, expires)
            busy = errors.legacy(409, "point_of_sale_busy", "The point of sale already has an order.")
            self.points.occupy(pos, order, busy)
            if pos.waiting:  # a buyer was on the waiting screen: the order reaches the app now
                pos.waiting = False
                self._open_mo(pos, order)

    def get_order(
        self, user_id: int, external_pos_id: str, external_store_id: str | None = None
    ) -> list[dict[str, Any]]:
        """``GET …/pos/{pos}/orders``: ``[order]``, or 404 when the POS has no in-store order."""
        with self.account.lock:
            self.account.tick()
            pos = self.points.pos_for(user_id, external_pos_id, external_store_id)
            if not isinstance(pos.slot, InstoreOrder):
                raise errors.legacy(404, *NO_ORDER)
            return [copy.deepcopy({**pos.slot.body, "user_id": user_id, "external_pos_id": external_pos_id})]

    def delete_order(self, user_id: int, external_pos_id: str, external_store_id: str | None = None) -> None:
        """``DELETE …/pos/{pos}/orders`` (204); its merchant orders stay as they are."""
        with self.account.lock:
            self.account.tick()
            pos = self.points.pos_for(user_id, external_pos_id, external_store_id)
            if not isinstance(pos.slot, InstoreOrder):
                raise errors.legacy(404, *NO_ORDER)
            pos.slot = None

    def _expire_due(self) -> None:
        now = self.account.clock()
        for pos in self.points.all():
            order = pos.slot
            if isinstance(order, InstoreOrder) and order.expires_at is not None and order.expires_at <= now:
                self.expire(pos, order)

    def scan(self, pos: Pos, order: InstoreOrder) -> dict[str, Any]:
        """The buyer scans the POS while it carries ``order``: a merchant order for this scan."""
        return self._open_mo(pos, order)

    def _open_mo(self, pos: Pos, order: InstoreOrder) -> dict[str, Any]:
        now, body = legacy_time(self.account.clock()), order.body
        mo_id = next(self.account.ids.merchant_order)
        mo = {
            "id": mo_id,
            "status": "opened",
            "external_reference": body["external_reference"],
            "preference_id": f"{pos.user_id}-{uuid.uuid4()}",
            "payments": [],
            "shipments": [],
            "payouts": [],
            "collector": {"id": pos.user_id, "email": "", "nickname": self.account.user(pos.user_id)["nickname"]},
            "marketplace": "NONE",
            "notification_url": body.get("notification_url"),
            "date_created": now,
            "last_updated": now,
            "sponsor_id": (body.get("sponsor") or {}).get("id"),
            "shipping_cost": 0,
            "total_amount": self.account.site.api_number(order.total),
            "site_id": self.account.site.id,
            "paid_amount": 0,
            "refunded_amount": 0,
            "payer": None,
            "items": [self._mo_item(i) for i in body.get("items") or []],
            "cancelled": False,
            "additional_info": "",
            "application_id": None,
            "order_status": "payment_required",
            "is_test": False,
        }
        self._mos[mo_id] = mo
        order.mo_ids.append(mo_id)
        self._notify(mo)
        return mo

    def _mo_item(self, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": item.get("sku_number", ""),
            "category_id": item.get("category", ""),
            "currency_id": self.account.site.currency,
            "description": item.get("description", ""),
            "picture_url": None,
            "title": item.get("title", ""),
            "quantity": item["quantity"],
            "unit_price": item["unit_price"],
        }

    def _notify(self, mo: dict[str, Any]) -> None:
        self.account.notifier.merchant_order(
            mo["notification_url"], mo["id"], f"{self.account.base_url}/merchant_orders/{mo['id']}"
        )

    def _approved(self, mo: dict[str, Any]) -> int:
        approved = [p for p in mo["payments"] if p["status"] in ("approved", "refunded")]
        return sum(self.account.site.from_api(p["transaction_amount"]) for p in approved)

    def search_merchant_orders(self, user_id: int, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /merchant_orders/search``: ``{"elements","next_offset","total"}``, or
        ``{"elements": null, "total": 0}`` when nothing matches (as Mercado Pago answers)."""
        with self.account.lock:
            self.account.tick()
            keys = [k for k in ("external_reference", "status", "preference_id") if k in query]
            found = [
                mo
                for mo in self._mos.values()
                if mo["collector"]["id"] == user_id and all(str(mo[k]) == query[k] for k in keys)
            ]
            if not found:
                return {"elements": None, "total": 0}
            window = page(found, query, "invalid_offset", "invalid_limit")
            shown = window["results"]
            return {
                "elements": shown,
                "next_offset": window["paging"]["offset"] + len(shown),
                "total": len(found),
            }

    def merchant_order(self, user_id: int, mo_id: str) -> dict[str, Any]:
        """``GET /merchant_orders/{id}``."""
        with self.account.lock:
            self.account.tick()
            mo = self._mos.get(int(mo_id)) if mo_id.isdigit() else None
            if mo is None or mo["collector"]["id"] != user_id:
                raise errors.legacy(404, "not_found", f"Merchant Order {mo_id} not found")
            return copy.deepcopy(mo)

    def refund_payment(self, user_id: int, payment_id: str, body: Any) -> dict[str, Any]:
        """``POST /v1/payments/{id}/refunds``: total without ``amount``, else partial (201)."""
        with self.account.lock:
            mo_id = self._payments.get(int(payment_id)) if payment_id.isdigit() else None
            mo = self._mos.get(mo_id) if mo_id is not None else None
            if mo is None or mo["collector"]["id"] != user_id:
                raise errors.legacy(404, "not_found", "Payment not found")
            payment = next(p for p in mo["payments"] if p["id"] == int(payment_id))
            if payment["status"] != "approved":
                raise errors.legacy(400, "bad_request", f"A {payment['status']} payment cannot be refunded")
            paid = self.account.site.from_api(payment["transaction_amount"])
            done = self.account.site.from_api(payment["amount_refunded"])
            if body is not None and not isinstance(body, dict):
                raise errors.legacy(400, "bad_request", "body must be a JSON object")
            asked = (body or {}).get("amount")
            amount = (
                paid - done if asked is None else validate.amount(asked, self.account.site, "bad_request", "amount")
            )
            if amount > paid - done:
                raise errors.legacy(
                    400, "bad_request", "The refund amount exceeds the payment's remaining amount"
                )
            now = legacy_time(self.account.clock())
            payment["amount_refunded"] = self.account.site.api_number(done + amount)
            if done + amount == paid:
                payment.update(status="refunded", status_detail="refunded")
            else:
                payment["status_detail"] = "partially_refunded"
            refunded = sum(self.account.site.from_api(p["amount_refunded"]) for p in mo["payments"])
            reverted = refunded >= self.account.site.from_api(mo["paid_amount"])
            mo.update(
                refunded_amount=self.account.site.api_number(refunded),
                last_updated=now,
                order_status="reverted" if reverted else "partially_reverted",
            )
            self._notify(mo)
            return {
                "id": next(self.account.ids.refund),
                "payment_id": int(payment_id),
                "amount": self.account.site.api_number(amount),
                "metadata": {},
                "source": {"id": str(user_id), "name": self.account.user(user_id)["nickname"], "type": "collector"},
                "date_created": now,
                "unique_sequence_number": None,
                "refund_mode": "standard",
                "adjustment_amount": 0,
                "status": "approved",
                "reason": None,
                "labels": [],
                "amount_refunded_to_payer": self.account.site.api_number(amount),
            }

    def pay(self, pos: Pos, order: InstoreOrder, result: str, amount: int | None) -> dict[str, Any]:
        """Pay the latest scan's merchant order (scanning first if nobody did); approved and covering
        the total closes it and consumes the POS order; rejected leaves both open for a retry."""
        mo = self._mos[order.mo_ids[-1]] if order.mo_ids else self._open_mo(pos, order)
        value = order.total - self._approved(mo) if amount is None else amount
        payment = self._payment(mo, result, value)
        if result == "approved":
            paid = self._approved(mo)
            mo["paid_amount"] = self.account.site.api_number(paid)
            mo["order_status"] = "paid" if paid >= order.total else "partially_paid"
            if paid >= order.total:
                mo["status"] = "closed"
                pos.slot = None
        self._notify(mo)
        return {"merchant_order": copy.deepcopy(mo), "payment": copy.deepcopy(payment)}

    def _payment(self, mo: dict[str, Any], result: str, value: int) -> dict[str, Any]:
        now, approved = legacy_time(self.account.clock()), result == "approved"
        payment = {
            "id": next(self.account.ids.payment),
            "transaction_amount": self.account.site.api_number(value),
            "total_paid_amount": self.account.site.api_number(value),
            "shipping_cost": 0,
            "currency_id": self.account.site.currency,
            "status": result,
            "status_detail": "accredited" if approved else "cc_rejected_other_reason",
            "operation_type": "regular_payment",
            "date_approved": now if approved else None,
            "date_created": now,
            "last_modified": now,
            "amount_refunded": 0,
        }
        mo["payments"].append(payment)
        mo.update(payer={"id": BUYER_ID, "email": ""}, last_updated=now)
        self._payments[payment["id"]] = mo["id"]
        return payment

    def expire(self, pos: Pos, order: InstoreOrder) -> list[dict[str, Any]]:
        """Take the order off the POS; its opened merchant orders with nothing approved expire."""
        pos.slot = None
        expired = []
        for mo in (self._mos[i] for i in order.mo_ids):
            if mo["status"] == "opened" and not self._approved(mo):
                mo.update(status="expired", order_status="expired", last_updated=legacy_time(self.account.clock()))
                self._notify(mo)
                expired.append(mo)
        return expired
