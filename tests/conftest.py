"""Shared fixtures: the Mercado Pago emulator over real HTTP on loopback, and backends talking to it."""

import os
import time

import pytest

os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

from flavours import FLAVOURS  # noqa: E402

from mpqr_kiosk.assemble import backend_of  # noqa: E402
from mpqr_kiosk.config import MercadoPagoConfig  # noqa: E402
from mpqr_kiosk.emulator.server import EmulatorServer  # noqa: E402
from mpqr_kiosk.emulator.state import Emulator  # noqa: E402

USER_ID = 123456789
TOKEN = f"TEST-SECRET-abcdef0123456789-{USER_ID}"


@pytest.fixture
def flavour(request):
    """(API, merchant-order mode) of ``flavours.FLAVOURS``; tests parametrised on ``flavour`` run under each."""
    return getattr(request, "param", FLAVOURS[0])


@pytest.fixture
def emulator(request, flavour):
    """The emulator over HTTP, in the merchant-order mode a test asks for (``indirect`` parametrisation),
    else its flavour's."""
    emu = Emulator(site="MLB", user_id=USER_ID, merchant_order=getattr(request, "param", flavour[1]))
    with EmulatorServer(emu) as server:
        emu.url = server.url
        yield emu


def mp_config(emulator, **changes) -> MercadoPagoConfig:
    values = dict(site=emulator.site.id, user_id=USER_ID, api_base=emulator.url, order_ttl=120.0, poll_interval=0.1)
    values.update(changes)
    return MercadoPagoConfig(**values)


@pytest.fixture(params=["instore", "orders"])
def backend(request, emulator):
    """Each backend, against the emulator."""
    return backend_of(mp_config(emulator, api=request.param), TOKEN, "Padaria Teste")


@pytest.fixture
def instore(emulator):
    return backend_of(mp_config(emulator, api="instore"), TOKEN, "Padaria Teste")


def wait_for(condition, timeout: float = 3.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def sources():
    """Input sources a test started; each is stopped afterwards."""
    started = []
    yield started
    for source in started:
        source.stop()


class SettableClock:
    """A wall clock a test moves by hand (the emulator checks expiry against it)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now
