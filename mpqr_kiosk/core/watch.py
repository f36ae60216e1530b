"""The late-payment watch: every ended sale (cancelled, expired, in review, and paid too) is read again now and
then until its watch is over, so money that arrives after the end — a payment decided late, a second phone
on the same QR — is never lost.

The watch's end is on the API server's clock (``Sale.watch_until``, journaled), so a restart carries it on, and
a sale leaves the watch only after a read made once its watch was over. Reads go one at a time, the soonest
due first, and never more often than ``watch_spacing`` however many sales are watched.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mpqr_kiosk.core.timing import Timing


@dataclass(frozen=True)
class Watched:
    reference: str
    next_read: float  # monotonic
    grace_until: float  # monotonic: read every poll interval until then, then every late_interval


@dataclass(frozen=True)
class LateWatch:
    sales: tuple[Watched, ...] = ()
    reading: str = ""  # the reference whose read is in flight
    next_any: float = 0.0  # monotonic: no watch read before then

    @property
    def references(self) -> tuple[str, ...]:
        return tuple(w.reference for w in self.sales)

    def add(self, reference: str, first_read: float, grace_until: float = 0.0) -> LateWatch:
        """Watch ``reference`` (again) from ``first_read``, every poll interval until ``grace_until``."""
        entry = Watched(reference, first_read, grace_until)
        return replace(self, sales=(*(w for w in self.sales if w.reference != reference), entry))

    def wakeup(self) -> float | None:
        if self.reading or not self.sales:
            return None
        return max(self.next_any, min(w.next_read for w in self.sales))

    def due(self, now: float, timing: Timing) -> tuple[LateWatch, str]:
        """The reference to read now ("" if none is due)."""
        if self.reading or not self.sales or now < self.next_any:
            return self, ""
        soonest = min(self.sales, key=lambda w: w.next_read)
        if soonest.next_read > now:
            return self, ""
        return replace(self, reading=soonest.reference, next_any=now + timing.watch_spacing), soonest.reference

    def answered(self, reference: str, now: float, timing: Timing) -> tuple[LateWatch, bool]:
        """The read in flight came back (or failed): its sale is read again later. ``False``: not ours."""
        if not reference or reference != self.reading:
            return self, False
        sales = tuple(
            replace(w, next_read=now + (timing.poll_interval if now < w.grace_until else timing.late_interval))
            if w.reference == reference else w
            for w in self.sales
        )
        return replace(self, sales=sales, reading=""), True

    def forget(self, reference: str) -> LateWatch:
        return replace(self, sales=tuple(w for w in self.sales if w.reference != reference))
