"""``mpqr-kiosk run`` as a real subprocess: a config and a 0600 token file in a temp folder, a
NOTIFY_SOCKET listener standing in for systemd, the emulator and a network printer on loopback."""

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
from mpqr_kiosk.journal import Journal

TOKEN = "TEST-SECRET-abcdef0123456789-123456789"


class NotifyListener:
    """Collects sd_notify datagrams the way systemd's notify socket would."""

    def __init__(self, path: Path):
        self.path = path
        self.messages: list[str] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.running = True
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while self.running:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def seen(self, text: str) -> bool:
        return any(text in m for m in self.messages)

    def close(self) -> None:
        self.running = False
        self.sock.close()


class Daemon:
    def __init__(self, tmp_path: Path, emulator, printer, *, extra: str = "", watchdog_usec: int = 0,
                 api: str = "instore"):
        self.dir = tmp_path
        self.api = api
        self.emulator = emulator
        self.printer = printer
        token = tmp_path / "access_token"
        token.write_text(TOKEN + "\n")
        token.chmod(0o600)
        (tmp_path / "catalog.csv").write_text("code,title,unit price,sku\n789100,Pão de queijo,4.50,P1\n")
        self.socket = tmp_path / "control.sock"
        self.state = tmp_path / "state"
        self.config = tmp_path / "kiosk.toml"
        self.config.write_text(f"""
[mercadopago]
api = "{api}"
site = "{emulator.site.id}"
user_id = {emulator.user_id}
access_token_file = "{token}"
api_base = "{emulator.url}"
qr_payload = "{emulator.payload('POS001')}"
order_ttl = "60s"
poll_interval = "100ms"
{extra}
[shop]
name = "Padaria Teste"
[input]
devices = []
catalog = "{tmp_path / 'catalog.csv'}"
[display]
driver = "png"
png_dir = "{tmp_path / 'frames'}"
[printer]
connection = "network"
host = "127.0.0.1"
port = {printer.port}
[state]
dir = "{self.state}"
[control]
socket = "{self.socket}"
""")
        self.notify = NotifyListener(tmp_path / "notify.sock")
        self.watchdog_usec = watchdog_usec
        self.process: subprocess.Popen | None = None
        self.log = tmp_path / "daemon.log"

    def start(self) -> Daemon:
        env = {**os.environ, "NOTIFY_SOCKET": str(self.notify.path), "GPIOZERO_PIN_FACTORY": "mock"}
        env.pop("INVOCATION_ID", None)
        if self.watchdog_usec:
            env["WATCHDOG_USEC"] = str(self.watchdog_usec)
        self.notify.messages.clear()
        with open(self.log, "a") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "mpqr_kiosk", "--config", str(self.config), "run"],
                                            env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        assert self.until(lambda: self.notify.seen("READY=1"), 30), self.log.read_text()
        # READY comes before the first answer from the API; on a loaded machine that answer may take a while
        self.until(self._online, 30)
        return self

    def _online(self) -> bool:
        try:
            return bool(self.control("status").get("online"))
        except OSError:
            return False

    def until(self, done, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            if self.process and self.process.poll() is not None:
                return bool(done())
            time.sleep(0.05)
        return bool(done())

    def control(self, command: str, **fields) -> dict:
        return request(str(self.socket), {"command": command, **fields}, timeout=30)

    def sale(self, amount: str = "12.50") -> str:
        answer = self.control("sale", amount=amount)
        assert answer["ok"], answer
        return answer["reference"]

    def journaled(self, reference: str):
        journal = Journal(self.state)
        try:
            return journal.get(reference)
        finally:
            journal.close()

    def state_of(self, reference: str) -> str | None:
        sale = self.journaled(reference)
        return sale.state.value if sale else None

    def receipt_of(self, reference: str) -> str | None:
        sale = self.journaled(reference)
        return sale.receipt.value if sale else None

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(20)

    def close(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.notify.close()
