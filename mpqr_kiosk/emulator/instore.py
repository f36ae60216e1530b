"""The legacy in-store orders API (mp_api.md §3), merchant orders (§4, §12.1) and the payments they carry.

When a merchant order appears is a mode, because since 2024-08-27 Mercado Pago no longer ties it to the
scan (mp_api.md §12.1, [C] the 2024-07-25 news post): ``at_create`` (when the order is put on the POS,
W-migv2 "is created when the order is generated"), ``at_scan`` (each scan opens one, the pre-2024 rule
[C: DD-ipn-ev]) or ``at_payment`` (only with the first payment). The box must be right under all three.

A buyer is a ``phone``: its scan opens a checkout for the order on the POS at that moment, and it pays that
checkout, even after the order left the POS (a payment that raced the operator's cancel, or a second phone
on the same QR). What Mercado Pago does then is not documented: this emulator accepts the payment
[inferred], so the box is tested against the worse case.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mpqr_kiosk.emulator import errors, validate
from mpqr_kiosk.emulator.account import Account
from mpqr_kiosk.emulator.points import Points, page
from mpqr_kiosk.emulator.records import InstoreOrder, Pos, legacy_time

BUYER_ID = 1192472807
NO_ORDER = ("point_of_sale_in_store_order_not_found", "No associated order found.")
MERCHANT_ORDER_MODES = ("at_create", "at_scan", "at_payment")
RESULTS = ("approved", "rejected", "in_process")
DETAILS = {"approved": "accredited", "rejected": "cc_rejected_other_reason", "in_process": "pending_review_manual"}


@dataclass
class Checkout:
    """What one phone has open after scanning: an order, and the merchant order its payments go to."""

    pos: Pos
    order: InstoreOrder
    mo_id: int | None


class Instore:
    """PUT/GET/DELETE of a POS's order, merchant orders, payments and their refunds."""

    def __init__(self, account: Account, points: Points, merchant_order: str = "at_create",
                 refund_delay: float = 0.0) -> None:
        if merchant_order not in MERCHANT_ORDER_MODES:
            raise ValueError(f"merchant_order must be one of {', '.join(MERCHANT_ORDER_MODES)}, not {merchant_order!r}")
        self.account = account
        self.points = points
        self.mode = merchant_order
        self.refund_delay = refund_delay  # > 0: a refund is in_process for this long [inferred]
        self._mos: dict[int, dict[str, Any]] = {}
        self._payments: dict[int, int] = {}  # payment id -> merchant order id
        self._checkouts: dict[tuple[int, str], Checkout] = {}  # (pos id, phone)
        self._refunds_due: list[tuple[float, int, int]] = []  # (when, payment id, amount)
        self._put: dict[str, list[dict[str, Any]]] = {}  # every distinct order body put, by external_reference
        account.on_tick(self._tick)

    def merchant_orders(self) -> list[dict[str, Any]]:
        return list(self._mos.values())

    def payments(self, user_id: int) -> list[dict[str, Any]]:
        """Every payment of the seller's merchant orders as ``GET /v1/payments/{id}`` shows it."""
        return [{**payment, "external_reference": mo["external_reference"], "collector_id": user_id,
                 "order": {"id": mo["id"], "type": "mercadopago"}}
                for mo in self._mos.values() if mo["collector"]["id"] == user_id for payment in mo["payments"]]

    def orders_put(self, external_reference: str) -> int:
        """How many different orders were put on a POS for one sale (a second one would be a second charge)."""
        with self.account.lock:
            return len(self._put.get(external_reference, []))

    def phones(self, pos: Pos) -> list[str]:
        """The buyers who have the POS's current order open."""
        return sorted(phone for (pos_id, phone), checkout in self._checkouts.items()
                      if pos_id == pos.id and checkout.order is pos.slot)

    # -- the seller's API ---------------------------------------------------------------------------

    def put_order(
        self, user_id: int, external_pos_id: str, body: Any, external_store_id: str | None = None
    ) -> None:
        """``PUT /instore/qr/seller/collectors/{user_id}[/stores/{store}]/pos/{pos}/orders`` (204)."""
        with self.account.lock:
            self.account.tick()
            pos = self.points.pos_for(user_id, external_pos_id, external_store_id)
            total, expires = validate.instore_order(body, self.account.site, self.account.clock())
            if isinstance(pos.slot, InstoreOrder) and pos.slot.body == body:
                return  # the same order again: PUT is idempotent [inferred: naturally so, per POS]
            bodies = self._put.setdefault(body["external_reference"], [])
            if body not in bodies:
                bodies.append(copy.deepcopy(body))
            order = InstoreOrder(copy.deepcopy(body), total, expires)
            busy = errors.legacy(409, "point_of_sale_busy", "The point of sale already has an order.")
            self.points.occupy(pos, order, busy)
            if self.mode == "at_create":
                self._open_mo(pos, order)
            for phone in pos.waiting:  # buyers on the waiting screen get the checkout now [C: DD-events]
                self._checkout(pos, order, phone)
            pos.waiting.clear()

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
        """``DELETE …/pos/{pos}/orders`` (204). Its merchant orders stay as they are, so a checkout already
        open can still pay [inferred: undocumented; the worse case for the box]."""
        with self.account.lock:
            self.account.tick()
            pos = self.points.pos_for(user_id, external_pos_id, external_store_id)
            if not isinstance(pos.slot, InstoreOrder):
                raise errors.legacy(404, *NO_ORDER)
            pos.slot = None

    def search_merchant_orders(self, user_id: int, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /merchant_orders/search``: ``{"elements","next_offset","total"}`` [C: JAVA-mock], or
        ``{"elements": null, "total": 0}`` when nothing matches [inferred: seen in the wild]."""
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
        """``POST /v1/payments/{id}/refunds``: total without ``amount``, else partial (201). With
        ``refund_delay`` the refund answers ``in_process`` and the payment changes only later [inferred]."""
        with self.account.lock:
            self.account.tick()
            payment, mo = self._payment_of(user_id, payment_id)
            if payment["status"] != "approved":
                raise errors.legacy(400, "bad_request", f"A {payment['status']} payment cannot be refunded")
            site = self.account.site
            paid, done = site.from_api(payment["transaction_amount"]), site.from_api(payment["amount_refunded"])
            pending = sum(amount for _, pid, amount in self._refunds_due if pid == payment["id"])
            if body is not None and not isinstance(body, dict):
                raise errors.legacy(400, "bad_request", "body must be a JSON object")
            asked = (body or {}).get("amount")
            amount = paid - done - pending if asked is None else validate.amount(asked, site, "bad_request", "amount")
            if amount <= 0 or amount > paid - done - pending:
                raise errors.legacy(400, "bad_request", "The refund amount exceeds the payment's remaining amount")
            now = self.account.clock()
            if self.refund_delay > 0:
                self._refunds_due.append((now + self.refund_delay, payment["id"], amount))
            else:
                self._refund(payment, mo, amount)
            return {
                "id": next(self.account.ids.refund),
                "payment_id": payment["id"],
                "amount": site.api_number(amount),
                "metadata": {},
                "source": {"id": str(user_id), "name": self.account.user(user_id)["nickname"], "type": "collector"},
                "date_created": legacy_time(now),
                "unique_sequence_number": None,
                "refund_mode": "standard",
                "adjustment_amount": 0,
                "status": "in_process" if self.refund_delay > 0 else "approved",
                "reason": None,
                "labels": [],
                "amount_refunded_to_payer": site.api_number(amount),
            }

    def payment(self, user_id: int, payment_id: str) -> dict[str, Any]:
        """``GET /v1/payments/{id}`` (the fields the merchant order carries, plus its ``external_reference``)."""
        with self.account.lock:
            self.account.tick()
            payment, mo = self._payment_of(user_id, payment_id)
            return copy.deepcopy({**payment, "external_reference": mo["external_reference"],
                                  "order": {"id": mo["id"], "type": "mercadopago"}})

    # -- the buyer ------------------------------------------------------------------------------------

    def scan(self, pos: Pos, order: InstoreOrder, phone: str) -> dict[str, Any] | None:
        """``phone`` scans the POS while it carries ``order``: its checkout (and the merchant order, where
        the mode makes one now)."""
        checkout = self._checkout(pos, order, phone)
        return copy.deepcopy(self._mos[checkout.mo_id]) if checkout.mo_id is not None else None

    def pay(self, pos: Pos, phone: str, result: str, amount: int | None) -> dict[str, Any]:
        """``phone`` pays its checkout (scanning the POS's order first when it has none, or when the POS carries
        another order by now); ``amount`` in minor units, by default what its merchant order still lacks.
        Approved and covering the total closes the merchant order and consumes the POS order; rejected leaves
        both for a retry [C: DD-events]."""
        checkout = self._checkouts.get((pos.id, phone))
        if checkout is None or isinstance(pos.slot, InstoreOrder) and checkout.order is not pos.slot:
            if not isinstance(pos.slot, InstoreOrder):  # (a checkout of an order gone from the POS still pays)
                raise errors.legacy(404, *NO_ORDER)
            checkout = self._checkout(pos, pos.slot, phone)  # another order is on the POS now: the phone sees it
        order = checkout.order
        if order.expired:
            raise errors.legacy(400, "expired_order", "The order has expired and cannot be paid.")  # [inferred]
        mo = self._mos.get(checkout.mo_id) if checkout.mo_id is not None else None
        if mo is None or mo["status"] != "opened":  # at_payment, or a second phone after the first paid
            mo = self._open_mo(pos, order)
            checkout.mo_id = mo["id"]
        value = order.total - self._approved(mo) if amount is None else amount
        payment = self._payment(mo, result, max(value, 1))
        self._settle(pos, order, mo)
        return {"merchant_order": copy.deepcopy(mo), "payment": copy.deepcopy(payment)}

    def decide(self, payment_id: int, result: str) -> dict[str, Any] | None:
        """A payment in review (``in_process``) is decided now; ``None`` when ``payment_id`` is not ours."""
        mo_id = self._payments.get(payment_id)
        if mo_id is None:
            return None
        mo = self._mos[mo_id]
        payment = next(p for p in mo["payments"] if p["id"] == payment_id)
        if payment["status"] != "in_process":
            raise errors.legacy(400, "bad_request", f"payment {payment_id} is {payment['status']}, not in_process")
        now = legacy_time(self.account.clock())
        payment.update(status=result, status_detail=DETAILS[result], last_modified=now,
                       date_approved=now if result == "approved" else None)
        order, pos = self._order_of(mo)
        self._settle(pos, order, mo)
        return {"merchant_order": copy.deepcopy(mo), "payment": copy.deepcopy(payment)}

    def expire(self, pos: Pos | None, order: InstoreOrder) -> list[dict[str, Any]]:
        """The order's time is up: off the POS; its opened merchant orders with nothing approved or in review
        expire [C: W-mo "expired = cancelled order without approved/pending payments"]."""
        if pos is not None and pos.slot is order:
            pos.slot = None
        order.expired = True
        expired = []
        for mo in (self._mos[i] for i in order.mo_ids):
            if mo["status"] == "opened" and not self._approved(mo) and not self._in_review(mo):
                mo.update(status="expired", order_status="expired", last_updated=legacy_time(self.account.clock()))
                self._notify(mo)
                expired.append(mo)
        return expired

    # -- bookkeeping ------------------------------------------------------------------------------------

    def _tick(self) -> None:
        now = self.account.clock()
        for pos in self.points.all():
            order = pos.slot
            if isinstance(order, InstoreOrder) and order.expires_at is not None and order.expires_at <= now:
                self.expire(pos, order)
        due = [r for r in self._refunds_due if r[0] <= now]
        self._refunds_due = [r for r in self._refunds_due if r[0] > now]
        for _, payment_id, amount in due:
            mo = self._mos[self._payments[payment_id]]
            self._refund(next(p for p in mo["payments"] if p["id"] == payment_id), mo, amount)

    def _checkout(self, pos: Pos, order: InstoreOrder, phone: str) -> Checkout:
        """A scan by ``phone``: at_scan opens a merchant order every time [C: DD-ipn-ev], at_create shows the
        order's own, at_payment none yet."""
        old = self._checkouts.get((pos.id, phone))
        mo_id = old.mo_id if old is not None and old.order is order else None
        if self.mode == "at_scan":
            mo_id = self._open_mo(pos, order)["id"]
        elif self.mode == "at_create" and order.mo_ids:
            mo_id = order.mo_ids[0]
        checkout = self._checkouts[(pos.id, phone)] = Checkout(pos, order, mo_id)
        order.scans += 1
        return checkout

    def _order_of(self, mo: dict[str, Any]) -> tuple[InstoreOrder, Pos | None]:
        checkout = next(c for c in self._checkouts.values() if mo["id"] in c.order.mo_ids)
        return checkout.order, checkout.pos

    def _settle(self, pos: Pos | None, order: InstoreOrder, mo: dict[str, Any]) -> None:
        """After a payment changed: the merchant order's amounts and status; a covered order leaves the POS."""
        paid = self._approved(mo)
        mo["paid_amount"] = self.account.site.api_number(paid)
        if paid >= order.total:
            mo.update(status="closed", order_status="paid")
            if pos is not None and pos.slot is order:
                pos.slot = None  # consumed [C: mp_api.md §8 "on close, clear the POS order"]
        elif paid:
            mo["order_status"] = "partially_paid"
        elif self._in_review(mo):
            mo["order_status"] = "payment_in_process"
        self._notify(mo)

    def _payment_of(self, user_id: int, payment_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        mo_id = self._payments.get(int(payment_id)) if payment_id.isdigit() else None
        mo = self._mos.get(mo_id) if mo_id is not None else None
        if mo is None or mo["collector"]["id"] != user_id:
            raise errors.legacy(404, "not_found", "Payment not found")
        return next(p for p in mo["payments"] if p["id"] == int(payment_id)), mo

    def _refund(self, payment: dict[str, Any], mo: dict[str, Any], amount: int) -> None:
        site = self.account.site
        paid, done = site.from_api(payment["transaction_amount"]), site.from_api(payment["amount_refunded"])
        payment["amount_refunded"] = site.api_number(done + amount)
        if done + amount == paid:
            payment.update(status="refunded", status_detail="refunded")
        else:
            payment["status_detail"] = "partially_refunded"
        refunded = sum(site.from_api(p["amount_refunded"]) for p in mo["payments"])
        reverted = refunded >= site.from_api(mo["paid_amount"])
        mo.update(refunded_amount=site.api_number(refunded), last_updated=legacy_time(self.account.clock()),
                  order_status="reverted" if reverted else "partially_reverted")
        self._notify(mo)

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

    @staticmethod
    def _in_review(mo: dict[str, Any]) -> bool:
        return any(p["status"] in ("in_process", "pending") for p in mo["payments"])

    def _payment(self, mo: dict[str, Any], result: str, value: int) -> dict[str, Any]:
        now = legacy_time(self.account.clock())
        payment = {
            "id": next(self.account.ids.payment),
            "transaction_amount": self.account.site.api_number(value),
            "total_paid_amount": self.account.site.api_number(value),
            "shipping_cost": 0,
            "currency_id": self.account.site.currency,
            "status": result,
            "status_detail": DETAILS[result],
            "operation_type": "regular_payment",
            "date_approved": now if result == "approved" else None,
            "date_created": now,
            "last_modified": now,
            "amount_refunded": 0,
        }
        mo["payments"].append(payment)
        mo.update(payer={"id": BUYER_ID, "email": ""}, last_updated=now)
        self._payments[payment["id"]] = mo["id"]
        return payment
