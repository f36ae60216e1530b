"""Builds a runnable kiosk from a config: the adapters it names, the backend, the journal and the core.
The daemon, the demo and the tests all assemble the kiosk here, so they run the same code."""

from __future__ import annotations

import secrets
from contextlib import contextmanager

from mpqr_kiosk.catalog import Catalog
from mpqr_kiosk.config import Config, ConfigError
from mpqr_kiosk.core.events import BadScan
from mpqr_kiosk.core.kiosk import Kiosk, Timing
from mpqr_kiosk.core.model import Shop
from mpqr_kiosk.core.sites import site
from mpqr_kiosk.devices.display import open_display
from mpqr_kiosk.devices.input import open_inputs
from mpqr_kiosk.devices.leds import Leds
from mpqr_kiosk.devices.printer import open_printer
from mpqr_kiosk.journal import Journal
from mpqr_kiosk.logsetup import add_secret
from mpqr_kiosk.mercadopago.backend import open_backend
from mpqr_kiosk.shell import Devices, Runtime, SystemClock


def new_ids(pos: str):
    """A fresh ``external_reference`` and idempotency key per attempt: random, no personal data."""

    def make() -> tuple[str, str]:
        token = secrets.token_hex(8)
        return f"{pos}-{token}", f"{pos}-{token}-{secrets.token_hex(8)}"

    return make


def shop_of(config: Config) -> Shop:
    s = config.shop
    return Shop(s.name, s.address, s.tax_id, tuple(s.receipt_header), tuple(s.receipt_footer))


def timing_of(config: Config) -> Timing:
    mp = config.mercadopago
    return Timing(ttl=mp.order_ttl, poll_interval=mp.poll_interval)


def build(config: Config, token: str, catalog: Catalog, clock=None, pin_factory=None) -> Runtime:
    """The whole kiosk, ready for ``Runtime.start()``."""
    add_secret(token)
    mp = config.mercadopago
    the_site = site(mp.site)
    kiosk = Kiosk(the_site, catalog.lookup, clock or SystemClock(), new_ids(mp.external_pos_id), timing_of(config))
    with _section(config, "display"):
        display = open_display(config.display, the_site, mp.qr_payload)
    with _section(config, "printer"):
        printer = open_printer(config.printer)
    devices = Devices(display=display, printer=printer, leds=Leds(config.leds, pin_factory=pin_factory))
    runtime = Runtime(kiosk, open_backend(mp, token, config.shop.name), Journal(config.state.dir), devices,
                      shop_of(config))
    with _section(config, "input"):
        devices.inputs = open_inputs(config.input, runtime.post, pin_factory=pin_factory,
                                     on_refused=lambda refused: runtime.post(BadScan(refused.reason)))
    return runtime


@contextmanager
def _section(config: Config, name: str):
    """A device the config names but the library refuses is a config error of that section (exit 3)."""
    try:
        yield
    except ValueError as exc:
        raise ConfigError(config.path, f"[{name}]", str(exc)) from None
