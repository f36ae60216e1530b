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
    cancel_grace: float = 15.0  # after a cancel, keep reading this long while a customer is mid-payment
    result_seconds: float = 3.0  # Paid / Cancelled / Rejected stay on screen this long
    probe_interval: float = 10.0  # how often an offline box checks the API again
    health_interval: float = 60.0  # how often an idle, online box checks it is still online
    late_watch: float = 600.0  # after a cancel or expiry with a customer mid-payment, look for late payments...
    late_interval: float = 30.0  # ...this often
    print_retry: float = 10.0  # how often a queued receipt is tried again
