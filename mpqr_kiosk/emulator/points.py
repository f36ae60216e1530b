"""Stores and points of sale (mp_api.md §2): each POS gets a static EMVCo payload and holds at most one
order at a time, whichever API put it there."""

from __future__ import annotations

import copy
import io
import uuid
from collections.abc import Mapping
from typing import Any

import qrcode

from mpqr_kiosk import emvco
from mpqr_kiosk.emulator import errors, validate
from mpqr_kiosk.emulator.account import Account
from mpqr_kiosk.emulator.records import (
    CAPITAL,
    CAPITAL_LOCATION,
    COUNTRY_BOX,
    InstoreOrder,
    Pos,
    Store,
    V1Order,
    legacy_time,
)


class Points:
    """``/users/{id}/stores``, ``/pos`` and the POS QR images.

    ``busy_pos`` is what a new order on a POS that has one does: ``"replace"`` it or answer ``"409"``
    (undocumented for both APIs: mp_api.md §3.2, mp_orders_api.md §3; inferred, so both are offered).
    """

    def __init__(self, account: Account, busy_pos: str = "replace") -> None:
        if busy_pos not in ("replace", "409"):
            raise ValueError(f"busy_pos must be 'replace' or '409', not {busy_pos!r}")
        self.account = account
        self.busy_pos = busy_pos
        self._stores: dict[int, Store] = {}
        self._pos: dict[int, Pos] = {}
        self._pos_by_ext: dict[tuple[int, str], Pos] = {}
        self._png: dict[int, bytes] = {}

    def seed(self, user_id: int) -> None:
        """Store ``STORE001`` and POS ``POS001`` for ``user_id``."""
        spanish = self.account.site.language == "es"
        street, number, city, state, lat, lon = CAPITAL_LOCATION[self.account.site.country]
        location = {"street_name": street, "street_number": number, "city_name": city, "state_name": state,
                    "latitude": lat, "longitude": lon, "reference": ""}
        hours = {day: [{"open": "08:00", "close": "20:00"}] for day in ("monday", "tuesday", "wednesday")}
        self.create_store(user_id, {"name": "Tienda de Prueba" if spanish else "Loja de Teste",
                                    "external_id": "STORE001", "location": location, "business_hours": hours})
        self.create_pos(user_id, {"name": "Caja 1" if spanish else "Caixa 1", "fixed_amount": True,
                                  "external_store_id": "STORE001", "external_id": "POS001"})

    def create_store(self, user_id: int, body: Any) -> dict[str, Any]:
        """``POST /users/{user_id}/stores``."""
        validate.store(body, COUNTRY_BOX[self.account.site.country])
        with self.account.lock:
            ext = body.get("external_id")
            if ext is not None and self._store_by_ext(user_id, ext):
                raise errors.legacy(409, "conflict", "A store with the same EXTERNAL_ID already exists")
            where = body.get("location") if isinstance(body.get("location"), dict) else {}
            street = " ".join(str(where[k]) for k in ("street_name", "street_number") if where.get(k))
            parts = [street] + [str(where[k]) for k in ("city_name", "state_name") if where.get(k)]
            store = Store(next(self.account.ids.store), user_id, emvco.ascii_fold(where["city_name"], 15) or "", {})
            store.data = {
                "id": store.id,
                "name": body["name"],
                "date_creation": legacy_time(self.account.clock()),
                "business_hours": body.get("business_hours", {}),
                "external_id": ext,
                "location": {
                    "address_line": ", ".join(p for p in parts if p),
                    "reference": where.get("reference"),
                    "latitude": where.get("latitude"),
                    "longitude": where.get("longitude"),
                },
            }
            self._stores[store.id] = store
            return copy.deepcopy(store.data)

    def _store_by_ext(self, user_id: int, external_id: str) -> Store | None:
        return next(
            (
                s
                for s in self._stores.values()
                if s.user_id == user_id and s.data["external_id"] == external_id
            ),
            None,
        )

    def search_stores(self, user_id: int, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /users/{user_id}/stores/search?external_id=&offset=&limit=``."""
        with self.account.lock:
            found = [
                s.data
                for s in self._stores.values()
                if s.user_id == user_id and query.get("external_id") in (None, s.data["external_id"])
            ]
            return page(found, query, "INVALID_OFFSET", "INVALID_LIMIT")

    def create_pos(self, user_id: int, body: Any) -> dict[str, Any]:
        """``POST /pos``: the POS and its static EMVCo payload (served as a PNG at ``qr.image``)."""
        validate.pos(body)
        with self.account.lock:
            store = self._pos_store(user_id, body)
            if (user_id, body["external_id"]) in self._pos_by_ext:
                raise errors.legacy(409, "conflict", "A pos with the same EXTERNAL_ID already exists")
            pos_id, now = next(self.account.ids.pos), legacy_time(self.account.clock())
            name = store.data["name"] if emvco.ascii_fold(store.data["name"], 25) else "Mercado Pago"
            city = store.city if emvco.ascii_fold(store.city, 15) else CAPITAL[self.account.site.country]
            payload = emvco.build_static(pos_id, self.account.site, name, city)
            data = {
                "id": pos_id,
                "user_id": user_id,
                "name": body["name"],
                "fixed_amount": body.get("fixed_amount", False),
                "category": body.get("category"),
                "store_id": str(store.id),
                "external_store_id": store.data["external_id"],
                "external_id": body["external_id"],
                "status": "active",
                "uuid": uuid.uuid4().hex + uuid.uuid4().hex,
                "date_created": now,
                "date_last_updated": now,
            }
            if "url" in body:
                data["url"] = body["url"]
            pos = Pos(pos_id, user_id, store, payload, data)
            self._pos[pos_id] = self._pos_by_ext[(user_id, body["external_id"])] = pos
            return self.view(pos)

    def _pos_store(self, user_id: int, body: dict[str, Any]) -> Store:
        by_ext = by_id = None
        if "external_store_id" in body:
            by_ext = self._store_by_ext(user_id, body["external_store_id"])
            if by_ext is None:
                raise errors.legacy(400, "INEXISTENT_EXTERNAL_STORE_ID", "external_store_id names no store")
        if "store_id" in body:
            by_id = self._stores.get(int(body["store_id"]))
            if by_id is None or by_id.user_id != user_id:
                raise errors.legacy(400, "INVALID_STORE_ID", "store_id names no store of this user")
        if by_ext and by_id and by_ext is not by_id:
            raise errors.legacy(400, "EXTERNAL_STORE_ID_NOT_MATCH", "store_id and external_store_id differ")
        store = by_ext or by_id
        if store is None:
            raise errors.legacy(400, "INEXISTENT_EXTERNAL_STORE_ID", "external_store_id is required")
        return store

    def view(self, pos: Pos) -> dict[str, Any]:
        base = f"{self.account.base_url}/instore/merchant/qr/{pos.id}"
        uid = pos.data["uuid"]
        qr = {
            "image": f"{base}/{uid}.png",
            "template_document": f"{base}/template_{uid}.pdf",
            "template_image": f"{base}/template_{uid}.png",
        }
        return copy.deepcopy({**pos.data, "qr": qr})

    def search_pos(self, user_id: int, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /pos?external_id=&external_store_id=&store_id=&category=``."""
        with self.account.lock:
            keys = [k for k in ("external_id", "external_store_id", "store_id", "category") if k in query]
            found = [
                self.view(p)
                for p in self._pos.values()
                if p.user_id == user_id and all(str(p.data[k]) == query[k] for k in keys)
            ]
            return page(found, query, "INVALID_OFFSET", "INVALID_LIMIT")

    def get_pos(self, user_id: int, pos_id: str) -> dict[str, Any]:
        """``GET /pos/{id}``."""
        if not pos_id.isdigit():
            raise errors.legacy(400, "INVALID_POS_ID", "pos id must be numeric")
        with self.account.lock:
            pos = self._pos.get(int(pos_id))
            if pos is None or pos.user_id != user_id:
                raise errors.legacy(404, "not_found", "Point of sale not found")
            return self.view(pos)

    def payload(self, user_id: int, external_pos_id: str) -> str:
        """The static EMVCo payload of a POS (what its QR image encodes)."""
        with self.account.lock:
            return self.pos_for(user_id, external_pos_id).payload

    def qr_png(self, pos_id: str, uid: str) -> bytes:
        """The POS's static QR as a PNG (box 8 px, quiet zone 4 modules), as ``qr.image`` links it."""
        with self.account.lock:
            pos = self._pos.get(int(pos_id)) if pos_id.isdigit() else None
            if pos is None or pos.data["uuid"] != uid:
                raise errors.legacy(404, "not_found", "QR image not found")
            if pos.id not in self._png:
                code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
                code.add_data(pos.payload)
                code.make(fit=True)
                self._png[pos.id] = _png_bytes(code)
            return self._png[pos.id]

    def find(self, user_id: int, external_pos_id: str) -> Pos | None:
        return self._pos_by_ext.get((user_id, external_pos_id))

    def all(self) -> list[Pos]:
        return list(self._pos.values())

    def occupy(self, pos: Pos, order: InstoreOrder | V1Order, busy: errors.ApiError) -> None:
        """Put an order on a POS, by the ``busy_pos`` rule when it already carries one."""
        if pos.slot is not None:
            if self.busy_pos == "409":
                raise busy
            pos.slot.displaced()
        pos.slot = order

    def stores(self) -> list[dict[str, Any]]:
        return [s.data for s in self._stores.values()]

    def pos_for(self, user_id: int, external_pos_id: str, external_store_id: str | None = None) -> Pos:
        if not validate.alphanumeric(external_pos_id):
            raise errors.legacy(400, "invalid_externalPosId", "external_pos_id must be letters and digits")
        pos = self._pos_by_ext.get((user_id, external_pos_id))
        if pos is None or external_store_id not in (None, pos.store.data["external_id"]):
            raise errors.legacy(404, "point_of_sale_not_found", f"Point of sale {external_pos_id} not found.")
        return pos


def page(
    found: list[dict[str, Any]], query: Mapping[str, str], bad_offset: str, bad_limit: str
) -> dict[str, Any]:
    """``{"paging": {total, offset, limit}, "results": [...]}`` for ``offset``/``limit`` query params."""
    offset, limit = query.get("offset", "0"), query.get("limit", "50")
    if not offset.isdigit():
        raise errors.legacy(400, bad_offset, "offset must be a non-negative integer")
    if not limit.isdigit() or not 0 < int(limit) <= 1000:
        raise errors.legacy(400, bad_limit, "limit must be an integer from 1 to 1000")
    start, size = int(offset), int(limit)
    results = copy.deepcopy(found[start : start + size])
    return {"paging": {"total": len(found), "offset": start, "limit": size}, "results": results}


def _png_bytes(code: qrcode.QRCode) -> bytes:
    buffer = io.BytesIO()
    code.make_image(fill_color="black", back_color="white").save(buffer)
    return buffer.getvalue()
