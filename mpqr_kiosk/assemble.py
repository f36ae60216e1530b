"""The one place that turns a config into adapters, with plain arguments: the devices, the backend, the
journal and the core. The daemon, the demo, ``check``, ``preview`` and the tests all assemble here, so they
run the same code."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict

from gpiozero.exc import GPIOZeroError
from gpiozero.pins import Factory

from mpqr_kiosk.config import Config, ConfigError, DisplayConfig, MercadoPagoConfig, PrinterConfig, zone
from mpqr_kiosk.core.events import BadScan, Key, Scan
from mpqr_kiosk.core.kiosk import Kiosk
from mpqr_kiosk.core.model import Item, Shop
from mpqr_kiosk.core.sites import Site, site
from mpqr_kiosk.core.timing import Clock, Timing
from mpqr_kiosk.devices.display import open_display
from mpqr_kiosk.devices.input import Refused, open_inputs, parse_spec
from mpqr_kiosk.devices.leds import Leds
from mpqr_kiosk.devices.printer import open_printer
from mpqr_kiosk.journal import Journal
from mpqr_kiosk.mercadopago.http import HttpClient
from mpqr_kiosk.mercadopago.instore import InstoreBackend
from mpqr_kiosk.mercadopago.orders import OrdersBackend
from mpqr_kiosk.mercadopago.seller import Seller
from mpqr_kiosk.ports import Backend, Display, InputSource, Printer
from mpqr_kiosk.redact import add_secret
from mpqr_kiosk.shell import Devices, Runtime, SystemClock

BACKENDS = {"instore": InstoreBackend, "orders": OrdersBackend}


def new_ids(pos: str) -> Callable[[], tuple[str, str]]:
    """A fresh ``external_reference`` and idempotency key per attempt: random, no personal data."""

    def make() -> tuple[str, str]:
        token = secrets.token_hex(8)
        return f"{pos}-{token}", f"{pos}-{token}-{secrets.token_hex(8)}"

    return make


def shop_of(config: Config) -> Shop:
    s = config.shop
    return Shop(s.name, s.address, s.tax_id, tuple(s.receipt_header), tuple(s.receipt_footer))


def timing_of(config: Config) -> Timing:
    """The core's durations: what the config sets, and what follows from it (a watched sale is read about
    twenty times over its watch, at most every 30 s, and never more than one late read a poll interval)."""
    mp = config.mercadopago
    late_interval = min(30.0, mp.late_watch / 20)
    return Timing(ttl=mp.order_ttl, poll_interval=mp.poll_interval, cancel_grace=mp.cancel_grace,
                  late_watch=mp.late_watch, late_interval=late_interval,
                  watch_spacing=min(2.0, max(mp.poll_interval, late_interval / 4)))


def backend_of(mp: MercadoPagoConfig, token: str, shop_name: str) -> Backend:
    """The backend ``[mercadopago] api`` names, talking to ``api_base`` with ``token``."""
    seller = Seller(mp.user_id, mp.external_store_id, mp.external_pos_id, site(mp.site), mp.notification_url,
                    shop_name)
    return BACKENDS[mp.api](HttpClient(mp.api_base, token), seller)


def display_of(cfg: DisplayConfig, the_site: Site, qr_payload: str, **overrides) -> Display:
    """The ``[display]`` the config asks for (``overrides`` replace keys, e.g. ``driver="png"``)."""
    return open_display(site=the_site, qr_payload=qr_payload, **{**asdict(cfg), **overrides})


def printer_of(cfg: PrinterConfig, timeout: float = 5.0) -> Printer:
    return open_printer(timeout=timeout, **asdict(cfg))


def build(config: Config, token: str, catalog: Mapping[str, Item], clock: Clock | None = None,
          pin_factory: Factory | None = None) -> Runtime:
    """The whole kiosk, ready for ``Runtime.start()``."""
    add_secret(token)
    check_input_specs(config)
    mp = config.mercadopago
    the_site = site(mp.site)
    kiosk = Kiosk(the_site, catalog, clock or SystemClock(), new_ids(mp.external_pos_id), timing_of(config))
    journal = Journal(config.state.dir)  # before any device: a journal that cannot open leaves the pins free
    with section(config, "display"):
        display = display_of(config.display, the_site, mp.qr_payload)
    with section(config, "printer"):
        printer = printer_of(config.printer)
    with section(config, "leds"):
        leds = Leds(config.leds.green, config.leds.yellow, config.leds.red, config.leds.buzzer,
                    pin_factory=pin_factory)
    devices = Devices(display=display, printer=printer, leds=leds)
    runtime = Runtime(kiosk, backend_of(mp, token, config.shop.name), journal, devices,
                      shop_of(config), the_site, zone(config.shop.timezone), config.state.retention_days)
    with section(config, "input"):
        devices.inputs = inputs_of(config, runtime.post, pin_factory)
    return runtime


def inputs_of(config: Config, post: Callable[[Key | Scan | BadScan], None],
              pin_factory: Factory | None = None) -> list[InputSource]:
    """The ``[input] devices``, posting keys and scans (and refused codes, for a beep) to ``post``."""
    cfg = config.input

    def refused(code: Refused) -> None:
        post(BadScan(code.reason))

    return open_inputs(cfg.devices, post, keymap=cfg.keymap, keypad_rows=cfg.keypad_rows,
                       keypad_cols=cfg.keypad_cols, pin_factory=pin_factory, on_refused=refused)


def check_input_specs(config: Config) -> None:
    """Refuse an ``[input] devices`` spec ``run`` could not open (``check`` asks the same question)."""
    for spec in config.input.devices:
        try:
            parse_spec(spec)
        except ValueError as exc:
            raise ConfigError(config.path, "input.devices", str(exc)) from None


@contextmanager
def section(config: Config, name: str) -> Iterator[None]:
    """A device the config names but the library refuses is a config error of that section (exit 3)."""
    try:
        yield
    except (ValueError, GPIOZeroError) as exc:
        raise ConfigError(config.path, f"[{name}]", str(exc)) from None
