"""Who the box sells as: the collector, its store and POS, the site, and how orders are titled."""

from __future__ import annotations

from dataclasses import dataclass

from mpqr_kiosk.core.sites import Site

TITLE = {"pt": "Venda", "es": "Venta"}


@dataclass(frozen=True)
class Seller:
    user_id: int
    external_store_id: str
    external_pos_id: str
    site: Site
    notification_url: str
    shop_name: str

    def title(self) -> str:
        return f"{TITLE.get(self.site.language, TITLE['es'])} {self.shop_name}"[:60]
