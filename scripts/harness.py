"""The real daemon (``mpqr-kiosk run`` as a subprocess) with what it talks to, all on loopback: a config and a
0600 token in a folder, a raw-9100 receipt printer that keeps each receipt, and systemd's notify socket.
Shared by ``bench.py`` and ``soak.py``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from mpqr_kiosk.control import request
from mpqr_kiosk.emulator.printer import LoopbackPrinter
from mpqr_kiosk.emulator.state import Emulator

TOKEN = "TEST-HARNESS-0000-123456789"


class Notify:
    """systemd's notify socket: notes when the daemon says READY=1."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.ready_at = 0.0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                message = self.sock.recv(4096).decode()
            except OSError:
                return
            if "READY=1" in message:
                self.ready_at = time.time()


def write_config(folder: Path, emulator: Emulator, url: str, printer: LoopbackPrinter, *, poll: str = "1s",
                 ttl: str = "10m", pos: str = "POS001", api: str = "instore", extra: str = "") -> Path:
    token = folder / "token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    (folder / "catalog.csv").write_text("code,title,unit price,sku\n1,Item,1.00,S\n")
    config = folder / "kiosk.toml"
    config.write_text(f"""
[mercadopago]
api = "{api}"
site = "{emulator.site.id}"
user_id = {emulator.user_id}
external_pos_id = "{pos}"
access_token_file = "{token}"
api_base = "{url}"
qr_payload = "{emulator.payload(pos)}"
order_ttl = "{ttl}"
poll_interval = "{poll}"
{extra}
[shop]
name = "Bench"
[input]
devices = ["stdin"]
catalog = "{folder / 'catalog.csv'}"
[display]
driver = "png"
png_dir = "{folder / 'frames'}"
width = 128
height = 128
[printer]
connection = "network"
host = "127.0.0.1"
port = {printer.port}
[state]
dir = "{folder / 'state'}"
[control]
socket = "{folder / 'control.sock'}"
""")
    return config


class Daemon:
    """``mpqr-kiosk run`` on ``config``, started and waited for READY=1."""

    def __init__(self, folder: Path, config: Path, timeout: float = 60.0) -> None:
        self.folder = folder
        self.config = config
        self.socket = str(folder / "control.sock")
        self.process: subprocess.Popen | None = None
        self.start(timeout)

    def start(self, timeout: float = 60.0) -> None:
        self.notify = Notify(self.folder / "notify.sock")
        env = {**os.environ, "NOTIFY_SOCKET": str(self.notify.path), "GPIOZERO_PIN_FACTORY": "mock"}
        env.pop("INVOCATION_ID", None)
        self.started = time.time()
        with open(self.folder / "daemon.log", "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mpqr_kiosk", "--config", str(self.config), "run"], env=env,
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log, text=True)
        wait(lambda: self.notify.ready_at or self.process.poll() is not None, timeout, "READY=1")
        if self.process.poll() is not None:
            raise SystemExit(f"the daemon exited {self.process.returncode}: see {self.folder / 'daemon.log'}")

    def control(self, command: str, **fields) -> dict:
        return request(self.socket, {"command": command, **fields})

    def key(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.notify.sock.close()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        self.notify.sock.close()


def wait(done, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = done()
        if value:
            return value
        time.sleep(0.002)
    raise SystemExit(f"timed out waiting for {what}")
