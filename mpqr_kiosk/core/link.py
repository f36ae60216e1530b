"""Connectivity: whether the Mercado Pago API answers us, when to ask again (rule 7: no QR sale while
offline), when a 429 lets us speak again, and how far the API server's clock is from ours. Any definite
answer about a sale counts as online; an unsure one means "probe at once"."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mpqr_kiosk.core.timing import Timing


@dataclass(frozen=True)
class Link:
    online: bool = False
    probe_out: bool = False  # a ``Probe`` is in flight
    next_probe: float = 0.0  # monotonic
    quiet_until: float = 0.0  # monotonic: no request of any kind before then (a 429's Retry-After)
    server_offset: float = 0.0  # the API server's clock minus ours, from the last answer that said
    clock_known: bool = False  # an answer has said what time it is on the server

    def quiet(self, now: float) -> bool:
        return now < self.quiet_until

    def due(self, now: float, busy: bool) -> bool:
        """Probe now? An online box with a live sale learns enough from the sale's own requests."""
        return (not self.probe_out and now >= self.next_probe and not self.quiet(now)
                and (not self.online or not busy))

    def wakeup(self, busy: bool) -> float | None:
        """When a probe could next go out (``None``: not until something else changes)."""
        if self.probe_out or (self.online and busy):
            return None
        return max(self.next_probe, self.quiet_until)

    def probing(self) -> Link:
        return replace(self, probe_out=True)

    def probed(self, online: bool, now: float, timing: Timing) -> Link:
        interval = timing.health_interval if online else timing.probe_interval
        return replace(self, online=online, probe_out=False, next_probe=now + interval)

    def answered(self) -> Link:
        """A request about a sale got a definite answer."""
        return replace(self, online=True)

    def unsure(self, now: float) -> Link:
        """A request about a sale got no usable answer: is it the network, or just this request? Ask at once."""
        return replace(self, online=False, next_probe=now if self.online else self.next_probe)

    def hush(self, now: float, retry_after: float, timing: Timing) -> Link:
        """A 429: every request, probes included, waits out ``Retry-After`` (capped)."""
        if retry_after <= 0:
            return self
        return replace(self, quiet_until=max(self.quiet_until, now + min(retry_after, timing.retry_after_max)))

    def clock(self, server_time: float, wall: float) -> Link:
        """The API server said what time it is (0: it did not)."""
        return replace(self, server_offset=server_time - wall, clock_known=True) if server_time else self

    def server_now(self, wall: float) -> float:
        return wall + self.server_offset
