"""The technician's commands: check, provision, preview, diagnostics; token handling; sd_notify."""

import os
import socket
import subprocess
import sys
import tarfile

import pytest

from mpqr_kiosk import check, cli, config, diagnostics, emvco, notify, preview, provision
from mpqr_kiosk.config import ConfigError
from mpqr_kiosk.emulator.printer import LoopbackPrinter
from mpqr_kiosk.token import load_token

# shaped like a production token, but not a real one (the hex part has non-hex letters)
TOKEN = "APP_USR-1234567890123456-112710-fakefakefakefakefakefakefakefake-123456789"


def write_config(tmp_path, emulator, *, payload=None, pos="POS001", printer_port=None, display="png") -> str:
    token = tmp_path / "access_token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    (tmp_path / "catalog.csv").write_text("code,title,unit price,sku\n1,Café,3.00,C\n", encoding="utf-8")
    printer = (f'connection = "network"\nhost = "127.0.0.1"\nport = {printer_port}' if printer_port
               else 'connection = "dummy"')
    text = f"""# the shop's box
[mercadopago]
site = "{emulator.site.id}"
user_id = {emulator.user_id}
external_pos_id = "{pos}"
access_token_file = "{token}"
api_base = "{emulator.url}"
# filled by provision
qr_payload = "{payload if payload is not None else emulator.payload('POS001')}"

[shop]
name = "Padaria São João"

[input]
devices = ["evdev:/dev/input/by-id/usb-not-plugged-event-kbd"]
catalog = "{tmp_path / 'catalog.csv'}"

[display]
driver = "{display}"
png_dir = "{tmp_path / 'frames'}"
width = 128
height = 64

[printer]
{printer}

[state]
dir = "{tmp_path / 'state'}"

[control]
socket = "{tmp_path / 'control.sock'}"
"""
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_check_passes_line_by_line_and_warns_about_small_panels(tmp_path, emulator, capsys):
    printer = LoopbackPrinter().up()
    try:
        path = write_config(tmp_path, emulator, printer_port=printer.port)
        assert check.run(path) == 0
    finally:
        printer.down()
    out = capsys.readouterr().out
    lines = {line.split()[1]: line for line in out.splitlines()}
    for what in ("config", "catalog", "journal", "printer", "token", "pos", "qr"):
        assert lines[what].startswith("ok"), out
    assert lines["display"].startswith("warn") and "1 px/module" in lines["display"]
    assert lines["input"].startswith("warn") and "not plugged in" in lines["input"]
    assert TOKEN not in out


def test_check_fails_with_exit_4_naming_what_is_wrong(tmp_path, emulator, capsys):
    path = write_config(tmp_path, emulator, pos="POS999", printer_port=1)  # no such POS; nothing on port 1
    assert check.run(path) == 4
    out = capsys.readouterr().out
    assert "FAIL pos" in out and "POS999" in out and "provision" in out
    assert "FAIL printer" in out


def test_check_refuses_a_token_file_others_can_read(tmp_path, emulator, capsys):
    path = write_config(tmp_path, emulator)
    (tmp_path / "access_token").chmod(0o644)
    assert check.run(path) == 4
    assert "FAIL token" in capsys.readouterr().out


def test_provision_creates_the_pos_and_writes_its_payload_keeping_comments(tmp_path, emulator, capsys):
    path = write_config(tmp_path, emulator, payload="", pos="CAIXA2")
    assert provision.run(path) == 0
    text = open(path, encoding="utf-8").read()
    assert "# the shop's box" in text and "# filled by provision" in text
    payload = config.load(path).mercadopago.qr_payload
    emvco.verify(payload)
    assert payload == emulator.payload("CAIXA2")
    pos = next(p for p in emulator.snapshot()["pos"] if p["external_id"] == "CAIXA2")
    assert pos["fixed_amount"] is True
    assert provision.run(path) == 0  # re-runnable: finds what it made
    assert "unchanged" in capsys.readouterr().out
    assert sum(p["external_id"] == "CAIXA2" for p in emulator.snapshot()["pos"]) == 1


