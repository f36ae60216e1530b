"""The seed's attended model ("Instore Orders V2"): one order on the POS's static QR, and the merchant orders
that carry its payments (mp_api.md §3-§4, §12).

A merchant order may appear when the order is created, at a scan, or only with the first payment (§12.1), and
one sale may have several (one per scan, or a second phone on the same QR): every read looks at all of them,
every page, and the core sees every payment; a merchant order's existence decides nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mpqr_kiosk.core.model import Observation, OrderPhase, Payment, PaymentStatus, Sale
from mpqr_kiosk.mercadopago import answers
from mpqr_kiosk.mercadopago.errors import ApiError, NotFound, NotSent
from mpqr_kiosk.mercadopago.http import HttpClient
from mpqr_kiosk.mercadopago.seller import Seller, item_code
from mpqr_kiosk.ports import PushResult

MERCHANT_ORDER_STATUSES = {"opened": OrderPhase.OPEN, "closed": OrderPhase.CLOSED, "expired": OrderPhase.EXPIRED}
STATUS_WORDS = frozenset(s.value for s in PaymentStatus)
MAX_PAGES = 10  # merchant orders of one sale: one per scan at most; ten pages of them is not a sale
PAGE = 50


class InstoreBackend:
    """``PUT/GET/DELETE …/pos/{external_pos_id}/orders``, ``/merchant_orders`` and payment refunds."""

    def __init__(self, client: HttpClient, seller: Seller):
        self.client = client
        self.seller = seller
        self.orders_path = (
            f"/instore/qr/seller/collectors/{seller.user_id}/pos/{seller.external_pos_id}/orders"
        )

    def order_body(self, sale: Sale, ttl: float) -> dict:
        """The documented PUT body; amounts are numbers in major units; the expiry is the sale's own, fixed
        when it started (on the API server's clock), so a second PUT never gives it a fresh timeout."""
        site = self.seller.site
        expires = datetime.fromtimestamp(sale.expires_at or self.client.server_time() + ttl, UTC)
        body = {
            "external_reference": sale.reference,
            "title": self.seller.title(),
            "description": self.seller.title(),
            "expiration_date": expires.isoformat(timespec="milliseconds"),
            "total_amount": site.api_number(sale.total),
            "items": [
                {
                    "sku_number": item_code(item),
                    "category": "others",
                    "title": item.title[:60],
                    "description": item.title[:60],
                    "unit_price": site.api_number(item.unit_price),
                    "quantity": item.quantity,
                    "unit_measure": "unit",
                    "total_amount": site.api_number(item.amount),
                }
                for item in sale.items
            ],
        }
        if self.seller.notification_url:
            body["notification_url"] = self.seller.notification_url
        return body

    def push(self, sale: Sale, ttl: float) -> PushResult:
        what = f"PUT {self.orders_path}"
        if sale.total > self.seller.site.max_amount:
            raise NotSent(what, message="the total is above this site's bound for one sale; not sent")
        if sale.expires_at and sale.expires_at <= self.client.server_time():
            raise NotSent(what, message="the sale's time is up: not put on the QR again")
        self.client.request("PUT", self.orders_path, json=self.order_body(sale, ttl))
        return PushResult("", self.client.server_time())

    def recover(self, sale: Sale, ttl: float) -> Observation:
        """Did an unsure PUT land? It did if the POS carries it, or if any merchant order names the sale."""
        ours = self.on_pos(sale)
        merchant_orders = self._merchant_orders(sale)
        seen = self._observe(sale, merchant_orders)
        if ours or merchant_orders:
            return seen
        return Observation(OrderPhase.ABSENT, server_time=seen.server_time)

    def read(self, sale: Sale) -> Observation:
        return self._observe(sale, self._merchant_orders(sale))

    def on_pos(self, sale: Sale) -> bool:
        """Does the POS carry the sale's order now (``GET`` of the POS's order: 404 when it has none)?"""
        what = f"GET {self.orders_path}"
        try:
            found = answers.listing(self.client.request("GET", self.orders_path), what, "the POS's orders")
        except NotFound:
            return False
        return any(isinstance(o, dict) and o.get("external_reference") == sale.reference for o in found)

    def _merchant_orders(self, sale: Sale) -> list[dict[str, Any]]:
        """Every merchant order that names the sale, every page of the search."""
        what = "GET /merchant_orders/search"
        found: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            params = {"external_reference": sale.reference, "offset": len(found), "limit": PAGE}
            body = answers.mapping(self.client.request("GET", "/merchant_orders/search", params=params), what,
                                   "the search answer")
            answers.require("elements" in body, what, "the answer has no elements")
            elements = answers.listing(body["elements"], what, "elements")
            total = body.get("total", len(found) + len(elements))
            answers.require(isinstance(total, int) and not isinstance(total, bool) and total >= 0, what,
                            "total is not a count")
            found += [answers.mapping(mo, what, "a merchant order") for mo in elements]
            if not elements or len(found) >= total:
                return found
        raise ApiError(what, message=f"more than {MAX_PAGES} pages of merchant orders for one sale")

    def _observe(self, sale: Sale, merchant_orders: list[dict[str, Any]]) -> Observation:
        what = "GET /merchant_orders/search"
        payments: dict[str, Payment] = {}
        phases = []
        closed_id = ""
        for mo in merchant_orders:
            answers.require(mo.get("external_reference") == sale.reference, what,
                            "a merchant order names another sale")
            word = mo.get("status")
            phase = MERCHANT_ORDER_STATUSES.get(word) if isinstance(word, str) else None
            answers.require(phase is not None, what, f"unknown merchant order status {answers.shown(word)}")
            mo_id = answers.identifier(mo.get("id"), answers.PAYMENT_ID, what, "the merchant order id")
            if phase is OrderPhase.CLOSED:
                closed_id = closed_id or mo_id
            phases.append(phase)
            for raw in answers.listing(mo.get("payments"), what, "payments"):
                payment = self._payment(answers.mapping(raw, what, "a payment"), what)
                payments[payment.id] = payment
        if OrderPhase.CLOSED in phases:
            phase = OrderPhase.CLOSED
        elif phases and all(p is OrderPhase.EXPIRED for p in phases):
            phase = OrderPhase.EXPIRED
        else:
            phase = OrderPhase.OPEN  # no merchant order yet: nobody has paid (it may appear with the payment)
        return Observation(phase, tuple(payments.values()), closed_id, self.client.server_time())

    def _payment(self, raw: dict[str, Any], what: str) -> Payment:
        status = raw.get("status")
        answers.require(isinstance(status, str) and status in STATUS_WORDS, what,
                        f"unknown payment status {answers.shown(status)}")
        return Payment(answers.identifier(raw.get("id"), answers.PAYMENT_ID, what, "a payment id"),
                       PaymentStatus(status),
                       answers.amount(raw.get("transaction_amount"), self.seller.site, what, "transaction_amount"))

    def cancel(self, sale: Sale) -> None:
        try:
            self.client.request("DELETE", self.orders_path)
        except NotFound:
            pass  # already gone: paid, expired or deleted; the read that follows decides

    def refund(self, sale: Sale) -> None:
        """Refund every approved payment of the sale (all its merchant orders, read fresh), each with its own
        idempotency key so that sending it again never refunds twice."""
        approved = [p for p in self.read(sale).payments if p.status is PaymentStatus.APPROVED]
        for payment in approved:
            self.client.request("POST", f"/v1/payments/{payment.id}/refunds", json={},
                                headers={"X-Idempotency-Key": f"{sale.idempotency_key}-refund-{payment.id}"})

    def probe(self) -> float:
        answers.mapping(self.client.request("GET", "/users/me"), "GET /users/me", "the account")
        return self.client.server_time()
