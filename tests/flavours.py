"""The four ways the box meets Mercado Pago in tests: the in-store API under each merchant-order mode
(mp_api.md §12.1), and the Orders API; and readers of the emulator's state that work for each."""

from __future__ import annotations

FLAVOURS = [("instore", "at_create"), ("instore", "at_scan"), ("instore", "at_payment"), ("orders", "at_create")]
INSTORE = FLAVOURS[:3]


def ids(flavour: tuple[str, str]) -> str:
    return "-".join(flavour) if flavour[0] == "instore" else "orders"


def creates(emulator) -> int:
    """Create requests sent: in-store PUTs, or Orders-API POSTs (a replay with the same key among them)."""
    return sum(1 for r in emulator.requests() if (r["method"], r["path"]) == ("POST", "/v1/orders")
               or r["method"] == "PUT" and r["path"].endswith("/orders"))


def orders_made(emulator, reference: str) -> int:
    """Orders-API orders the API holds for the sale (an in-store POS carries one order at most anyway)."""
    return sum(1 for o in emulator.snapshot()["orders"] if o["external_reference"] == reference)


def on_pos(emulator) -> str | None:
    """The external_reference of the order the POS carries now, whichever API put it there."""
    state = emulator.snapshot()
    slot = state["pos"][0]["order"]
    if slot is None:
        return None
    if slot["api"] == "instore":
        return slot["order"]["external_reference"]
    return next(o["external_reference"] for o in state["orders"] if o["id"] == slot["id"])


def cancels(emulator) -> int:
    return sum(1 for r in emulator.requests() if r["method"] == "DELETE" and r["path"].endswith("/orders")
               or r["method"] == "POST" and r["path"].endswith("/cancel"))


def refunded_at_the_api(emulator, reference: str) -> bool:
    state = emulator.snapshot()
    payments = [p for mo in state["merchant_orders"] if mo["external_reference"] == reference for p in mo["payments"]]
    orders = [o for o in state["orders"] if o["external_reference"] == reference]
    return any(p["status"] == "refunded" for p in payments) or any(o["status"] == "refunded" for o in orders)