def test_preview_renders_every_screen_and_a_receipt(tmp_path, emulator):
    path = write_config(tmp_path, emulator)
    assert preview.run(path, tmp_path / "preview") == 0
    names = {p.stem.split("-", 1)[1] for p in (tmp_path / "preview" / "screens").glob("*.png")}
    assert names == {"ready", "entering", "pay", "customer_paying", "rejected", "paid", "cancelled", "expired",
                     "review", "offline", "printer_problem"}
    assert (tmp_path / "preview" / "receipt.png").stat().st_size > 0
    assert (tmp_path / "preview" / "closing-ticket.png").stat().st_size > 0


def test_diagnostics_bundle_has_the_facts_and_never_the_token(tmp_path, emulator):
    path = write_config(tmp_path, emulator)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"# someone pasted the token here once: {TOKEN}\n")
    out = tmp_path / "bundle.tar.gz"
    assert diagnostics.run(path, out) == 0
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    with tarfile.open(out) as bundle:
        files = {m.name.split("/", 1)[1]: bundle.extractfile(m).read().decode() for m in bundle.getmembers()}
    assert {"config.toml", "versions.json", "devices.txt", "status.json"} <= set(files)
    assert "python-escpos" in files["versions.json"]
    assert "not reachable" in files["status.json"]
    for text in files.values():
        assert TOKEN not in text and "fakefakefakefakefakefakefakefake" not in text
    assert "***" in files["config.toml"]


def test_token_from_a_systemd_credential(tmp_path, monkeypatch):
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "mp-access-token").write_text("TEST-from-credential-1\n")
    (credentials / "mp-access-token").chmod(0o440)  # systemd's own mode for credentials
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    assert load_token(config.MercadoPagoConfig(access_token_file="/nonexistent"), "kiosk.toml") == \
        "TEST-from-credential-1"


@pytest.mark.parametrize(("content", "problem"), [("", "alone, on one line"), ("a b", "alone, on one line")])
def test_token_file_must_hold_one_token(tmp_path, content, problem):
    path = tmp_path / "token"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=problem):
        load_token(config.MercadoPagoConfig(access_token_file=str(path)), "kiosk.toml")


