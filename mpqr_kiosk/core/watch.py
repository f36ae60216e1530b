"""The late-payment watch: ended sales a customer may still pay, read now and then (one at a time, round
robin) until their watch is over, so money that arrives after the end is never lost."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mpqr_kiosk.core.model import Sale


@dataclass(frozen=True)
class Watched:
    sale: Sale
    until: float  # monotonic


@dataclass(frozen=True)
class LateWatch:
    sales: tuple[Watched, ...] = ()  # the next one to read first
    reading: str = ""  # the reference whose read is in flight
    next_round: float = 0.0  # monotonic

    @property
    def references(self) -> tuple[str, ...]:
        return tuple(w.sale.reference for w in self.sales)

    def add(self, sale: Sale, until: float, now: float, interval: float) -> LateWatch:
        next_round = self.next_round if self.sales else now + interval
        return replace(self, sales=(*self.sales, Watched(sale, until)), next_round=next_round)

    def wakeup(self) -> float | None:
        return self.next_round if self.sales and not self.reading else None

    def due(self, now: float, interval: float) -> tuple[LateWatch, Sale | None]:
        """The sale to read now, if a round is due; those whose watch is over are forgotten."""
        if not self.sales or self.reading or now < self.next_round:
            return self, None
        live = tuple(w for w in self.sales if w.until > now)
        if not live:
            return replace(self, sales=(), next_round=now + interval), None
        first = live[0]
        return LateWatch((*live[1:], first), first.sale.reference, now + interval), first.sale

    def answered(self, reference: str) -> tuple[LateWatch, Sale | None]:
        """The watched sale whose read this answers (``None``: not ours, or stale); the read slot is free."""
        if not reference or reference != self.reading:
            return self, None
        sale = next((w.sale for w in self.sales if w.sale.reference == reference), None)
        return replace(self, reading=""), sale

    def forget(self, reference: str) -> LateWatch:
        return replace(self, sales=tuple(w for w in self.sales if w.sale.reference != reference))
