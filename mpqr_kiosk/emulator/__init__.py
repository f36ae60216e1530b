"""A Mercado Pago emulator on loopback: stores, POS, in-store and Orders-API QR orders, buyers, faults."""

from mpqr_kiosk.emulator.server import EmulatorServer
from mpqr_kiosk.emulator.state import Emulator

__all__ = ["Emulator", "EmulatorServer"]
