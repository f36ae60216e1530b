"""Decoding HID keyboard events (a USB scanner or keypad read through evdev) into the core's events.

``HidDecoder`` is pure: it is fed ``evdev.InputEvent`` values one at a time and answers what they mean.
It tracks Shift (left/right), AltGr (right Alt) and Ctrl on key down/up, acts only on key-down (value
1), and ignores autorepeat (value 2), key-up (value 0) and non-key events (``EV_MSC``, ``EV_SYN``).

How a device's keys are read depends on its **role** (``Role``):

* ``KEYPAD`` (a numeric keypad or keyboard the operator types on): every key press is one ``Key`` at
  once: digits (top row or keypad), ``*`` (keypad ``*`` or the layout's ``*``) → ``MULTIPLY``,
  ``#``/Enter/keypad Enter → ``ENTER``, Backspace/Delete → ``DELETE``, Esc → ``CLEAR``. Other keys are
  ignored. Digits typed here are never a barcode.
* ``SCANNER`` (a keyboard-wedge barcode scanner): characters build a code that Enter ends, giving
  ``Scan(code)``. Enter, Backspace or Esc with no code pending give ``Key(ENTER/DELETE/CLEAR)``, so a
  keyboard read as a scanner still works for the operator; Backspace or Esc with a code pending
  discard it.

A code is refused (``Refused(reason)``, so the shell can beep) when it is longer than ``MAX_CODE``
characters or holds a key with no printable character on the layout (Tab, a dead key, a Ctrl
combination such as a GS1 group separator, an unmapped key). The refusal comes at Enter, so the rest of
a bad code never turns into a second scan; the pending code is then cleared.

``Sink`` hands decoded values to the shell's callbacks, logging one line each and never raising.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from evdev import InputEvent
from evdev import ecodes as e

from mpqr_kiosk.core.events import CLEAR, DELETE, DIGITS, ENTER, MULTIPLY, Key, Scan
from mpqr_kiosk.devices.input.keymaps import (
    ALTGR_KEYS,
    CTRL_KEYS,
    ENTER_KEYS,
    IGNORED_KEYS,
    OPERATOR_KEYS,
    SHIFT_KEYS,
    Keymap,
)

log = logging.getLogger(__name__)

MAX_CODE = 64  # characters in a barcode (core.events.Scan)
KEY_DOWN = 1


@dataclass(frozen=True)
class Refused:
    """A code that cannot be a barcode (too long, non-printable). Not for the core: the shell beeps."""

    reason: str


class Role(StrEnum):
    KEYPAD = "keypad"
    SCANNER = "scanner"


# Words in an evdev device name (or its /dev/input/by-id path) that mark a barcode scanner.
SCANNER_HINTS = (
    "scanner", "barcode", "bar code", "honeywell", "hand held", "metrologic", "zebra", "symbol",
    "datalogic", "newland", "opticon", "cipherlab", "netum", "eyoyo", "inateck", "elgin", "bematech",
    "gertec",
)  # fmt: skip


def role_for_name(name: str) -> Role:
    """``SCANNER`` when the device's name (or path) contains a scanner word or vendor, else ``KEYPAD``."""
    lowered = name.lower().replace("_", " ")
    return Role.SCANNER if any(hint in lowered for hint in SCANNER_HINTS) else Role.KEYPAD


def code_problem(code: str) -> str:
    """Why ``code`` cannot be a barcode, or ``""`` when it can."""
    if not code:
        return "empty code"
    if len(code) > MAX_CODE:
        return f"code longer than {MAX_CODE} characters"
    if not code.isprintable():
        return "code has non-printable characters"
    return ""


def key_name(code: int) -> str:
    """``KEY_TAB`` for a key code (the first name where evdev has several)."""
    name = e.KEY.get(code, str(code))
    return name[0] if isinstance(name, tuple | list) else name


_KEYPAD_CHARS = {"*": MULTIPLY, "#": ENTER}
_EMPTY_BUFFER_KEYS = {e.KEY_BACKSPACE: DELETE, e.KEY_ESC: CLEAR}


class HidDecoder:
    """Turns one device's key events into ``Key``, ``Scan`` and ``Refused`` values (see the module doc)."""

    def __init__(self, keymap: Keymap, role: Role = Role.SCANNER) -> None:
        self.keymap = keymap
        self.role = role
        self._held: set[int] = set()  # modifiers down
        self._chars: list[str] = []
        self._problem = ""  # why the pending code will be refused

    def feed(self, event: InputEvent) -> list[Key | Scan | Refused]:
        """What one event means; most events mean nothing yet (``[]``)."""
        if event.type != e.EV_KEY:
            return []
        code = event.code
        if code in SHIFT_KEYS | ALTGR_KEYS | CTRL_KEYS:
            if event.value:
                self._held.add(code)
            else:
                self._held.discard(code)
            return []
        if event.value != KEY_DOWN or code in IGNORED_KEYS:
            return []
        return self._keypad(code) if self.role is Role.KEYPAD else self._scanner(code)

    def _char(self, code: int) -> str | None:
        if self._held & CTRL_KEYS:
            return None
        return self.keymap.char(code, bool(self._held & SHIFT_KEYS), bool(self._held & ALTGR_KEYS))

    def _keypad(self, code: int) -> list[Key | Scan | Refused]:
        key = OPERATOR_KEYS.get(code)
        if key is None:
            char = self._char(code) or ""
            key = _KEYPAD_CHARS.get(char, char if char in DIGITS else None)
        return [Key(key)] if key else []

    def _scanner(self, code: int) -> list[Key | Scan | Refused]:
        pending = bool(self._chars or self._problem)
        if code in ENTER_KEYS:
            return [self._finish()] if pending else [Key(ENTER)]
        if code in _EMPTY_BUFFER_KEYS:
            if pending:
                self._reset()
                return []
            return [Key(_EMPTY_BUFFER_KEYS[code])]
        char = self._char(code)
        if char is None:
            self._problem = self._problem or f"non-printable key {key_name(code)} in the code"
        elif len(self._chars) >= MAX_CODE:
            self._problem = self._problem or f"code longer than {MAX_CODE} characters"
        else:
            self._chars.append(char)
        return []

    def _finish(self) -> Scan | Refused:
        code = "".join(self._chars)
        problem = self._problem or code_problem(code)
        self._reset()
        return Refused(problem) if problem else Scan(code)

    def _reset(self) -> None:
        self._chars.clear()
        self._problem = ""


class Sink:
    """Hands decoded values to the shell: ``Key``/``Scan`` to ``emit``, ``Refused`` to ``on_refused``.

    Logs one line per value and never raises: a failing callback is logged and the source goes on.
    """

    def __init__(
        self,
        source: str,
        emit: Callable[[Key | Scan], None],
        on_refused: Callable[[Refused], None] | None = None,
    ) -> None:
        self.source = source
        self._emit = emit
        self._on_refused = on_refused

    def deliver(self, values: Iterable[Key | Scan | Refused]) -> None:
        for value in values:
            try:
                if isinstance(value, Refused):
                    log.warning("%s: refused a code: %s", self.source, value.reason)
                    if self._on_refused is not None:
                        self._on_refused(value)
                else:
                    log.log(logging.INFO if isinstance(value, Scan) else logging.DEBUG, "%s: %s", self.source, value)
                    self._emit(value)
            except Exception:
                log.exception("%s: the handler failed on %s", self.source, value)
