"""Where the access token comes from: the systemd credential ``mp-access-token`` or a 0600 file."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from mpqr_kiosk.config import ConfigError, MercadoPagoConfig, UnusableFile, read_small_file
from mpqr_kiosk.redact import add_secret

CREDENTIAL = "mp-access-token"
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{8,512}")
KEY = "mercadopago.access_token_file"
MAX_TOKEN_FILE = 4096  # a token is at most 512 characters


def token_path(mp: MercadoPagoConfig) -> Path:
    """The systemd credential when the service has one, else ``access_token_file``."""
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / CREDENTIAL).exists():
        return Path(credentials) / CREDENTIAL
    return Path(mp.access_token_file)


def load_token(mp: MercadoPagoConfig, config_path: str) -> str:
    """Read the token; refuse a file others can read, or anything but a small regular text file (a FIFO is
    never waited on). Errors never include the token, nor anything else the file holds."""
    path = token_path(mp)
    try:
        data = read_small_file(path, MAX_TOKEN_FILE, "the access token file")
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(config_path, KEY, f"{path} does not exist; put the access token there (mode 0600)") from None
    except UnusableFile as exc:
        raise ConfigError(config_path, KEY, f"{path} {exc}") from None
    except OSError as exc:
        raise ConfigError(config_path, KEY, f"cannot read {path}: {exc.strerror}") from None
    if path.parent != Path(os.environ.get("CREDENTIALS_DIRECTORY", "/nonexistent")) and info.st_mode & (
        stat.S_IRWXG | stat.S_IRWXO
    ):
        raise ConfigError(config_path, KEY,
                          f"{path} is readable by group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
                          f"run: chmod 600 {path}")
    text = data.decode("utf-8", errors="replace")
    if "\ufffd" in text or "\x00" in text:  # said without a word of what the file holds
        raise ConfigError(config_path, KEY, f"{path} is not plain text (binary, UTF-16 or another encoding); "
                                            "save the access token alone in it as UTF-8 text")
    token = text.removeprefix("\ufeff").strip()  # Notepad's byte-order mark
    if not TOKEN_SHAPE.fullmatch(token):
        raise ConfigError(config_path, KEY, f"{path} must hold the access token alone, on one line "
                                            "(letters, digits, - and _ only)")
    add_secret(token)  # from here on it is masked wherever text leaves the process
    return token
