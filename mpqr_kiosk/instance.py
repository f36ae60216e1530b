"""One daemon per POS (rule 10): the first ``mpqr-kiosk run`` on a state directory holds a lock on it for as
long as it lives; a second one is refused before it opens the journal or touches the control socket."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "daemon.lock"


class AlreadyRunning(Exception):
    """Another daemon holds this state directory."""


class InstanceLock:
    """An exclusive ``flock`` on ``<state dir>/daemon.lock`` (released by the kernel when the process dies,
    so a kill -9 or a power cut never leaves it held)."""

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / LOCK_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(self._fd)
            raise AlreadyRunning(f"another mpqr-kiosk daemon (pid {holder}) is running on {self.path.parent}; "
                                 "stop it first (systemctl stop mpqr-kiosk)") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        os.close(self._fd)
