"""Config loading: the example file is valid, and every kind of mistake names the file and the key."""

import subprocess
import sys
from pathlib import Path

import pytest

from mpqr_kiosk import config as cfg

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_example_config_is_valid_and_matches_the_documented_defaults():
    config = cfg.load(str(ROOT / "config" / "kiosk.toml"))
    defaults = cfg.Config()
    for section in ("display", "printer", "leds", "state", "control"):
        assert getattr(config, section) == getattr(defaults, section), section
    assert config.mercadopago.order_ttl == 600 and config.mercadopago.poll_interval == 1
    assert config.shop.name == "Padaria São João"


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[mercadopago]\nuser_id = 1\ncolour = 'red'\n", "mercadopago.colour", "unknown key"),
        ("[mercadopgo]\nsite = 'MLA'\n", "mercadopgo", "unknown section"),
        ("[mercadopago]\nuser_id = '123'\n", "mercadopago.user_id", "must be an integer, not a string"),
        ("[mercadopago]\nsite = 'MLX'\nuser_id = 1\n", "mercadopago.site", "unknown site 'MLX'"),
        ("[mercadopago]\n", "mercadopago.user_id", "user (collector) id"),
        ("[mercadopago]\nuser_id = 1\nexternal_pos_id = 'P-1'\n", "mercadopago.external_pos_id", "letters and"),
        ("[mercadopago]\nuser_id = 1\norder_ttl = 'ten minutes'\n", "mercadopago.order_ttl", "not a duration"),
        ("[mercadopago]\nuser_id = 1\norder_ttl = '5s'\n", "mercadopago.order_ttl", "between 30s and 24h"),
        ("[mercadopago]\nuser_id = 1\nqr_payload = '000201010211'\n", "mercadopago.qr_payload", "EMVCo"),
        ("[mercadopago]\nuser_id = 1\n[input]\ndevices = 'stdin'\n", "input.devices", "list of a string"),
        ("[mercadopago]\nuser_id = 1\n[leds]\nred = 40\n", "leds.red", "GPIO"),
        ("[mercadopago]\nuser_id = 1\n[display]\ndriver = 'png'\n", "display.png_dir", "required"),
        ("[mercadopago]\nuser_id = 1\n[printer]\nconnection = 'bluetooth'\n", "printer.connection", "one of"),
        ("[mercadopago]\nuser_id = 1\n[shop]\nname = true\n", "shop.name", "must be a string, not true or false"),
        ("[mercadopago]\nuser_id = 1\nsite = 'MLM'\napi = 'orders'\n", "mercadopago.api",
         "serves MLB, MLA, MLC, MLU only"),
        ("[mercadopago]\nuser_id = 1\nsite = 'MCO'\napi = 'orders'\n", "mercadopago.api", "not available in MCO"),
        ("[mercadopago]\nuser_id = 1\nsite = 'MPE'\napi = 'orders'\n", "mercadopago.api", "use api = \"instore\""),
        ("[mercadopago]\nuser_id = 1\n[shop]\nlatitude = 123.0\n", "shop.latitude", "-90 to 90"),
        ("[mercadopago]\nuser_id = 1\nlate_watch = '1s'\n", "mercadopago.late_watch", "between 5s and 24h"),
        ("[mercadopago]\nuser_id = 1\nnotification_url = 'https://[x/ipn'\n", "mercadopago.notification_url",
         "is not a valid URL"),
        ("[mercadopago]\nuser_id = 1\n[printer]\nusb_vendor = 0x10000\n", "printer.usb_vendor", "0x0000-0xFFFF"),
        ("[mercadopago]\nuser_id = 1\n[display]\ni2c_address = 0x3C0\n", "display.i2c_address", "7-bit"),
        ("[mercadopago]\nuser_id = 1\n[input]\ndevices = ['stdin', 'keypad']\nkeypad_cols = [12, 12, 20]\n",
         "input.keypad_cols", "GPIO 12 is also used by input.keypad_cols"),
        ("[mercadopago]\nuser_id = 1\n[shop]\nreceipt_footer = [" + "'x', " * 33 + "]\n", "shop.receipt_footer",
         "has 33 entries; at most 32"),
    ],
)
def test_each_mistake_names_file_key_and_problem(tmp_path, text, key, problem):
    path = write(tmp_path, text)
    with pytest.raises(cfg.ConfigError) as raised:
        cfg.load(path)
    assert raised.value.key == key
    assert problem in str(raised.value)
    assert str(raised.value).startswith(f"{path}: {key}: ")


def test_broken_toml_and_missing_file(tmp_path):
    with pytest.raises(cfg.ConfigError, match="not valid TOML"):
        cfg.load(write(tmp_path, "[mercadopago\n"))
    with pytest.raises(cfg.ConfigError, match="no such file"):
        cfg.load(str(tmp_path / "absent.toml"))


def test_durations_and_numbers():
    config = cfg.parse({"mercadopago": {"user_id": 1, "order_ttl": "90s", "poll_interval": "500ms"}})
    assert config.mercadopago.order_ttl == 90 and config.mercadopago.poll_interval == 0.5
    assert cfg.parse({"mercadopago": {"user_id": 1, "order_ttl": 45}}).mercadopago.order_ttl == 45


def test_cli_exits_3_with_one_message_naming_file_and_key(tmp_path):
    path = write(tmp_path, "[mercadopago]\nuser_id = 1\nsite = 'XXX'\n")
    done = subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", path, "check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1
    assert path in done.stderr and "mercadopago.site" in done.stderr


@pytest.mark.parametrize("site_id", ["MLB", "MLA", "MLC", "MLU"])
def test_the_orders_api_is_accepted_where_mercado_pago_serves_it(site_id):
    assert cfg.parse({"mercadopago": {"user_id": 1, "site": site_id, "api": "orders"}}).mercadopago.api == "orders"


def test_the_example_config_documents_every_key_of_every_section():
    text = (ROOT / "config" / "kiosk.toml").read_text(encoding="utf-8")
    for section, cls in cfg.SECTIONS.items():
        for name in cls.__dataclass_fields__:
            assert f"\n{name} = " in text, f"[{section}] {name} is not in config/kiosk.toml"


@pytest.mark.parametrize(("key", "value"), [
    ("name", "Padaria\x1bp\x00"), ("address", "Rua A\nRua B"), ("receipt_footer", ["Obrigado!", "\x1dV\x00"]),
    ("receipt_header", ["x" * 201]),
])
def test_shop_texts_are_printable_text(key, value):
    with pytest.raises(cfg.ConfigError, match=f"shop.{key}: must be printable text"):
        cfg.parse({"mercadopago": {"user_id": 1}, "shop": {key: value}})


def test_a_notification_url_may_carry_a_query_the_api_base_may_not():
    """Mercado Pago's notification docs add ``?source_news=webhooks`` to the notification URL (mp_api.md)."""
    url = "https://shop.example/mp?source_news=webhooks"
    parsed = cfg.parse({"mercadopago": {"user_id": 1, "notification_url": url}}, "k.toml")
    assert parsed.mercadopago.notification_url == url
    with pytest.raises(cfg.ConfigError, match=r"mercadopago\.api_base: .*no spaces, user, \?query or #fragment"):
        cfg.parse({"mercadopago": {"user_id": 1, "api_base": url}}, "k.toml")
    with pytest.raises(cfg.ConfigError, match=r"mercadopago\.notification_url: .*no spaces, user or #fragment"):
        cfg.parse({"mercadopago": {"user_id": 1, "notification_url": url + "#x"}}, "k.toml")
