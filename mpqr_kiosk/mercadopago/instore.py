"""The seed's attended model ("Instore Orders V2"): one order on the POS's static QR, and merchant orders
created by each scan (mp_api.md §3-§4)."""

from __future__ import annotations

from datetime import UTC, datetime

from mpqr_kiosk.core.model import Observation, OrderPhase, Payment, Sale
from mpqr_kiosk.mercadopago.errors import NotFound
from mpqr_kiosk.mercadopago.http import HttpClient
from mpqr_kiosk.mercadopago.seller import Seller
from mpqr_kiosk.ports import PushResult


class InstoreBackend:
    """``PUT/GET/DELETE …/pos/{external_pos_id}/orders`` and ``/merchant_orders``."""

    def __init__(self, client: HttpClient, seller: Seller):
        self.client = client
        self.seller = seller
        self.orders_path = (
            f"/instore/qr/seller/collectors/{seller.user_id}/pos/{seller.external_pos_id}/orders"
        )

    def order_body(self, sale: Sale, ttl: float) -> dict:
        """The documented PUT body; amounts are numbers in major units, the expiry on the server's clock."""
        site = self.seller.site
        expires = datetime.fromtimestamp(self.client.server_time() + ttl, UTC)
        body = {
            "external_reference": sale.reference,
            "title": self.seller.title(),
            "description": self.seller.title(),
            "expiration_date": expires.isoformat(timespec="milliseconds"),
            "total_amount": site.api_number(sale.total),
            "items": [
                {
                    "sku_number": item.sku or item.code or "-",
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
        self.client.request("PUT", self.orders_path, json=self.order_body(sale, ttl))
        return PushResult("", self.client.server_time())

    def recover(self, sale: Sale, ttl: float) -> Observation:
        try:
            on_pos = self.client.request("GET", self.orders_path) or []
        except NotFound:
            on_pos = []
        seen = self.read(sale)
        ours = any(isinstance(o, dict) and o.get("external_reference") == sale.reference for o in on_pos)
        if ours or seen.scanned:
            return seen
        return Observation(OrderPhase.ABSENT, server_time=seen.server_time)

    def read(self, sale: Sale) -> Observation:
        found = self.client.request(
            "GET", "/merchant_orders/search", params={"external_reference": sale.reference}
        )
        now = self.client.server_time()
        merchant_orders = [mo for mo in (found or {}).get("elements") or [] if isinstance(mo, dict)]
        if not merchant_orders:  # {"elements": null, "total": 0}: nobody scanned yet
            return Observation(OrderPhase.OPEN, server_time=now)
        for mo in merchant_orders:
            if mo.get("status") == "closed":
                return Observation(OrderPhase.CLOSED, True, self._payments(mo), str(mo.get("id", "")), now)
        payments = tuple(p for mo in merchant_orders for p in self._payments(mo))
        if all(mo.get("status") == "expired" for mo in merchant_orders):
            return Observation(OrderPhase.EXPIRED, True, payments, server_time=now)
        return Observation(OrderPhase.OPEN, True, payments, server_time=now)

    def _payments(self, mo: dict) -> tuple[Payment, ...]:
        return tuple(
            Payment(str(p.get("id", "")), str(p.get("status", "")),
                    self.seller.site.from_api(p.get("transaction_amount", 0)))
            for p in mo.get("payments") or []
            if isinstance(p, dict)
        )

    def cancel(self, sale: Sale) -> None:
        try:
            self.client.request("DELETE", self.orders_path)
        except NotFound:
            pass  # already gone: paid, expired or deleted; the read that follows decides

    def refund(self, sale: Sale) -> None:
        self.client.request(
            "POST",
            f"/v1/payments/{sale.payment_id}/refunds",
            json={},
            headers={"X-Idempotency-Key": f"{sale.idempotency_key}-refund"},
        )

    def probe(self) -> dict:
        return self.client.request("GET", "/users/me")
