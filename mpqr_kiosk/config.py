"""The kiosk's configuration: ``kiosk.toml`` read with ``tomllib``, every key checked.

The section and key names are a contract with technicians' files (PRODUCT.md); unknown keys are errors.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import tomllib
import urllib.parse
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

from mpqr_kiosk import emvco
from mpqr_kiosk.core.sites import SITES
from mpqr_kiosk.loopback import is_loopback_host


@dataclass(frozen=True)
class MercadoPagoConfig:
    api: str = "instore"
    site: str = "MLA"
    user_id: int = 0
    external_store_id: str = "STORE001"
    external_pos_id: str = "POS001"
    access_token_file: str = "/etc/mpqr-kiosk/access_token"
    api_base: str = "https://api.mercadopago.com"
    qr_payload: str = ""
    notification_url: str = ""
    order_ttl: float = 600.0  # seconds ("10m" in the file)
    poll_interval: float = 1.0  # seconds ("1s" in the file)
    cancel_grace: float = 15.0  # seconds a cancelled sale is read while a payment attempt is under way
    late_watch: float = 600.0  # seconds every ended sale is read again for late payments


@dataclass(frozen=True)
class ShopConfig:
    name: str = "Mi Comercio"
    address: str = ""
    tax_id: str = ""
    receipt_header: tuple[str, ...] = ()
    receipt_footer: tuple[str, ...] = ("Obrigado!",)
    # the store's location, which ``provision`` sends when it creates the store (Mercado Pago requires it)
    street_name: str = ""
    street_number: str = ""
    city: str = ""
    state: str = ""
    latitude: float = 0.0
    longitude: float = 0.0
    # the shop's day for `report` and `sales`: an IANA time zone; "" is the system's (timedatectl)
    timezone: str = ""


@dataclass(frozen=True)
class InputConfig:
    devices: tuple[str, ...] = ("evdev:auto",)
    keymap: str = "us"
    catalog: str = "/etc/mpqr-kiosk/catalog.csv"
    keypad_rows: tuple[int, ...] = (5, 6, 13, 19)
    keypad_cols: tuple[int, ...] = (12, 16, 20, 21)


@dataclass(frozen=True)
class DisplayConfig:
    driver: str = "ssd1327"  # any luma.oled driver; "png"; "none"
    interface: str = "i2c"
    i2c_port: int = 1
    i2c_address: int = 0x3C
    width: int = 128
    height: int = 128
    rotate: int = 0
    png_dir: str = ""


@dataclass(frozen=True)
class PrinterConfig:
    connection: str = "usb"  # usb | serial | network | file | dummy | none
    usb_vendor: int = 0x04B8
    usb_product: int = 0x0202
    serial_device: str = "/dev/ttyUSB0"
    serial_baudrate: int = 19200
    host: str = ""
    port: int = 9100
    file: str = "/dev/usb/lp0"
    profile: str = "TM-T20II"


@dataclass(frozen=True)
class LedsConfig:
    green: int = 17  # GPIO (BCM); 0 = not fitted
    yellow: int = 27
    red: int = 22
    buzzer: int = 18


@dataclass(frozen=True)
class StateConfig:
    dir: str = "/var/lib/mpqr-kiosk"
    retention_days: int = 400  # finished sales older than this leave the journal; their days' totals stay


@dataclass(frozen=True)
class ControlConfig:
    socket: str = "/run/mpqr-kiosk/control.sock"


@dataclass(frozen=True)
class Config:
    mercadopago: MercadoPagoConfig = field(default_factory=MercadoPagoConfig)
    shop: ShopConfig = field(default_factory=ShopConfig)
    input: InputConfig = field(default_factory=InputConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    printer: PrinterConfig = field(default_factory=PrinterConfig)
    leds: LedsConfig = field(default_factory=LedsConfig)
    state: StateConfig = field(default_factory=StateConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    path: str = ""  # the file it came from, for messages


# ---------------------------------------------------------------------------------------------- loading

DEFAULT_PATH = "/etc/mpqr-kiosk/kiosk.toml"
APIS = ("instore", "orders")
ORDERS_SITES = ("MLB", "MLA", "MLC", "MLU")  # where the Orders API serves QR (mp_api.md §12.2)
DISPLAY_INTERFACES = ("i2c", "spi")
PRINTER_CONNECTIONS = ("usb", "serial", "network", "file", "dummy", "none")
KEYMAPS = ("us", "es", "latam", "br-abnt2")
SECTIONS = {
    "mercadopago": MercadoPagoConfig,
    "shop": ShopConfig,
    "input": InputConfig,
    "display": DisplayConfig,
    "printer": PrinterConfig,
    "leds": LedsConfig,
    "state": StateConfig,
    "control": ControlConfig,
}
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATIONS = {("mercadopago", "order_ttl"), ("mercadopago", "poll_interval"), ("mercadopago", "cancel_grace"),
              ("mercadopago", "late_watch")}


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file, the key and what is wrong."""

    def __init__(self, path: str, key: str, problem: str):
        self.path, self.key, self.problem = path, key, problem
        super().__init__(f"{path}: {key}: {problem}" if key else f"{path}: {problem}")


