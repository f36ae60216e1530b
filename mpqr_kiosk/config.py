"""The kiosk's configuration: ``kiosk.toml`` read with ``tomllib``, every key checked.

The section and key names are a contract with technicians' files (PRODUCT.md); unknown keys are errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass(frozen=True)
class ShopConfig:
    name: str = "Mi Comercio"
    address: str = ""
    tax_id: str = ""
    receipt_header: tuple[str, ...] = ()
    receipt_footer: tuple[str, ...] = ("Obrigado!",)


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
