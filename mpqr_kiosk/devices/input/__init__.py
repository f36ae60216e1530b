"""Operator input: keypads, barcode scanners and standard input, one source per device spec.

Device specs:

* ``evdev:auto`` — every keyboard-like input device whose name says scanner, barcode (or a scanner
  vendor), keypad or keyboard; devices plugged in later are picked up.
* ``evdev:/dev/input/by-id/…`` (or ``/dev/input/eventN``) — that device, reopened after replugging.
  ``evdev:scanner:PATH`` / ``evdev:keypad:PATH`` force the role the device name would otherwise pick.
* ``keypad`` — the GPIO matrix keypad on ``keypad_rows``/``keypad_cols``.
* ``serial:PORT[:BAUD]`` — a serial scanner, e.g. ``serial:/dev/ttyACM0:9600`` (9600 baud by default).
* ``stdin`` — lines on standard input (format in ``stdin_source``).

How evdev keys become keys or scans (the device's role) is explained in ``hid``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from gpiozero.pins import Factory

from mpqr_kiosk.core.events import Key, Scan
from mpqr_kiosk.devices.input.evdev_source import EvdevSource
from mpqr_kiosk.devices.input.hid import Refused, Role
from mpqr_kiosk.devices.input.keymaps import get_keymap
from mpqr_kiosk.devices.input.keypad import KeypadSource
from mpqr_kiosk.devices.input.serial_source import SerialSource
from mpqr_kiosk.devices.input.stdin_source import StdinSource
from mpqr_kiosk.ports import InputSource

__all__ = ["InputSource", "Refused", "open_inputs", "parse_spec"]

VALID_SPECS = (
    "evdev:auto, evdev:/dev/input/by-id/…, evdev:scanner:PATH, evdev:keypad:PATH, keypad, "
    "serial:/dev/ttyACM0:9600, stdin"
)
DEFAULT_BAUDRATE = 9600
MIN_BAUDRATE, MAX_BAUDRATE = 50, 4_000_000


def open_inputs(
    specs: Iterable[str],
    emit: Callable[[Key | Scan], None],
    *,
    keymap: str = "us",
    keypad_rows: Sequence[int] = (),
    keypad_cols: Sequence[int] = (),
    pin_factory: Factory | None = None,
    on_refused: Callable[[Refused], None] | None = None,
) -> list[InputSource]:
    """One (not yet started) source per device spec; ``emit`` is called from their threads.

    ``on_refused`` hears of codes refused as barcodes (too long, non-printable), for a beep. A bad
    spec or keymap raises ``ValueError`` naming it and the valid forms.
    """
    keys = get_keymap(keymap)
    sources: list[InputSource] = []
    for spec in specs:
        kind, role, path, baudrate = parse_spec(spec)
        if kind == "evdev" and not path:
            sources.append(EvdevSource(keys, emit, on_refused=on_refused))
        elif kind == "evdev":
            sources.append(EvdevSource(keys, emit, path=path, role=role, on_refused=on_refused))
        elif kind == "keypad":
            sources.append(KeypadSource(keypad_rows, keypad_cols, emit, pin_factory=pin_factory))
        elif kind == "serial":
            sources.append(SerialSource(path, baudrate, emit, on_refused=on_refused))
        else:
            sources.append(StdinSource(emit, on_refused=on_refused))
    return sources


def parse_spec(spec: str) -> tuple[str, Role | None, str, int]:
    """``(kind, role, path, baudrate)`` of one device spec (``path`` "" for ``evdev:auto``); the one place a
    spec is judged, for ``check`` as for ``run``. A bad one raises ``ValueError`` naming it and the valid forms."""
    kind, _, rest = spec.partition(":")
    if kind == "evdev" and rest == "auto":
        return kind, None, "", 0
    if kind == "evdev":
        role, path = _evdev_path(spec, rest)
        return kind, role, path, 0
    if kind == "serial" and rest:
        port, baudrate = _serial_port(spec, rest)
        return kind, None, port, baudrate
    if spec in ("keypad", "stdin"):
        return spec, None, "", 0
    raise _bad(spec)


def _evdev_path(spec: str, rest: str) -> tuple[Role | None, str]:
    role = next((r for r in Role if rest.startswith(f"{r}:")), None)
    path = rest[len(role) + 1 :] if role else rest
    if not path.startswith("/"):
        raise _bad(spec)
    return role, path


def _serial_port(spec: str, rest: str) -> tuple[str, int]:
    port, _, baud = rest.rpartition(":")
    if not port or not baud.isdigit():  # no baud rate given (a URL such as loop:// has its own colon)
        return rest, DEFAULT_BAUDRATE
    if not baud.isascii() or not MIN_BAUDRATE <= int(baud) <= MAX_BAUDRATE:  # "9600²" is digits, not a number
        raise _bad(spec)
    return port, int(baud)


def _bad(spec: str) -> ValueError:
    return ValueError(f"{spec!r} is not a valid input device; valid forms: {VALID_SPECS}")
