"""Who the box sells as: the collector, its store and POS, the site, and how orders are titled."""

from __future__ import annotations

from dataclasses import dataclass

from mpqr_kiosk.core.model import Item
from mpqr_kiosk.core.sites import Site

TITLE = {"pt": "Venda", "es": "Venta"}
KEYED_CODE = "KEYED"  # an amount keyed at the box has no product code; no item is sent with an empty one


def item_code(item: Item) -> str:
    return (item.sku or item.code or KEYED_CODE)[:30]


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
