"""devices/printer.py: real python-escpos transports against a loopback fake printer and a pty."""

from __future__ import annotations

import os
import platform
import select
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from mpqr_kiosk.core.model import Item, Sale, Shop
from mpqr_kiosk.core.sites import site
from mpqr_kiosk.devices.printer import (
    UNKNOWN,
    DummyPrinter,
    NullPrinter,
    PrinterError,
    PrinterStatus,
    open_printer,
)
from mpqr_kiosk.emulator.printer import LoopbackPrinter
from mpqr_kiosk.receipt import Receipt, build_receipt

REFERENCE = b"mpqr-20261127-0042-7f3a"
CUT = b"\x1dV\x00"
CODE_PAGE = b"\x1bt"


def receipt(total: int = 123450) -> Receipt:
    items = (Item("Pão de queijo", total),)
    sale = Sale(REFERENCE.decode(), "k", "MLB", items, total, 0.0, payment_id="1234")
    return build_receipt(sale, Shop("Padaria São João"), site("MLB"), datetime(2026, 11, 27, 10, 52), False)


@pytest.fixture
def fake() -> LoopbackPrinter:
    server = LoopbackPrinter().up()
    yield server
    server.down()


def network(port: int, timeout: float = 2.0):
    return open_printer("network", host="127.0.0.1", port=port, timeout=timeout)


def test_network_printer_receives_the_receipt(fake: LoopbackPrinter) -> None:
    printer = network(fake.port)
    printer.print(receipt())
    data = fake.wait_for(CUT)
    assert data.startswith(b"\x1b@") and CODE_PAGE in data and REFERENCE in data and b"R$ 1.234,50" in data
    printer.close()


@pytest.mark.parametrize(
    ("replies", "expected"),
    [
        ({1: 0x12, 4: 0x12}, PrinterStatus(online=True, paper="ok")),
        ({1: 0x12, 4: 0x1E}, PrinterStatus(online=True, paper="near_end")),
        ({1: 0x1A, 4: 0x72}, PrinterStatus(online=False, paper="out")),
        ({}, PrinterStatus(online=None, paper="unknown")),  # no reply: unknown, never "plenty of paper"
    ],
)
def test_dle_eot_replies_map_to_status(replies: dict[int, int], expected: PrinterStatus) -> None:
    server = LoopbackPrinter(replies=replies).up()
    try:
        printer = network(server.port, timeout=0.3)
        assert printer.status() == expected
        printer.close()
    finally:
        server.down()


def test_printer_gone_mid_job_raises_then_reconnects_and_resends_the_code_page(fake: LoopbackPrinter) -> None:
    printer = network(fake.port)
    printer.print(receipt())
    fake.wait_for(CUT)
    fake.drop()
    with pytest.raises(PrinterError, match="network 127.0.0.1"):
        printer.print(receipt(500))
    printer.print(receipt(700))
    data = fake.wait_for(CUT, connection=1)
    assert len(fake.connections) == 2
    assert CODE_PAGE in data and b"R$ 7,00" in data


def test_unreachable_printer_raises_and_reports_offline() -> None:
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    printer = network(port)
    with pytest.raises(PrinterError, match=f"127.0.0.1:{port}"):
        printer.print(receipt())
    assert printer.status() == PrinterStatus(online=False, paper="unknown")


def test_serial_printer_over_a_pty_receives_the_bytes() -> None:
    master, slave = os.openpty()
    try:
        printer = open_printer("serial", serial_device=os.ttyname(slave), timeout=1.0)
        printer.print(receipt())
        data = b""
        deadline = time.monotonic() + 5
        while CUT not in data and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                data += os.read(master, 65536)
        assert data.startswith(b"\x1b@") and CODE_PAGE in data and REFERENCE in data and data.endswith(CUT)
        printer.close()
    finally:
        os.close(master)
        os.close(slave)


