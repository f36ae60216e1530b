"""Mercado Pago's newer Orders API for QR (``POST /v1/orders``, ``type: "qr"``, static mode; mp_orders_api.md)."""

from __future__ import annotations

from mpqr_kiosk.core.model import Observation, OrderPhase, Payment, PaymentStatus, Sale
from mpqr_kiosk.mercadopago.errors import ApiError
from mpqr_kiosk.mercadopago.http import HttpClient
from mpqr_kiosk.mercadopago.seller import Seller
from mpqr_kiosk.ports import PushResult

PHASES = {
    "created": OrderPhase.OPEN,
    "processing": OrderPhase.OPEN,
    "action_required": OrderPhase.OPEN,
    "processed": OrderPhase.CLOSED,
    "expired": OrderPhase.EXPIRED,
    "canceled": OrderPhase.CANCELLED,
    "refunded": OrderPhase.REFUNDED,
    "failed": OrderPhase.OPEN,
}
PAYMENT_STATUSES: dict[str, PaymentStatus | None] = {  # the transaction's status, in the Payments API's words
    "created": None,
    "processing": PaymentStatus.IN_PROCESS,
    "action_required": PaymentStatus.IN_PROCESS,
    "processed": PaymentStatus.APPROVED,
    "failed": PaymentStatus.REJECTED,
    "rejected": PaymentStatus.REJECTED,
    "canceled": PaymentStatus.CANCELLED,
    "expired": PaymentStatus.CANCELLED,
    "refunded": PaymentStatus.REFUNDED,
}
MAX_ITEMS = 10  # the API's limit; longer sales are sent without item detail


class OrdersBackend:
    """Create with the journaled ``X-Idempotency-Key``; an indeterminate create is resolved by replaying
    the same key and body, which the API answers with the order the first request made."""

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
            "expiration_time": f"PT{max(30, int(ttl))}S",
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
                    "external_code": (item.sku or item.code)[:30],
                }
                for item in sale.items
            ]
        return body

    def _create(self, sale: Sale, ttl: float) -> dict:
        return self.client.request(
            "POST", "/v1/orders", json=self.order_body(sale, ttl),
            headers={"X-Idempotency-Key": sale.idempotency_key},
        ) or {}

    def push(self, sale: Sale, ttl: float) -> PushResult:
        return PushResult(str(self._create(sale, ttl).get("id", "")), self.client.server_time())

    def recover(self, sale: Sale, ttl: float) -> Observation:
        return self._observe(self._create(sale, ttl))

    def read(self, sale: Sale) -> Observation:
        if not sale.order_id:
            raise ApiError("GET /v1/orders", message="no order id journaled for this sale")
        return self._observe(self.client.request("GET", f"/v1/orders/{sale.order_id}") or {})

    def _observe(self, order: dict) -> Observation:
        site = self.seller.site
        phase = PHASES.get(str(order.get("status", "")), OrderPhase.OPEN)
        payments = []
        for p in (order.get("transactions") or {}).get("payments") or []:
            status = PAYMENT_STATUSES.get(str(p.get("status", "")), PaymentStatus.PENDING)
            if status is None:
                continue  # "created": the transaction waits for the customer; no attempt yet
            payments.append(Payment(str(p.get("reference_id") or p.get("id", "")), status,
                                    site.from_api(p.get("paid_amount") or p.get("amount") or 0)))
        return Observation(phase, False, tuple(payments), str(order.get("id", "")), self.client.server_time())

    def cancel(self, sale: Sale) -> None:
        try:
            self.client.request("POST", f"/v1/orders/{sale.order_id}/cancel",
                                headers={"X-Idempotency-Key": f"{sale.idempotency_key}-cancel"})
        except ApiError as exc:
            if exc.status != 409:  # 409: no longer cancellable (paid, expired): the read that follows decides
                raise

    def refund(self, sale: Sale) -> None:
        self.client.request("POST", f"/v1/orders/{sale.order_id}/refund",
                            headers={"X-Idempotency-Key": f"{sale.idempotency_key}-refund"})

    def probe(self) -> dict:
        return self.client.request("GET", "/users/me")
