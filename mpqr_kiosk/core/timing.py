"""Time, as the core sees it: an injected clock and every duration it uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    """Where the core reads time: ``monotonic`` for every duration; ``time`` only to date a sale when the API
    has not told us its own clock."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...


@dataclass(frozen=True)
class Timing:
    """Every duration the core uses, in seconds."""

    ttl: float = 600.0  # how long an order stays payable
    poll_interval: float = 1.0  # reads while waiting...
    poll_backoff_after: float = 60.0  # ...for this long, then
    poll_slow: float = 5.0  # ...at this interval (or poll_interval, if that is longer)
    retry_max: float = 30.0  # the longest back-off after failed requests
    cancel_grace: float = 15.0  # after a cancel, keep reading this long while a payment attempt is under way
    unanswered: float = 60.0  # past its expiry, a sale the API does not settle ends anyway (and is watched)
    result_seconds: float = 3.0  # Paid / Cancelled / Rejected stay on screen this long
    review_seconds: float = 30.0  # Needs review stays this long (or until a key is pressed)
    probe_interval: float = 10.0  # how often an offline box checks the API again
    health_interval: float = 60.0  # how often an idle, online box checks it is still online
    late_watch: float = 600.0  # every ended sale (paid too) is read for late money this long...
    late_interval: float = 30.0  # ...each about this often (every poll_interval during cancel_grace)
    watch_spacing: float = 2.0  # at most one late read per this many seconds, however many sales are watched
    refund_confirm: float = 3600.0  # a refund no read confirms within this long goes to review
    refund_reply: float = 20.0  # how long ``mpqr-kiosk refund`` waits for the confirmation before answering
    retry_after_max: float = 300.0  # the longest a 429's Retry-After holds every request back
    print_retry: float = 10.0  # how often a queued receipt is tried again