def test_file_printer_writes_a_plain_file(tmp_path: Path) -> None:
    path = tmp_path / "lp0"
    printer = open_printer("file", file=str(path))
    printer.print(receipt())
    assert printer.status() == UNKNOWN  # a file cannot answer
    printer.close()
    data = path.read_bytes()
    assert REFERENCE in data and data.endswith(CUT) and b"\x10\x04" not in data


def test_missing_device_file_is_offline(tmp_path: Path) -> None:
    printer = open_printer("file", file=str(tmp_path / "no" / "lp0"))
    assert printer.status() == PrinterStatus(online=False, paper="unknown")
    with pytest.raises(PrinterError, match="file .*lp0"):
        printer.print(receipt())


def test_dummy_printer_keeps_the_bytes() -> None:
    printer = open_printer("dummy", profile="POS-5890")
    assert isinstance(printer, DummyPrinter)
    printer.print(receipt())
    assert printer.status() == UNKNOWN
    assert REFERENCE in printer.output
    assert printer.output.endswith(b"\x1bd\x06")  # fed for tearing off: its profile has no cutter
    assert b"\x10\x04" not in printer.output  # the status query did not pollute receipt.bin
    assert b"-" * 32 + b"\n" in printer.output and b"-" * 33 not in printer.output  # 58 mm: 32 columns


def test_none_printer_prints_nothing() -> None:
    printer = open_printer("none")
    assert isinstance(printer, NullPrinter)
    printer.print(receipt())
    assert printer.status() == UNKNOWN


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"connection": "bluetooth"}, "'bluetooth' is not one of: usb, serial, network"),
        ({"connection": "dummy", "profile": "TM-NOPE"}, "unknown printer profile 'TM-NOPE'"),
    ],
)
def test_bad_config_is_a_value_error(cfg: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_printer(**cfg)


def test_usb_without_a_device_is_a_printer_error() -> None:
    printer = open_printer("usb", usb_vendor=0x04B8, usb_product=0x0E28)
    with pytest.raises(PrinterError, match="usb 04b8:0e28"):
        printer.print(receipt())


def test_importing_escpos_through_the_port_leaves_logging_and_tmp_alone(tmp_path: Path) -> None:
    code = (
        "import logging, os; import mpqr_kiosk.devices.printer; from escpos.printer import Dummy; Dummy();"
        "print(len(logging.getLogger().handlers), os.environ['ESCPOS_CAPABILITIES_PICKLE_DIR'])"
    )
    env = {**os.environ, "CACHE_DIRECTORY": str(tmp_path)}
    env.pop("ESCPOS_CAPABILITIES_PICKLE_DIR", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", str(tmp_path / "escpos")]
    assert any(p.name.endswith(".capabilities.pickle") for p in (tmp_path / "escpos").iterdir())


def test_a_printer_that_never_answers_status_is_not_asked_again() -> None:
    fake = LoopbackPrinter().up()
    fake.answers_left = 0  # prints, but never replies to DLE EOT
    try:
        printer = open_printer("network", host="127.0.0.1", port=fake.port, timeout=0.3)
        assert printer.status() == PrinterStatus(online=None, paper="unknown")  # waited for the silence once
        queries = fake.count(b"\x10\x04")
        assert queries == 2
        assert printer.status() == PrinterStatus(online=None, paper="unknown")
        assert fake.count(b"\x10\x04") == queries  # not asked again: no more waiting on every receipt
        printer.close()
    finally:
        fake.down()


def test_a_broken_capabilities_pickle_is_written_again_not_fatal(tmp_path):
    """A power cut while python-escpos wrote its pickle (or another process writing it right now) must not
    keep the daemon from starting."""
    broken = tmp_path / f"{platform.python_version()}.capabilities.pickle"
    broken.write_bytes(b"\x80\x04\x95")  # half a pickle
    done = subprocess.run([sys.executable, "-c", "import mpqr_kiosk.devices.printer; print('ok')"],
                          env={**os.environ, "ESCPOS_CAPABILITIES_PICKLE_DIR": str(tmp_path)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
    assert broken.stat().st_size > 10_000  # python-escpos wrote it whole again
