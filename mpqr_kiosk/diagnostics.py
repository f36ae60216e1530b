"""``mpqr-kiosk diagnostics``: a support bundle (.tar.gz) a technician can attach to a ticket.

It holds the config, versions, the recent journal, the device list, recent sales and the daemon's
status. The access token is never in it: every file is scrubbed of the token and of anything shaped
like a Mercado Pago access token before it is written (rule 8)."""

from __future__ import annotations

import io
import json
import platform
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict
from datetime import datetime
from importlib import metadata
from pathlib import Path

from mpqr_kiosk import __version__, exits
from mpqr_kiosk import config as cfg
from mpqr_kiosk.redact import redact
from mpqr_kiosk.token import load_token

PACKAGES = ("python-escpos", "luma.oled", "luma.core", "gpiozero", "evdev", "pyserial", "qrcode", "requests",
            "pillow", "systemd-python", "zxing-cpp")
DEVICE_GLOBS = ("/dev/input/by-id/*", "/dev/usb/lp*", "/dev/ttyUSB*", "/dev/ttyACM*", "/dev/i2c-*", "/dev/spidev*",
                "/dev/gpiochip*")


def collect(config_path: str) -> dict[str, str]:
    """The bundle's files as text, before redaction."""
    files: dict[str, str] = {}
    try:
        files["config.toml"] = Path(config_path).read_text(encoding="utf-8")
        config = cfg.load(config_path)
    except (OSError, cfg.ConfigError) as exc:
        files["config-error.txt"] = str(exc)
        config = None
    versions = {"mpqr-kiosk": __version__, "python": sys.version, "platform": platform.platform()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    files["versions.json"] = json.dumps(versions, indent=2)
    files["devices.txt"] = "\n".join(sorted(str(p) for pattern in DEVICE_GLOBS for p in Path("/").glob(pattern[1:])))
    files["journal.txt"] = _run(["journalctl", "-u", "mpqr-kiosk", "-n", "1000", "--no-pager", "-o", "short-iso"])
    files["lsusb.txt"] = _run(["lsusb"])
    if config:
        files["sales.json"] = _recent_sales(config)
        files["status.json"] = _status(config)
    return files


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{command[0]}: {exc}"
    return done.stdout + done.stderr


def _recent_sales(config: cfg.Config) -> str:
    from mpqr_kiosk.journal import FILE_NAME, Journal, JournalError

    if not (Path(config.state.dir) / FILE_NAME).exists():
        return "[]"
    try:
        journal = Journal(config.state.dir)
    except JournalError as exc:
        return json.dumps({"error": str(exc)})
    try:
        return json.dumps([asdict(s) for s in journal.recent(50)], indent=2, ensure_ascii=False, default=str)
    finally:
        journal.close()


def _status(config: cfg.Config) -> str:
    from mpqr_kiosk.control import request

    try:
        return json.dumps(request(config.control.socket, {"command": "status"}, timeout=5), indent=2)
    except OSError as exc:
        return json.dumps({"daemon": f"not reachable: {exc}"})


def run(config_path: str, out: Path | None) -> int:
    secrets = []
    try:
        config = cfg.load(config_path)
        secrets.append(load_token(config.mercadopago, config.path))
    except (cfg.ConfigError, OSError):
        pass  # the token cannot leak if we cannot read it; the shape filter still applies
    files = collect(config_path)
    out = out or Path(f"mpqr-kiosk-diagnostics-{datetime.now():%Y%m%d-%H%M%S}.tar.gz")
    with tarfile.open(out, "w:gz") as bundle:
        for name, text in files.items():
            data = redact(text, secrets).encode("utf-8")
            info = tarfile.TarInfo(f"mpqr-kiosk-diagnostics/{name}")
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
            bundle.addfile(info, io.BytesIO(data))
    out.chmod(0o600)
    sys.stdout.write(f"{out} ({len(files)} files, secrets redacted)\n")
    return exits.OK
