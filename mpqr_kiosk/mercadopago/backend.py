"""The one interface the shell uses for Mercado Pago, whichever API (``instore`` or ``orders``) is configured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mpqr_kiosk.config import MercadoPagoConfig
from mpqr_kiosk.core.model import Observation, Sale
from mpqr_kiosk.core.sites import Site, site
from mpqr_kiosk.mercadopago.http import HttpClient

TITLE = {"pt": "Venda", "es": "Venta"}


class Backend(Protocol):
    """Every method raises ``ApiError`` (``.indeterminate`` says whether the outcome is unknown)."""

    client: HttpClient

    def push(self, sale: Sale, ttl: float) -> str:
        """Put the sale's order on the POS; return the API's order id ("" where the API has none)."""

    def recover(self, sale: Sale, ttl: float) -> Observation:
        """After an indeterminate push: is the order there? ``ABSENT`` means it never landed."""

    def read(self, sale: Sale) -> Observation:
        """A fresh read of the order's payments."""

    def cancel(self, sale: Sale) -> None:
        """Delete/cancel the order on the POS; an order already gone is not an error."""

    def refund(self, sale: Sale) -> None:
        """Refund a paid sale in full."""

    def probe(self) -> dict:
        """``GET /users/me``: proves the token works; returns the account."""


@dataclass(frozen=True)
class Seller:
    """Who we sell as: the config's ``[mercadopago]`` identity, resolved."""

    user_id: int
    external_store_id: str
    external_pos_id: str
    site: Site
    notification_url: str
    shop_name: str

    @classmethod
    def from_config(cls, cfg: MercadoPagoConfig, shop_name: str) -> Seller:
        return cls(cfg.user_id, cfg.external_store_id, cfg.external_pos_id, site(cfg.site),
                   cfg.notification_url, shop_name)

    def title(self) -> str:
        return f"{TITLE.get(self.site.language, TITLE['es'])} {self.shop_name}"[:60]


def open_backend(cfg: MercadoPagoConfig, token: str, shop_name: str) -> Backend:
    """The backend named by ``[mercadopago] api``."""
    from mpqr_kiosk.mercadopago.instore import InstoreBackend
    from mpqr_kiosk.mercadopago.orders import OrdersBackend

    client = HttpClient(cfg.api_base, token)
    seller = Seller.from_config(cfg, shop_name)
    backends = {"instore": InstoreBackend, "orders": OrdersBackend}
    return backends[cfg.api](client, seller)
