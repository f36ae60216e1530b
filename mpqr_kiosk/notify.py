"""systemd's notify protocol: READY=1, WATCHDOG=1, STATUS=…, STOPPING=1.

systemd-python's ``daemon.notify`` where it is installed, otherwise a datagram to ``$NOTIFY_SOCKET``
(the whole protocol; both do nothing when systemd did not start us)."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

try:
    from systemd import daemon as _sd_daemon
except ImportError:  # libsystemd-dev was missing when the venv was built
    _sd_daemon = None


def notify(state: str) -> bool:
    """Send ``state`` (e.g. ``"READY=1\\nSTATUS=Ready"``); return whether a notify socket took it."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    try:
        if _sd_daemon is not None:
            return bool(_sd_daemon.notify(state))
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:  # the manager's socket went away (systemd-python raises too): never the daemon's end
        log.warning("sd_notify to %s failed: %s", os.environ.get("NOTIFY_SOCKET"), exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half of ``WatchdogSec``), or None when no watchdog is set."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1e6 / 2
    except ValueError:
        return None
