"""The printer port: python-escpos over USB, serial, network or a file; a ``Dummy`` keeping the bytes; none.

A job that fails closes the connection; the next job (or status query) opens it again, and since every job
starts with ESC @ and forgets MagicEncode's code page, the code page is sent again after a reconnect.
Status comes from ``DLE EOT`` replies, only on transports that can read (usb, serial, network). No reply is
"unknown", never "paper ok" (python-escpos's ``paper_status()`` answers 2 when the printer says nothing).

Importing python-escpos 3.1 calls ``logging.basicConfig()`` and makes a fresh temporary directory for its
capabilities pickle; this module imports it once with both neutralised: the root handler it adds is removed,
and ``ESCPOS_CAPABILITIES_PICKLE_DIR`` points at a cache directory unless already set.
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import platform
import tempfile
import threading
import time
from pathlib import Path


def _pickle_dir() -> str:
    """systemd's ``CacheDirectory=``, else the user's cache, else the temp dir: somewhere writable."""
    try:
        if systemd := os.environ.get("CACHE_DIRECTORY", "").split(":")[0]:
            path = Path(systemd) / "escpos"
        else:
            path = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mpqr-kiosk" / "escpos"
        path.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # RuntimeError: no home directory
        return tempfile.gettempdir()
    return str(path) if os.access(path, os.W_OK) else tempfile.gettempdir()


def _load_capabilities() -> None:
    """Import ``escpos.capabilities``, which loads its pickle. python-escpos writes that file in place: a
    process importing it while another writes it reads half a pickle, and a power cut mid-write leaves it
    broken for good. Wait for the writer once; then drop the broken file so that it is written again."""
    name = f"{platform.python_version()}.capabilities.pickle"  # as python-escpos names it
    pickle_path = Path(os.environ["ESCPOS_CAPABILITIES_PICKLE_DIR"]) / name
    for attempt in range(3):
        try:
            importlib.import_module("escpos.capabilities")
            return
        except (EOFError, pickle.UnpicklingError, ValueError, AttributeError):
            if attempt == 2:
                raise
            if attempt == 1:
                pickle_path.unlink(missing_ok=True)
            time.sleep(0.3)


os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", _pickle_dir())
_root_handlers = list(logging.getLogger().handlers)
_load_capabilities()

import escpos.exceptions  # noqa: E402  (the environment above must be set first)
import usb.core  # noqa: E402
from escpos.capabilities import get_profile  # noqa: E402
from escpos.constants import RT_STATUS_ONLINE, RT_STATUS_PAPER  # noqa: E402
from escpos.escpos import Escpos  # noqa: E402
from escpos.printer import Dummy, File, Network, Serial, Usb  # noqa: E402

for _added in [h for h in logging.getLogger().handlers if h not in _root_handlers]:
    logging.getLogger().removeHandler(_added)  # escpos.capabilities' logging.basicConfig()

from mpqr_kiosk.ports import Printer, PrinterError, PrinterStatus  # noqa: E402
from mpqr_kiosk.receipt import Receipt, print_receipt  # noqa: E402

log = logging.getLogger(__name__)

CONNECTIONS = ("usb", "serial", "network", "file", "dummy", "none")
_ERRORS = (OSError, escpos.exceptions.Error, usb.core.NoBackendError)  # USBError, SerialException: OSErrors
_NO_REPLY = (TimeoutError, usb.core.USBTimeoutError)
_FIXED_BITS, _FIXED_VALUE = 0x93, 0x12  # DLE EOT replies: bits 1 and 4 set, bits 0 and 7 clear
_OFFLINE, _PAPER_END, _PAPER_NEAR_END = 0x08, 0x60, 0x0C


UNKNOWN = PrinterStatus(online=None, paper="unknown")


class NullPrinter:
    """``connection = "none"``: prints nothing."""

    def print(self, receipt: Receipt) -> None:
        """Do nothing."""

    def status(self) -> PrinterStatus:
        return UNKNOWN

    def close(self) -> None:
        """Do nothing."""


def _describe(exc: BaseException) -> str:
    """One line: python-escpos messages span several."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _valid(reply: bytes) -> int | None:
    """The (last) status byte of a ``DLE EOT`` reply; None for no reply or a byte that is not a status."""
    return reply[-1] if reply and reply[-1] & _FIXED_BITS == _FIXED_VALUE else None


