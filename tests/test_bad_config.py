"""Bad config, token files, device specs, pins, the control socket and the state directory, fed to the real
``mpqr-kiosk check`` and ``mpqr-kiosk run``: each ends in one clear message naming the file and the key, the
exit code exits.py gives it (3: a technician must fix it; 75 only for what time fixes), no traceback, no hang."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_harness import Daemon

from mpqr_kiosk import exits
from mpqr_kiosk.devices.input import VALID_SPECS
from mpqr_kiosk.emulator.printer import LoopbackPrinter
from mpqr_kiosk.journal import MIGRATIONS, Journal

TOKEN = "TEST-SECRET-abcdef0123456789-123456789"
TIMEOUT = 40  # seconds: a command that hangs fails its test


class Box:
    """A config that ``check`` and ``run`` accept (no devices, no printer, no display), to spoil one way."""

    def __init__(self, tmp_path: Path):
        self.dir = tmp_path
        self.token = tmp_path / "access_token"
        self.token.write_text(TOKEN + "\n")
        self.token.chmod(0o600)
        (tmp_path / "catalog.csv").write_text("code,title,unit price,sku\n789100,Pão de queijo,4.50,P1\n")
        self.config = tmp_path / "kiosk.toml"
        self.lines = {
            "mercadopago": {"user_id": "123456789", "access_token_file": f'"{self.token}"',
                            "api_base": '"http://127.0.0.1:9"'},
            "shop": {"name": '"Padaria São João"'},
            "input": {"devices": "[]", "catalog": f'"{tmp_path / "catalog.csv"}"'},
            "display": {"driver": '"none"'},
            "printer": {"connection": '"none"'},
            "leds": {},
            "state": {"dir": f'"{tmp_path / "state"}"'},
            "control": {"socket": f'"{tmp_path / "control.sock"}"'},
        }

    def write(self, **changes: str) -> Path:
        """The config with ``section__key=value`` (TOML text) changed; returns its path."""
        for name, value in changes.items():
            section, key = name.split("__")
            self.lines[section][key] = value
        text = "".join(f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())
                       for section, keys in self.lines.items())
        self.config.write_text(text, encoding="utf-8")
        return self.config


def mpqr(config: Path | str, command: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "INVOCATION_ID", "CREDENTIALS_DIRECTORY")}
    done = subprocess.run([*prefix, sys.executable, "-m", "mpqr_kiosk", "--config", str(config), command],
                          capture_output=True, text=True, timeout=TIMEOUT,
                          env={**env, "GPIOZERO_PIN_FACTORY": "mock"}, cwd=Path(__file__).parents[1])
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert TOKEN not in done.stderr + done.stdout
    return done


def refused(config: Path | str, message: str, check_code: int = exits.CONFIG, prefix: tuple[str, ...] = ()) -> None:
    """``check`` and ``run`` both refuse ``config`` with ``message``: check with one line on stderr (exit 3)
    or a FAIL line (exit ``check_code``), run with exit 3."""
    check = mpqr(config, "check", prefix)
    assert check.returncode == check_code, check.stdout + check.stderr
    if check_code == exits.CONFIG:
        assert check.stderr == f"mpqr-kiosk: config invalid: {message}\n"
    else:
        assert message.split(": ", 1)[1] in check.stdout, check.stdout
    run = mpqr(config, "run", prefix)
    assert run.returncode == exits.CONFIG, run.stderr
    assert message in run.stderr, run.stderr


# ---------------------------------------------------------------------------------------- the config file


def test_a_latin1_config_names_the_line_and_column_of_the_byte(tmp_path):
    path = Box(tmp_path).write(shop__name='"Padaria São João"')
    path.write_bytes(path.read_text(encoding="utf-8").encode("latin-1"))
    line = next(n for n, text in enumerate(path.read_bytes().split(b"\n"), 1) if b"\xe3" in text)
    refused(path, f"{path}: not UTF-8: byte 0xE3 at line {line}, column 18; save the file as UTF-8 "
                  "(not Latin-1 or Windows-1252)")


@pytest.mark.parametrize("text", ["a = " + "[" * 100_000, "a = " + "{b = " * 100_000, "a = [" + "[1, " * 50_000])
def test_toml_nested_too_deeply_is_refused(tmp_path, text):
    path = tmp_path / "kiosk.toml"
    path.write_text(text)
    refused(path, f"{path}: not valid TOML: nested too deeply (lists or tables inside each other)")


def test_an_integer_of_thousands_of_digits_is_refused_not_a_traceback(tmp_path):
    path = Box(tmp_path).write(mercadopago__user_id="9" * 5000)  # past Python's 4300-digit limit (found by fuzz)
    refused(path, f"{path}: not valid TOML: a number has more than 4300 digits")


def test_a_huge_config_is_refused_without_parsing_it(tmp_path):
    path = tmp_path / "kiosk.toml"
    with open(path, "wb") as handle:
        handle.truncate(2 << 30)  # 2 GiB, sparse: reading it all would take the box's memory
    refused(path, f"{path}: is {2 << 30} bytes: too big for a config file (at most 1048576)")


def test_a_directory_or_a_fifo_as_config_is_refused_without_a_hang(tmp_path):
    refused(tmp_path, f"{tmp_path}: is a directory, not a regular file: it must be a config file")
    fifo = tmp_path / "kiosk.fifo"
    os.mkfifo(fifo)
    refused(fifo, f"{fifo}: is a named pipe (FIFO), not a regular file: it must be a config file")


def test_an_unreadable_config_is_refused(tmp_path):
    path = Box(tmp_path).write()
    path.chmod(0o000)
    # root reads anything: then ask as a root without the capabilities that override file permissions
    prefix = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search") if os.geteuid() == 0 else ()
    if prefix and not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv (util-linux)")
    refused(path, f"{path}: cannot read: Permission denied", prefix=prefix)


def test_a_config_with_a_utf8_bom_is_accepted_and_the_daemon_serves(tmp_path, emulator):
    printer = LoopbackPrinter().up()
    d = Daemon(tmp_path, emulator, printer)
    try:
        d.config.write_bytes(b"\xef\xbb\xbf" + d.config.read_bytes())
        check = mpqr(d.config, "check")
        assert f"ok   config     {d.config}: instore API" in check.stdout, check.stdout + check.stderr
        d.start()
        assert d.control("status")["ok"] and d.notify.seen("READY=1")
    finally:
        d.close()
        printer.down()


@pytest.mark.parametrize(("url", "problem"), [
    ("https://[::1", "'https://[::1' is not a valid URL: Invalid IPv6 URL"),
    ("https://[zz]/", "'https://[zz]/' is not a valid URL: 'zz' does not appear to be an IPv4 or IPv6 address"),
    ("https://x:99999", "'https://x:99999' is not a valid URL: Port out of range 0-65535"),
    ("https://x:0", "'https://x:0': a port 1-65535, and no spaces, user, ?query or #fragment"),
    ("https://api.mercadopago.com?x=1",
     "'https://api.mercadopago.com?x=1': a port 1-65535, and no spaces, user, ?query or #fragment"),
])
def test_a_broken_api_base_names_the_key(tmp_path, url, problem):
    path = Box(tmp_path).write(mercadopago__api_base=f'"{url}"')
    refused(path, f"{path}: mercadopago.api_base: {problem}")


def test_a_nul_in_a_path_names_the_key(tmp_path):
    path = Box(tmp_path).write(state__dir='"/var/lib/\\u0000x"')
    refused(path, f"{path}: state.dir: must be printable text (no tabs, line breaks or control bytes), "
                  "at most 4096 characters")


# ----------------------------------------------------------------------------------------- the token file

NOT_TEXT = "is not plain text (binary, UTF-16 or another encoding); save the access token alone in it as UTF-8 text"


@pytest.mark.parametrize("content", [
    bytes(range(256)),  # binary
    TOKEN.encode("utf-16"),  # with its BOM
    TOKEN.encode("utf-16-le"),  # without
    ("São-" + TOKEN).encode("latin-1"),
])
def test_a_token_file_that_is_not_text_is_refused_without_echoing_it(tmp_path, content):
    box = Box(tmp_path)
    path = box.write()
    box.token.write_bytes(content)
    refused(path, f"{path}: mercadopago.access_token_file: {box.token} {NOT_TEXT}", check_code=exits.CHECK)


def test_a_token_fifo_or_huge_file_is_refused_without_a_hang_or_reading_it(tmp_path):
    box = Box(tmp_path)
    path = box.write()
    box.token.unlink()
    os.mkfifo(box.token, 0o600)
    refused(path, f"{path}: mercadopago.access_token_file: {box.token} is a named pipe (FIFO), not a regular file: "
                  "it must be the access token file", check_code=exits.CHECK)
    box.token.unlink()
    with open(box.token, "wb") as handle:
        handle.truncate(1 << 30)
    box.token.chmod(0o600)
    refused(path, f"{path}: mercadopago.access_token_file: {box.token} is {1 << 30} bytes: too big for the access "
                  "token file (at most 4096)", check_code=exits.CHECK)


# ------------------------------------------------------------------------------ pins and device specs


@pytest.mark.parametrize(("changes", "key", "other", "pin"), [
    ({"leds__green": "17", "leds__red": "17"}, "leds.red", "leds.green", 17),
    ({"leds__buzzer": "13", "input__devices": '["keypad"]'}, "input.keypad_rows", "leds.buzzer", 13),
    ({"input__devices": '["keypad"]', "input__keypad_cols": "[12, 16, 20, 5]"}, "input.keypad_cols",
     "input.keypad_rows", 5),
    ({"leds__yellow": "3", "display__driver": '"ssd1327"'}, "leds.yellow", "display.interface (i2c, GPIO 2, 3)", 3),
    ({"leds__red": "24", "display__driver": '"ssd1327"', "display__interface": '"spi"'}, "leds.red",
     "display.interface (spi, GPIO 8, 9, 10, 11, 24, 25)", 24),
])
def test_a_gpio_pin_used_twice_is_refused_naming_both_keys(tmp_path, changes, key, other, pin):
    path = Box(tmp_path).write(**changes)
    refused(path, f"{path}: {key}: GPIO {pin} is also used by {other}; a pin can do one job only")


def test_leds_may_use_the_keypad_pins_when_there_is_no_keypad(tmp_path):
    path = Box(tmp_path).write(leds__green="5")
    check = mpqr(path, "check")
    assert "ok   config" in check.stdout and "config invalid" not in check.stderr


@pytest.mark.parametrize("spec", ["usb", "evdev:event3", "evdev:scanner:", "serial:/dev/ttyACM0:0",
                                  "serial:/dev/ttyACM0:99999999", "keypad:4", ""])
def test_check_refuses_every_input_spec_run_refuses_with_the_same_message(tmp_path, spec):
    path = Box(tmp_path).write(input__devices=f'["stdin", "{spec}"]')
    refused(path, f"{path}: input.devices: {spec!r} is not a valid input device; valid forms: {VALID_SPECS}")


@pytest.mark.parametrize(("changes", "message"), [
    ({"input__keypad_rows": "[5, 6]"}, "input.keypad_rows: the keypad needs 4 row pins, not 2"),
    ({"input__keypad_cols": "[12, 16]"}, "input.keypad_cols: the keypad needs 3 or 4 column pins, not 2"),
    ({"input__keypad_rows": "[5, 6, 13, 40]"}, "input.keypad_rows: must be GPIO (BCM) numbers 1-27"),
])
def test_a_keypad_run_could_not_claim_is_refused_by_check_too(tmp_path, changes, message):
    path = Box(tmp_path).write(input__devices='["keypad"]', **changes)
    refused(path, f"{path}: {message}")


# ----------------------------------------------------------------------- control socket and state directory


def test_a_control_socket_path_too_long_for_af_unix_is_refused(tmp_path):
    long = tmp_path / ("s" * (108 - len(str(tmp_path)))) / "control.sock"
    path = Box(tmp_path).write(control__socket=f'"{long}"')
    refused(path, f"{path}: control.socket: is {len(str(long))} bytes long; a Unix socket path may be at most "
                  "107 bytes: choose a shorter one")


def test_a_control_socket_that_is_a_directory_or_under_a_file_exits_3(tmp_path):
    box = Box(tmp_path)
    (tmp_path / "sock-dir").mkdir()
    path = box.write(control__socket=f'"{tmp_path / "sock-dir"}"')
    refused(path, f"{path}: control.socket: {tmp_path / 'sock-dir'} is a directory, not a socket: remove it or "
                  "choose another path", check_code=exits.CHECK)
    under = tmp_path / "catalog.csv" / "control.sock"
    path = box.write(control__socket=f'"{under}"')
    run = mpqr(path, "run")
    assert run.returncode == exits.CONFIG
    assert f"{path}: control.socket: {under}: its folder {under.parent} cannot be made: File exists" in run.stderr
    check = mpqr(path, "check")
    assert check.returncode == exits.CHECK
    assert f"FAIL control    control.socket: {under.parent} is a file, not a directory\n" in check.stdout


@pytest.mark.parametrize("where", [
    lambda tmp: (tmp / "catalog.csv" / "state", f"{tmp / 'catalog.csv' / 'state'} cannot be created: "
                                                f"{tmp / 'catalog.csv'} is a file, not a directory"),
    lambda tmp: (tmp / "catalog.csv", f"{tmp / 'catalog.csv'} is a file, not a directory"),
], ids=["under-a-file", "a-file"])
def test_an_impossible_state_dir_exits_3_not_75(tmp_path, where: Callable):
    state, problem = where(tmp_path)
    path = Box(tmp_path).write(state__dir=f'"{state}"')
    refused(path, f"{path}: state.dir: {problem}", check_code=exits.CHECK)


def test_a_journal_from_a_newer_version_or_not_a_journal_exits_3(tmp_path):
    box = Box(tmp_path)
    path = box.write()
    Journal(tmp_path / "state").close()
    db = sqlite3.connect(tmp_path / "state" / "sales.sqlite3")
    db.execute("PRAGMA user_version = 99")
    db.close()
    run = mpqr(path, "run")
    assert run.returncode == exits.CONFIG and "schema version 99 is newer than this mpqr-kiosk knows" in run.stderr
    for name in os.listdir(tmp_path / "state"):
        if name.startswith("sales.sqlite3"):
            os.unlink(tmp_path / "state" / name)
    (tmp_path / "state" / "sales.sqlite3").write_bytes(b"not a database at all" * 100)
    run = mpqr(path, "run")
    assert run.returncode == exits.CONFIG and "file is not a database" in run.stderr


def test_a_journal_locked_by_another_process_exits_75_for_systemd_to_retry(tmp_path):
    box = Box(tmp_path)
    path = box.write()
    Journal(tmp_path / "state").close()
    holder = sqlite3.connect(tmp_path / "state" / "sales.sqlite3", isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        run = mpqr(path, "run")
    finally:
        holder.close()
    assert run.returncode == exits.TEMPFAIL
    assert "cannot open the sales journal: database is locked" in run.stderr