def test_missing_token_file_names_the_key(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_token(config.MercadoPagoConfig(access_token_file=str(tmp_path / "none")), "kiosk.toml")
    assert raised.value.key == "mercadopago.access_token_file"


def test_sd_notify_fallback_speaks_the_protocol(tmp_path, monkeypatch):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify"))
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setattr(notify, "_sd_daemon", None)  # as without systemd-python
    assert notify.notify("READY=1\nSTATUS=Ready") is True
    assert listener.recv(100) == b"READY=1\nSTATUS=Ready"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert notify.notify("READY=1") is False
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert notify.watchdog_interval() == 15
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert notify.watchdog_interval() is None


@pytest.mark.parametrize("library", [True, False], ids=["systemd-python", "fallback"])
def test_sd_notify_to_a_socket_gone_away_is_false_never_an_exception(tmp_path, monkeypatch, library, caplog):
    """The manager (systemd, or a harness) closed its notify socket before our STOPPING=1: a warning, no crash."""
    if library:
        pytest.importorskip("systemd.daemon")
    else:
        monkeypatch.setattr(notify, "_sd_daemon", None)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify"))
    listener.close()  # the path stays; nothing listens: connection refused
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    assert notify.notify("STOPPING=1") is False
    assert "sd_notify to" in caplog.text and "failed" in caplog.text


def test_control_commands_without_a_daemon_exit_75(tmp_path, emulator, monkeypatch, capsys):
    path = write_config(tmp_path, emulator)
    assert cli.main(["--config", path, "status"]) == 75
    assert "not running" in capsys.readouterr().err


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for command in ("run", "demo", "emulator", "provision", "check", "status", "sale", "cancel", "reprint",
                    "refund", "preview", "diagnostics"):
        assert command in text


def test_a_token_file_with_a_byte_order_mark_works(tmp_path):
    path = tmp_path / "token"
    path.write_text("\ufeffTEST-from-notepad-123456789\r\n", encoding="utf-8")
    path.chmod(0o600)
    assert load_token(config.MercadoPagoConfig(access_token_file=str(path)), "k.toml") == "TEST-from-notepad-123456789"


def test_a_token_with_foreign_characters_is_refused_without_echoing_it(tmp_path):
    path = tmp_path / "token"
    path.write_text("TEST-12345678\u00e9secret")
    path.chmod(0o600)
    with pytest.raises(ConfigError) as raised:
        load_token(config.MercadoPagoConfig(access_token_file=str(path)), "k.toml")
    assert "secret" not in str(raised.value)


@pytest.mark.parametrize(("url", "ok"), [("https://api.mercadopago.com", True), ("http://127.0.0.1:8765", True),
                                         ("http://localhost:8765", True), ("http://api.mercadopago.com", False),
                                         ("http://192.168.0.10:8765", False), ("ftp://x", False)])
def test_the_token_never_travels_in_clear_text_beyond_this_machine(url, ok):
    raw = {"mercadopago": {"user_id": 1, "api_base": url}}
    if ok:
        assert config.parse(raw).mercadopago.api_base == url
    else:
        with pytest.raises(ConfigError, match="mercadopago.api_base"):
            config.parse(raw)


def test_a_device_the_library_refuses_is_a_config_error(tmp_path, emulator, capsys):
    path = write_config(tmp_path, emulator, display="ssd9999")
    text = open(path, encoding="utf-8").read().replace('connection = "dummy"',
                                                        'connection = "file"\nprofile = "NO-SUCH-PRINTER"')
    open(path, "w", encoding="utf-8").write(text)
    assert check.run(path) == 4
    out = capsys.readouterr().out
    assert "FAIL display" in out and "ssd9999" in out
    assert "FAIL printer" in out and "NO-SUCH-PRINTER" in out
    done = subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", path, "run"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"})
    assert done.returncode == 3 and "[display]" in done.stderr and "ssd9999" in done.stderr


def test_a_refused_start_lights_red_solid_then_exits_3(tmp_path, emulator, monkeypatch):
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    from mpqr_kiosk import daemon

    path = write_config(tmp_path, emulator)
    (tmp_path / "catalog.csv").write_text("code,title,unit price,sku\n1,Café,-3.00,C\n", encoding="utf-8")
    monkeypatch.setattr(daemon, "FATAL_HOLD", 0.05)
    monkeypatch.setattr(Device, "pin_factory", MockFactory())
    assert daemon.run(path) == 3
    red = Device.pin_factory.pin(config.LedsConfig().red)
    assert True in [bool(s.state) for s in red.states]  # it was lit, steadily (no blink thread)
    green = Device.pin_factory.pin(config.LedsConfig().green)
    assert not any(bool(s.state) for s in green.states)


def test_provision_exits_3_when_the_technician_must_fix_the_config_or_the_token(tmp_path, emulator, capsys):
    path = write_config(tmp_path, emulator, payload="")
    text = open(path, encoding="utf-8").read().replace('[mercadopago]\n', '[mercadopago]\nexternal_store_id = "NEW1"\n')
    open(path, "w", encoding="utf-8").write(text)
    assert provision.run(path) == 3  # a new store needs the shop's location
    assert "needs its location: fill in [shop] street_name" in capsys.readouterr().err
    emulator.tokens = {TOKEN: emulator.user_id}  # from now on the emulator knows one token only
    (tmp_path / "access_token").write_text("APP_USR-not-a-token-of-this-account\n")
    assert provision.run(path) == 3
    err = capsys.readouterr().err
    assert "Mercado Pago refused the token" in err and "not-a-token" not in err
    assert "NEW1" not in [store["external_id"] for store in emulator.snapshot()["stores"]]
