"""Mercado Pago's newer Orders API for QR (``POST /v1/orders``, ``type: "qr"``, static mode; mp_orders_api.md).

An unsure create is resolved by replaying the same key and body, which the API answers with the order the
first request made [C: R-create] — but only while the sale is younger than its time to live: a key lives
24 h and an old replay could create a fresh order [I: mp_api.md §12.3]. Past that, and after a 409
``idempotency_key_already_used`` (a definite answer: the key made something), the order is looked for by
``external_reference`` and read, never created again.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mpqr_kiosk.core.model import Observation, OrderPhase, Payment, PaymentStatus, Sale
from mpqr_kiosk.mercadopago import answers
from mpqr_kiosk.mercadopago.errors import ApiError, BadResponse, NotSent
from mpqr_kiosk.mercadopago.http import HttpClient
from mpqr_kiosk.mercadopago.seller import Seller, item_code
from mpqr_kiosk.ports import PushResult

PHASES = {  # [C: S-qr; generic Orders statuses W-ostatus-gen for processing/action_required/failed]
    "created": OrderPhase.OPEN,
    "processing": OrderPhase.OPEN,
    "action_required": OrderPhase.OPEN,
    "failed": OrderPhase.OPEN,  # a failed attempt: not documented for QR; never a money decision [inferred]
    "processed": OrderPhase.CLOSED,
    "expired": OrderPhase.EXPIRED,
    "canceled": OrderPhase.CANCELLED,
    "refunded": OrderPhase.REFUNDED,
}
PAYMENT_STATUSES: dict[str, PaymentStatus | None] = {  # the transaction's status, in the Payments API's words
    "created": None,  # waiting for the customer: no attempt yet [C: R-create "ready_to_process"]
    "processing": PaymentStatus.IN_PROCESS,
    "action_required": PaymentStatus.PENDING,
    "processed": PaymentStatus.APPROVED,
    "failed": PaymentStatus.REJECTED,
    "rejected": PaymentStatus.REJECTED,
    "canceled": PaymentStatus.CANCELLED,
    "expired": PaymentStatus.CANCELLED,
    "refunded": PaymentStatus.REFUNDED,
}
MAX_ITEMS = 10  # the API's limit; longer sales are sent without item detail
REPLAY_MARGIN = 30.0  # seconds: no replayed create this close to (or past) the sale's expiry
SEARCH_DAYS = 2  # the search window around the sale (the API takes at most 30 days)


class OrdersBackend:
    def __init__(self, client: HttpClient, seller: Seller):
        self.client = client
        self.seller = seller

    def order_body(self, sale: Sale, ttl: float) -> dict:
        site = self.seller.site
        amount = site.api_string(sale.total)
        body = {
            "type": "qr",
            "external_reference": sale.reference,
            "description": self.seller.title(),
            "total_amount": amount,
            "expiration_time": f"PT{max(30, int(sale.ttl or ttl))}S",
            "config": {"qr": {"external_pos_id": self.seller.external_pos_id, "mode": "static"}},
            "transactions": {"payments": [{"amount": amount}]},
        }
        if len(sale.items) <= MAX_ITEMS:
            body["items"] = [
                {
                    "title": item.title[:150],
                    "unit_price": site.api_string(item.unit_price),
                    "quantity": item.quantity,
                    "unit_measure": "unit",
                    "external_code": item_code(item),
                }
                for item in sale.items
            ]
        return body

    def push(self, sale: Sale, ttl: float) -> PushResult:
        if sale.total > self.seller.site.max_amount:
            raise NotSent("POST /v1/orders", message="the total is above this site's bound for one sale; not sent")
        order = self._observe(sale, self._create(sale, ttl))
        return PushResult(order.order_id, order.server_time)

    def recover(self, sale: Sale, ttl: float) -> Observation:
        if sale.expires_at and self.client.server_time() >= sale.expires_at - REPLAY_MARGIN:
            return self._search(sale)  # too old to replay: a replay might create a new order
        try:
            return self._observe(sale, self._create(sale, ttl))
        except ApiError as exc:
            if exc.code != "idempotency_key_already_used":
                raise
            return self._search(sale)  # the key made an order with another body: find it, read it

    def on_pos(self, sale: Sale) -> bool:
        """Does the POS carry the sale's order now? An Orders-API order is on it while it is created."""
        return self.read(sale).phase is OrderPhase.OPEN

    def read(self, sale: Sale) -> Observation:
        if not sale.order_id:
            return self._search(sale)
        return self._observe(sale, self.client.request("GET", f"/v1/orders/{sale.order_id}"))

    def _create(self, sale: Sale, ttl: float) -> Any:
        return self.client.request(
            "POST", "/v1/orders", json=self.order_body(sale, ttl),
            headers={"X-Idempotency-Key": sale.idempotency_key},
        )

    def _search(self, sale: Sale) -> Observation:
        """The orders that name the sale (``GET /v1/orders``, documented for online orders; for QR it is the
        fallback): none is ABSENT; one is read; several have their payments seen together."""
        what = "GET /v1/orders"
        created = datetime.fromtimestamp(sale.created_at, UTC)
        params = {"external_reference": sale.reference,
                  "begin_date": _rfc3339(created - timedelta(days=1)),
                  "end_date": _rfc3339(created + timedelta(days=SEARCH_DAYS - 1))}
        body = answers.mapping(self.client.request("GET", "/v1/orders", params=params), what, "the search answer")
        found = [answers.mapping(o, what, "an order") for o in answers.listing(body.get("data"), what, "data")]
        ids = [answers.identifier(o.get("id"), answers.ORDER_ID, what, "an order id") for o in found
               if o.get("external_reference", sale.reference) == sale.reference]
        if not ids:
            return Observation(OrderPhase.ABSENT, server_time=self.client.server_time())
        seen = [self._observe(sale, self.client.request("GET", f"/v1/orders/{i}"), i) for i in ids[:3]]
        if len(seen) == 1:
            return seen[0]
        phases = [s.phase for s in seen]
        phase = OrderPhase.CLOSED if OrderPhase.CLOSED in phases else OrderPhase.OPEN
        payments = tuple(p for s in seen for p in s.payments)
        return Observation(phase, payments, seen[0].order_id, seen[-1].server_time)

    def _observe(self, sale: Sale, body: Any, order_id: str = "") -> Observation:
        """An order as the API shows it: its id, its sale, a known status and every payment, all checked."""
        what = "/v1/orders"
        order = answers.mapping(body, what, "the order")
        found = answers.identifier(order.get("id"), answers.ORDER_ID, what, "the order id")
        expected = order_id or sale.order_id
        answers.require(not expected or found == expected, what, "the answer is about another order")
        answers.require(order.get("external_reference") == sale.reference, what, "the order names another sale")
        phase = PHASES.get(order.get("status")) if isinstance(order.get("status"), str) else None
        answers.require(phase is not None, what, f"unknown order status {answers.shown(order.get('status'))}")
        transactions = answers.mapping(order.get("transactions") or {}, what, "transactions")
        payments = []
        for raw in answers.listing(transactions.get("payments"), what, "payments"):
            payment = self._payment(answers.mapping(raw, what, "a payment"), what)
            if payment is not None:
                payments.append(payment)
        return Observation(phase, tuple(payments), found, self.client.server_time())

    def _payment(self, raw: dict[str, Any], what: str) -> Payment | None:
        word = raw.get("status")
        answers.require(isinstance(word, str) and word in PAYMENT_STATUSES, what,
                        f"unknown payment status {answers.shown(word)}")
        status = PAYMENT_STATUSES[word]
        if status is None:
            return None
        nested = raw.get("reference")  # the webhook's reference.id; GET has reference_id [C: N-qr; I: MATE]
        reference = raw.get("reference_id") or (nested.get("id") if isinstance(nested, dict) else None) or raw.get("id")
        paid = status is PaymentStatus.APPROVED and "paid_amount" in raw
        value = raw.get("paid_amount") if paid else raw.get("amount")
        return Payment(answers.identifier(reference, answers.PAYMENT_ID, what, "the payment id"), status,
                       answers.amount(value, self.seller.site, what, "the payment amount"))

    def cancel(self, sale: Sale) -> None:
        order_id = sale.order_id or self._search(sale).order_id
        if not order_id:
            return  # no order was ever made: nothing to cancel; the read that follows decides
        try:
            self.client.request("POST", f"/v1/orders/{order_id}/cancel",
                                headers={"X-Idempotency-Key": f"{sale.idempotency_key}-cancel"})
        except ApiError as exc:
            if exc.status != 409:
                raise
            # 409: no longer cancellable (paid, expired, a payment under way: the read that follows decides) —
            # unless the order is in fact still created and untouched, and then the cancel must go again
            seen = self.read(replace(sale, order_id=order_id))
            if seen.phase is OrderPhase.OPEN and not seen.payments:
                raise ApiError(exc.what, 0, exc.code, "the cancel was refused but the order is still open") from None

    def refund(self, sale: Sale) -> None:
        """A total refund of the order (its one payment); asking again is safe (same idempotency key)."""
        order_id = sale.order_id or self._search(sale).order_id
        if not order_id:
            raise BadResponse("POST /v1/orders/refund", message="no order found for this sale")
        try:
            self.client.request("POST", f"/v1/orders/{order_id}/refund",
                                headers={"X-Idempotency-Key": f"{sale.idempotency_key}-refund"})
        except ApiError as exc:
            if exc.status != 409:  # already refunded or a refund in progress: a read confirms which
                raise

    def probe(self) -> float:
        answers.mapping(self.client.request("GET", "/users/me"), "GET /users/me", "the account")
        return self.client.server_time()


def _rfc3339(when: datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")