class EscposPrinter:
    """A python-escpos printer that reconnects on the next job after a failure."""

    def __init__(self, printer: Escpos, name: str, timeout: float) -> None:
        self._printer = printer
        self._name = name
        self._timeout = timeout
        self._open = False
        self._silent = False  # the printer never answered a status query: stop asking (each wait is `timeout`)
        self._lock = threading.Lock()

    def print(self, receipt: Receipt) -> None:
        """Print ``receipt``; ``PrinterError`` if the printer cannot be reached or fails mid-job."""
        with self._lock:
            started = False
            try:
                self._connect()
                started = True
                print_receipt(self._printer, receipt)
            except _ERRORS as exc:
                self._disconnect()
                message = f"printer {self._name}: {_describe(exc)}"
                log.warning("%s", message)
                raise PrinterError(message, started) from exc

    def status(self) -> PrinterStatus:
        """Ask the printer (``DLE EOT 1`` and ``4``); unreachable is offline, silence is unknown."""
        with self._lock:
            try:
                self._connect()
                if self._silent or type(self._printer)._read is Escpos._read:  # noqa: SLF001 - escpos's read hook
                    return UNKNOWN  # write-only transport (file, dummy): a query would only add bytes
                online, paper = (_valid(self._query(q)) for q in (RT_STATUS_ONLINE, RT_STATUS_PAPER))
                if online is None and paper is None:
                    self._silent = True
                    log.info("printer %s does not answer status queries: paper checks are off", self._name)
            except _ERRORS as exc:
                self._disconnect()
                log.warning("printer %s status: %s", self._name, _describe(exc))
                return PrinterStatus(online=False, paper="unknown")
        return PrinterStatus(online=None if online is None else not (online & _OFFLINE), paper=_paper(paper))

    def close(self) -> None:
        with self._lock:
            self._disconnect()

    def _query(self, query: bytes) -> bytes:
        try:
            return bytes(self._printer.query_status(query))
        except _NO_REPLY:
            return b""

    def _connect(self) -> None:
        if self._open:
            return
        self._printer.open()  # print_receipt's ESC @ and code page reset suit a power-cycled printer
        if isinstance(self._printer, Serial):  # pyserial writes block for ever on a stalled printer
            self._printer.device.write_timeout = self._timeout
        self._open = True
        log.info("printer %s connected", self._name)

    def _disconnect(self) -> None:
        self._open = False
        try:
            self._printer.close()
        except _ERRORS as exc:
            log.debug("printer %s close: %s", self._name, exc)


def _paper(status: int | None) -> str:
    if status is None:
        return "unknown"
    if status & _PAPER_END:
        return "out"
    return "near_end" if status & _PAPER_NEAR_END else "ok"


class DummyPrinter(EscposPrinter):
    """``connection = "dummy"``: python-escpos ``Dummy``; every byte sent is in ``output``."""

    def __init__(self, profile: str) -> None:
        self._dummy = Dummy(profile=profile)
        super().__init__(self._dummy, "dummy", timeout=0)

    @property
    def output(self) -> bytes:
        return self._dummy.output


def open_printer(
    connection: str,
    *,
    profile: str = "TM-T20II",
    usb_vendor: int = 0,
    usb_product: int = 0,
    serial_device: str = "",
    serial_baudrate: int = 19200,
    host: str = "",
    port: int = 9100,
    file: str = "",
    timeout: float = 5.0,
) -> Printer:
    """The printer on ``connection`` (usb, serial, network, file, dummy, none); nothing is opened until the
    first job or status query.

    ``timeout`` (seconds) bounds USB writes, socket connect/send/receive and serial reads and writes.
    ``ValueError`` names an unknown connection or profile.
    """
    if connection == "none":
        return NullPrinter()
    try:
        get_profile(profile)
    except KeyError:
        raise ValueError(f"unknown printer profile {profile!r} (see python-escpos' list)") from None
    if connection == "dummy":
        return DummyPrinter(profile)
    if connection == "usb":
        printer: Escpos = Usb(usb_vendor, usb_product, timeout=int(timeout * 1000), profile=profile)
        name = f"usb {usb_vendor:04x}:{usb_product:04x}"
    elif connection == "serial":
        printer = Serial(serial_device, baudrate=serial_baudrate, timeout=timeout, profile=profile)
        name = f"serial {serial_device}"
    elif connection == "network":
        printer = Network(host, port, timeout=timeout, profile=profile)
        name = f"network {host}:{port}"
    elif connection == "file":
        printer = File(file, profile=profile)
        name = f"file {file}"
    else:
        raise ValueError(f"printer connection {connection!r} is not one of: {', '.join(CONNECTIONS)}")
    return EscposPrinter(printer, name, timeout)
