"""Injected faults: what goes wrong, on which kind of operation, how many times."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

OPS = ("push", "read", "cancel", "refund", "probe")
# Transport and status faults, then answers that look fine but must not be believed: an empty 200, a body
# about another sale, amounts no payment can have, and an error that echoes the caller's access token.
# The last three are hostile or garbled answers, not documented behaviour: the real answer with every amount
# a 5000-digit number (``huge_amount``), a JSON string where an object or list belongs (``wrong_type``) and
# an array nested 100000 deep (``deep_json``).
KINDS = ("timeout", "http500", "http503", "http429", "reset", "malformed", "http409", "http400",
         "empty", "foreign", "absurd", "echo_token", "huge_amount", "wrong_type", "deep_json")


@dataclass
class Fault:
    """One armed fault.

    ``after=True``: the operation is applied and only its answer is lost or garbled (the indeterminate
    case); ``after=False``: the fault strikes first (for ``timeout``: the operation runs after ``delay``).
    ``huge_amount`` garbles the real answer, so its operation is always applied.
    """

    op: str
    kind: str
    count: int = 1
    after: bool = True
    delay: float = 5.0
    retry_after: int = 1

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"op must be one of {', '.join(OPS)}, not {self.op!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.count < 1 or self.delay < 0 or self.retry_after < 0:
            raise ValueError("count must be >= 1, delay and retry_after >= 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON view."""
        return asdict(self)


class Faults:
    """Armed faults, first armed first fired; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[Fault] = []

    def arm(self, fault: Fault) -> None:
        """Add a fault."""
        with self._lock:
            self._armed.append(fault)

    def clear(self) -> int:
        """Disarm every fault; how many there were."""
        with self._lock:
            count, self._armed = len(self._armed), []
            return count

    def take(self, op: str) -> Fault | None:
        """The next fault for this operation, used up once."""
        with self._lock:
            for fault in self._armed:
                if fault.op == op:
                    fault.count -= 1
                    if fault.count == 0:
                        self._armed.remove(fault)
                    return fault
            return None

    def armed(self) -> list[dict[str, Any]]:
        """JSON view of what is still armed."""
        with self._lock:
            return [fault.to_dict() for fault in self._armed]
