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
    scans: int = 0
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def displaced(self) -> None:
        """Another order took the POS: this one stays created, unpayable, until it expires."""
        self.pos = None


@dataclass
class Pos:
    """A point of sale: its public fields, static payload, current order and a waiting buyer."""

    id: int
    user_id: int
    store: Store
    payload: str
    data: dict[str, Any]
    slot: InstoreOrder | V1Order | None = None
    waiting: bool = False