def default_path() -> str:
    """``$MPQR_KIOSK_CONFIG`` or ``/etc/mpqr-kiosk/kiosk.toml``."""
    return os.environ.get("MPQR_KIOSK_CONFIG", DEFAULT_PATH)


def load(path: str) -> Config:
    """Read and validate a ``kiosk.toml``; raise ``ConfigError`` on the first problem."""
    try:
        data = read_small_file(path, MAX_CONFIG_BYTES, "a config file")
    except FileNotFoundError:
        raise ConfigError(path, "", "no such file (create it from config/kiosk.toml)") from None
    except UnusableFile as exc:
        raise ConfigError(path, "", str(exc)) from None
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read: {exc.strerror}") from None
    try:
        raw = tomllib.loads(_utf8(data, path))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None
    except ValueError:  # Python's own limit on integer literals (sys.get_int_max_str_digits)
        raise ConfigError(path, "", "not valid TOML: a number has more than 4300 digits") from None
    except (RecursionError, MemoryError):
        raise ConfigError(path, "", "not valid TOML: nested too deeply (lists or tables inside each other)") from None
    return parse(raw, path)


MAX_CONFIG_BYTES = 1 << 20  # a real kiosk.toml is a few KiB


class UnusableFile(Exception):
    """A path that is not a regular file of a sensible size; the message says what it is instead."""


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def read_small_file(path: str | os.PathLike, limit: int, what: str) -> bytes:
    """The bytes of the regular file ``path``. A directory, FIFO, device or socket is refused without blocking
    on it, and a file over ``limit`` bytes without reading it all (``UnusableFile``, naming ``what`` it should
    be); ``OSError`` passes through."""
    _regular(os.stat(path), limit, what)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        _regular(os.fstat(fd), limit, what)  # what was opened, should the path have changed since
        chunks: list[bytes] = []
        size = 0
        while size <= limit and (chunk := os.read(fd, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise UnusableFile(f"is more than {limit} bytes: too big for {what}")
    return b"".join(chunks)


def _regular(info: os.stat_result, limit: int, what: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
        raise UnusableFile(f"is {kind}, not a regular file: it must be {what}")
    if info.st_size > limit:
        raise UnusableFile(f"is {info.st_size} bytes: too big for {what} (at most {limit})")


def directory_problem(directory: str | os.PathLike) -> str:
    """Why ``directory`` can never be a directory this user writes in ("" when it can): a file there or above
    it, or no write permission where it is or would be created. It creates nothing."""
    path = Path(directory)
    for place in (path, *path.parents):
        try:
            info = place.stat()
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            return f"{place}: {exc.strerror}"
        start = "" if place == path else f"{path} cannot be created: "
        if not stat.S_ISDIR(info.st_mode):
            return f"{start}{place} is a file, not a directory"
        if not os.access(place, os.W_OK | os.X_OK):
            return f"{start}{place} is not writable by this user"
        return ""
    return ""


def _utf8(data: bytes, path: str) -> str:
    """The file's text; a byte that is not UTF-8 is named by line and column. A leading BOM is dropped."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[data.rfind(b"\n", 0, exc.start) + 1 : exc.start].decode("utf-8")) + 1
        raise ConfigError(path, "", f"not UTF-8: byte 0x{data[exc.start]:02X} at line {line}, column {column}; "
                                    "save the file as UTF-8 (not Latin-1 or Windows-1252)") from None
    return text.removeprefix("\ufeff")  # Notepad's byte-order mark


def parse(raw: dict, path: str = "<config>") -> Config:
    """Validate an already-decoded TOML document."""

    sections = {}
    for name, value in raw.items():
        if name not in SECTIONS:
            raise ConfigError(path, name, f"unknown section; known: {', '.join(SECTIONS)}")
        if not isinstance(value, dict):
            raise ConfigError(path, name, "must be a [section]")
        sections[name] = _section(SECTIONS[name], name, value, path)
    config = Config(**sections, path=path)
    _check(config, path)
    return config


def _section(cls: type, name: str, raw: dict, path: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        where = f"{name}.{key}"
        if key not in fields:
            raise ConfigError(path, where, f"unknown key; known: {', '.join(fields)}")
        default = fields[key].default
        if (name, key) in _DURATIONS:
            values[key] = _duration(value, path, where)
        elif isinstance(default, tuple):
            item_type = type(default[0]) if default else str
            if not isinstance(value, list) or not all(_is(v, item_type) for v in value):
                raise ConfigError(path, where, f"must be a list of {_type_name(item_type)}")
            if len(value) > MAX_LIST:
                raise ConfigError(path, where, f"has {len(value)} entries; at most {MAX_LIST}")
            values[key] = tuple(_bounded(v, path, where) for v in value)
        elif not _is(value, type(default)):
            raise ConfigError(path, where, f"must be {_type_name(type(default))}, not {_type_name(type(value))}")
        else:
            values[key] = _bounded(value, path, where)
    return cls(**values)


MAX_LIST = 32
MAX_STRING = 4096  # PATH_MAX; shop texts have their own, tighter bound


def _bounded(value: object, path: str, where: str) -> object:
    """Every string is printable text of bounded length: a NUL or a line break in a path, a host or a URL
    would fail far from here, without naming the key."""
    if isinstance(value, str) and not (value.isprintable() and len(value) <= MAX_STRING):
        raise ConfigError(path, where, "must be printable text (no tabs, line breaks or control bytes), "
                                       f"at most {MAX_STRING} characters")
    return value


def _is(value: object, expected: type) -> bool:
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _type_name(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            list: "a list", dict: "a table"}.get(kind, kind.__name__)


def _duration(value: object, path: str, where: str) -> float:
    """``"10m"``, ``"1s"``, ``"500ms"`` or a number of seconds."""
    if _is(value, float):
        seconds = float(value)
    elif isinstance(value, str):
        number, unit = value.strip(), "s"
        for suffix in sorted(_UNITS, key=len, reverse=True):
            if number.endswith(suffix):
                number, unit = number[: -len(suffix)], suffix
                break
        try:
            seconds = float(number) * _UNITS[unit]
        except ValueError:
            raise ConfigError(path, where, f"{value!r} is not a duration like \"10m\", \"1s\" or \"500ms\"") from None
    else:
        raise ConfigError(path, where, "must be a duration like \"10m\" or \"1s\"")
    if seconds <= 0:
        raise ConfigError(path, where, "must be longer than zero")
    return seconds


def _check(config: Config, path: str) -> None:
    """The rules between keys and on values that types alone cannot express."""
    mp = config.mercadopago
    base_problem = _url_problem(mp.api_base)
    notify_problem = mp.notification_url and _url_problem(mp.notification_url, query=True)
    rules = [
        ("mercadopago.api", mp.api in APIS, f"must be one of {', '.join(APIS)}"),
        ("mercadopago.site", mp.site in SITES, f"unknown site {mp.site!r}; one of {', '.join(SITES)}"),
        ("mercadopago.api", mp.api != "orders" or mp.site not in SITES or mp.site in ORDERS_SITES,
         f"\"orders\" is not available in {mp.site}: Mercado Pago's Orders API serves {', '.join(ORDERS_SITES)} "
         "only; use api = \"instore\""),
        ("mercadopago.user_id", mp.user_id > 0, "must be your Mercado Pago user (collector) id"),
        ("mercadopago.external_pos_id", re.fullmatch(r"[A-Za-z0-9]{1,39}", mp.external_pos_id) is not None,
         "letters and digits only, under 40 characters (Mercado Pago rule)"),
        ("mercadopago.external_store_id", re.fullmatch(r"[A-Za-z0-9]{1,60}", mp.external_store_id) is not None,
         "letters and digits only"),
        ("mercadopago.api_base", not base_problem, base_problem),
        ("mercadopago.api_base", _safe_url(mp.api_base),
         "must be an https:// URL (plain http:// only to this machine, e.g. the emulator on 127.0.0.1)"),
        ("mercadopago.notification_url", not notify_problem, notify_problem),
        ("mercadopago.order_ttl", 30 <= mp.order_ttl <= 24 * 3600, "must be between 30s and 24h"),
        ("mercadopago.poll_interval", 0.1 <= mp.poll_interval <= 60, "must be between 100ms and 60s"),
        ("mercadopago.cancel_grace", 0.5 <= mp.cancel_grace <= 300, "must be between 500ms and 5m"),
        ("mercadopago.late_watch", 5 <= mp.late_watch <= 24 * 3600, "must be between 5s and 24h"),
        ("mercadopago.qr_payload", not mp.qr_payload or _valid_payload(mp.qr_payload),
         "is not a valid EMVCo payload (bad CRC or TLV); run `mpqr-kiosk provision` again"),
        ("shop.name", bool(config.shop.name.strip()), "must not be empty"),
        # printed and drawn as text: a control byte would reach the printer as an ESC/POS command
        *((f"shop.{key}", all(t.isprintable() and len(t) <= MAX_SHOP_TEXT for t in _texts(getattr(config.shop, key))),
           f"must be printable text (no tabs, line breaks or control bytes), at most {MAX_SHOP_TEXT} characters"
           f"{' a line' if key.startswith('receipt_') else ''}")
          for key in ("name", "address", "tax_id", "receipt_header", "receipt_footer")),
        ("shop.latitude", -90 <= config.shop.latitude <= 90, "must be a latitude, -90 to 90"),
        ("shop.longitude", -180 <= config.shop.longitude <= 180, "must be a longitude, -180 to 180"),
        ("state.retention_days", 30 <= config.state.retention_days <= 3650,
         "must be between 30 and 3650 days (report, reconcile and refunds need at least the last month)"),
        ("shop.timezone", not config.shop.timezone or zone(config.shop.timezone) is not None,
         "unknown time zone: an IANA name such as \"America/Sao_Paulo\" (timedatectl list-timezones), "
         "or \"\" for the system's"),
        ("input.keymap", config.input.keymap in KEYMAPS, f"must be one of {', '.join(KEYMAPS)}"),
        ("display.interface", config.display.interface in DISPLAY_INTERFACES, "must be i2c or spi"),
        ("display.width", 8 <= config.display.width <= 1024, "must be a panel width in pixels"),
        ("display.height", 8 <= config.display.height <= 1024, "must be a panel height in pixels"),
        ("display.rotate", config.display.rotate in (0, 1, 2, 3), "must be 0, 1, 2 or 3 (quarter turns)"),
        ("display.png_dir", config.display.driver != "png" or bool(config.display.png_dir),
         "is required when driver = \"png\""),
        ("printer.connection", config.printer.connection in PRINTER_CONNECTIONS,
         f"must be one of {', '.join(PRINTER_CONNECTIONS)}"),
        ("printer.host", config.printer.connection != "network" or bool(config.printer.host),
         "is required when connection = \"network\""),
        ("printer.port", 0 < config.printer.port < 65536, "must be a TCP port"),
        ("printer.usb_vendor", 0 <= config.printer.usb_vendor <= 0xFFFF, "must be a USB vendor id, 0x0000-0xFFFF"),
        ("printer.usb_product", 0 <= config.printer.usb_product <= 0xFFFF,
         "must be a USB product id, 0x0000-0xFFFF"),
        ("printer.serial_baudrate", 50 <= config.printer.serial_baudrate <= 4_000_000,
         "must be a baud rate such as 9600 or 19200"),
        ("display.i2c_port", 0 <= config.display.i2c_port <= 255, "must be an I2C bus number (1 on a Raspberry Pi)"),
        ("display.i2c_address", 0x03 <= config.display.i2c_address <= 0x77,
         "must be a 7-bit I2C address, 0x03-0x77 (usually 0x3C)"),
        ("state.dir", bool(config.state.dir), "must not be empty"),
        ("control.socket", bool(config.control.socket), "must not be empty"),
        ("control.socket", len(os.fsencode(config.control.socket)) <= MAX_SOCKET_PATH,
         f"is {len(os.fsencode(config.control.socket))} bytes long; a Unix socket path may be at most "
         f"{MAX_SOCKET_PATH} bytes: choose a shorter one"),
    ]
    for pin_name in ("green", "yellow", "red", "buzzer"):
        pin = getattr(config.leds, pin_name)
        rules.append((f"leds.{pin_name}", 0 <= pin <= 27, "must be a GPIO (BCM) number 1-27, or 0 if not fitted"))
    if "keypad" in config.input.devices:
        rows, cols = config.input.keypad_rows, config.input.keypad_cols
        rules += [
            ("input.keypad_rows", len(rows) == 4, f"the keypad needs 4 row pins, not {len(rows)}"),
            ("input.keypad_cols", len(cols) in (3, 4), f"the keypad needs 3 or 4 column pins, not {len(cols)}"),
            *((f"input.keypad_{name}", all(1 <= pin <= 27 for pin in pins), "must be GPIO (BCM) numbers 1-27")
              for name, pins in (("rows", rows), ("cols", cols))),
        ]
    for key, ok, problem in rules:
        if not ok:
            raise ConfigError(path, key, problem)
    _check_pins(config, path)


MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes with the final NUL
# GPIO (BCM) pins a display's bus takes on a Raspberry Pi: luma.core's defaults (spi: SPI0 CE0, MISO, MOSI,
# SCLK and its DC 24 and RST 25 lines; i2c: the bus's SDA and SCL)
BUS_PINS = {"spi": (8, 9, 10, 11, 24, 25), "i2c0": (0, 1), "i2c1": (2, 3)}


def _check_pins(config: Config, path: str) -> None:
    """Each GPIO pin does one job: two LEDs, an LED and a keypad line, or either and the display's bus on one
    pin would only fail when the daemon claims it."""
    users: dict[int, str] = {}
    display = config.display
    if display.driver not in ("png", "none"):
        bus = "spi" if display.interface == "spi" else f"i2c{display.i2c_port}"
        users.update((pin, f"display.interface ({display.interface}, GPIO "
                      f"{', '.join(map(str, BUS_PINS[bus]))})") for pin in BUS_PINS.get(bus, ()))
    pins = [(f"leds.{name}", getattr(config.leds, name)) for name in ("green", "yellow", "red", "buzzer")]
    if "keypad" in config.input.devices:
        pins += [(f"input.keypad_{name}", pin) for name in ("rows", "cols")
                 for pin in getattr(config.input, f"keypad_{name}")]
    for key, pin in pins:
        if not pin and key.startswith("leds."):
            continue  # not fitted
        if pin in users:
            raise ConfigError(path, key, f"GPIO {pin} is also used by {users[pin]}; a pin can do one job only")
        users[pin] = key


MAX_SHOP_TEXT = 200


def _texts(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


def zone(name: str) -> zoneinfo.ZoneInfo | None:
    """The IANA time zone ``name``; None when it is empty or unknown (then the system's is meant)."""
    if not name or name.startswith("/") or ".." in name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _url_problem(url: str, query: bool = False) -> str:
    """What makes ``url`` unusable ("" when nothing does): as a base URL, or with ``query`` as a URL that may
    carry one (``notification_url``: Mercado Pago's docs add ``?source_news=webhooks``)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:  # an unclosed or bad [IPv6] host, a port that is not a number 0-65535
        return f"{url!r} is not a valid URL: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL with a host"
    if port == 0 or " " in url or (parts.query and not query) or parts.fragment or parts.username is not None:
        return f"{url!r}: a port 1-65535, and no spaces, user{'' if query else ', ?query'} or #fragment"
    return ""


def _safe_url(url: str) -> bool:
    """The token travels in a header: never in clear text beyond this machine."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and is_loopback_host(parts.hostname or "")


def _valid_payload(payload: str) -> bool:
    try:
        emvco.verify(payload)
    except ValueError:
        return False
    return True
