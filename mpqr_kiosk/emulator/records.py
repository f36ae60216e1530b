"""The emulator's records (what a seller account holds) and how it writes times and ids."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

LEGACY_TZ = timezone(timedelta(hours=-4))  # the legacy APIs answer in UTC-4, as MP's examples do
ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ISO3 = {"AR": "ARG", "BR": "BRA", "MX": "MEX", "CL": "CHL", "CO": "COL", "PE": "PER", "UY": "URY"}
CAPITAL = {
    "AR": "BUENOS AIRES",
    "BR": "SAO PAULO",
    "MX": "CDMX",
    "CL": "SANTIAGO",
    "CO": "BOGOTA",
    "PE": "LIMA",
    "UY": "MONTEVIDEO",
}
# A shop in each country's capital (the seeded store) and the box its coordinates must fall in: "the store
# coordinates are outside the site" is a documented error [C: devsite-docs stores.json]; the boxes are
# approximate [inferred].
CAPITAL_LOCATION = {
    "AR": ("Av. Corrientes", "1234", "Buenos Aires", "Capital Federal", -34.6037, -58.3816),
    "BR": ("Rua das Flores", "12", "São Paulo", "São Paulo", -23.5505, -46.6333),
    "MX": ("Av. Reforma", "222", "Ciudad de México", "CDMX", 19.4326, -99.1332),
    "CL": ("Av. Providencia", "1000", "Santiago", "Región Metropolitana", -33.4489, -70.6693),
    "CO": ("Carrera 7", "32-16", "Bogotá", "Cundinamarca", 4.7110, -74.0721),
    "PE": ("Av. Arequipa", "500", "Lima", "Lima", -12.0464, -77.0428),
    "UY": ("Av. 18 de Julio", "1000", "Montevideo", "Montevideo", -34.9011, -56.1645),
}
COUNTRY_BOX = {  # (south, north, west, east)
    "AR": (-55.1, -21.7, -73.6, -53.6),
    "BR": (-33.8, 5.3, -74.0, -34.7),
    "MX": (14.5, 32.8, -118.5, -86.7),
    "CL": (-56.0, -17.5, -109.5, -66.4),
    "CO": (-4.3, 13.4, -81.8, -66.8),
    "PE": (-18.4, 0.0, -81.4, -68.6),
    "UY": (-35.1, -30.0, -58.5, -53.0),
}


def legacy_time(t: float) -> str:
    """``2025-08-21T15:32:21.621-04:00``, as merchant orders and stores carry dates."""
    return datetime.fromtimestamp(t, LEGACY_TZ).isoformat(timespec="milliseconds")


def v1_time(t: float) -> str:
    """``2025-08-21T19:32:21.621Z``, as the Orders API carries dates."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ulid_like(prefix: str, length: int) -> str:
    """``prefix`` followed by ``length`` random uppercase Crockford base-32 characters."""
    return prefix + "".join(secrets.choice(ULID_ALPHABET) for _ in range(length))


@dataclass
class Store:
    """A store (``POST /users/{id}/stores``)."""

    id: int
    user_id: int
    city: str
    data: dict[str, Any]


@dataclass
class InstoreOrder:
    """A legacy order sitting on a POS, with the merchant orders its scans opened."""

    body: dict[str, Any]
    total: int
    expires_at: float | None
    mo_ids: list[int] = field(default_factory=list)
    scans: int = 0
    expired: bool = False

    def displaced(self) -> None:
        """Another order took the POS: this one is gone (its merchant orders stay as they are)."""


@dataclass
class V1Order:
    """An Orders-API order; ``pos`` is set while it is the POS's current order."""

    data: dict[str, Any]
    total: int
    expires_at: float
    pos: Pos | None
    paid: int = 0
    refunded: int = 0
    refunding: int = 0  # a refund asked for and still processing
    scans: int = 0
    phones: set[str] = field(default_factory=set)  # buyers who have its checkout open
    attempts: list[dict[str, Any]] = field(default_factory=list)
    approved_at: float = 0.0  # when its payment was approved

    def displaced(self) -> None:
        """Another order took the POS: this one stays created, unpayable, until it expires."""
        self.pos = None


@dataclass
class Pos:
    """A point of sale: its public fields, static payload, current order and the buyers waiting for one."""

    id: int
    user_id: int
    store: Store
    payload: str
    data: dict[str, Any]
    slot: InstoreOrder | V1Order | None = None
    waiting: set[str] = field(default_factory=set)  # phones on the waiting screen (scanned an empty POS)
