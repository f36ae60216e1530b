"""Keycode → character tables for the layouts a USB scanner or keyboard can be set to.

A keyboard-wedge scanner sends *key positions* (evdev key codes), not characters: which character a
position means depends on the layout the scanner is configured for, and the kiosk must decode with the
same one (config ``[input] keymap``). The tables follow xkeyboard-config's ``symbols/us`` (basic, plus
the pc105 ``<LSGT>`` key), ``symbols/es`` (basic), ``symbols/latam`` (basic) and ``symbols/br`` (abnt2)
with the ``latin``/``latin(type4)`` levels they include. Each position has three levels: plain,
Shift and AltGr (right Alt). Only AltGr characters a barcode can carry (ASCII and ``€``) are listed.
Dead keys (``´ ` ^ ¨ ~`` on some layouts) produce no character: a code that needs one is refused.
Keypad keys give the same character with or without Shift or NumLock (the kiosk keeps no NumLock state).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from evdev import ecodes as e

from mpqr_kiosk.core.events import CLEAR, DELETE, ENTER, MULTIPLY

Levels = tuple[str, str, str]  # plain, Shift, AltGr; "" = no character


@dataclass(frozen=True)
class Keymap:
    """One layout: key code → the characters of its levels."""

    name: str
    keys: Mapping[int, Levels]

    def char(self, code: int, shift: bool = False, altgr: bool = False) -> str | None:
        """The character a key press gives, or ``None`` (unmapped key, dead key, Shift+AltGr level)."""
        levels = self.keys.get(code)
        if levels is None or (shift and altgr):
            return None
        return levels[2 if altgr else 1 if shift else 0] or None


# The operator's keys, the same on every layout.
OPERATOR_KEYS: dict[int, str] = {
    e.KEY_ENTER: ENTER,
    e.KEY_KPENTER: ENTER,
    e.KEY_BACKSPACE: DELETE,
    e.KEY_DELETE: DELETE,
    e.KEY_ESC: CLEAR,
    e.KEY_KPASTERISK: MULTIPLY,
    **{getattr(e, f"KEY_KP{d}"): d for d in "0123456789"},
}
ENTER_KEYS = frozenset({e.KEY_ENTER, e.KEY_KPENTER})
SHIFT_KEYS = frozenset({e.KEY_LEFTSHIFT, e.KEY_RIGHTSHIFT})
ALTGR_KEYS = frozenset({e.KEY_RIGHTALT})
CTRL_KEYS = frozenset({e.KEY_LEFTCTRL, e.KEY_RIGHTCTRL})
# Modifiers and locks that change nothing for the kiosk.
IGNORED_KEYS = frozenset(
    {e.KEY_LEFTALT, e.KEY_LEFTMETA, e.KEY_RIGHTMETA, e.KEY_CAPSLOCK, e.KEY_NUMLOCK, e.KEY_SCROLLLOCK}
)


def _letters(altgr: Mapping[str, str]) -> dict[int, Levels]:
    return {getattr(e, f"KEY_{c.upper()}"): (c, c.upper(), altgr.get(c, "")) for c in "abcdefghijklmnopqrstuvwxyz"}


def _keypad(dot: str) -> dict[int, Levels]:
    keys: dict[int, Levels] = {getattr(e, f"KEY_KP{d}"): (d, d, "") for d in "0123456789"}
    keys.update(
        {
            e.KEY_KPSLASH: ("/", "/", ""),
            e.KEY_KPASTERISK: ("*", "*", ""),
            e.KEY_KPMINUS: ("-", "-", ""),
            e.KEY_KPPLUS: ("+", "+", ""),
            e.KEY_KPDOT: (dot, dot, ""),
        }
    )
    return keys


_SPACE: dict[int, Levels] = {e.KEY_SPACE: (" ", " ", "")}

US: dict[int, Levels] = {
    **_letters({}),
    **_keypad("."),
    **_SPACE,
    e.KEY_GRAVE: ("`", "~", ""),
    e.KEY_1: ("1", "!", ""),
    e.KEY_2: ("2", "@", ""),
    e.KEY_3: ("3", "#", ""),
    e.KEY_4: ("4", "$", ""),
    e.KEY_5: ("5", "%", ""),
    e.KEY_6: ("6", "^", ""),
    e.KEY_7: ("7", "&", ""),
    e.KEY_8: ("8", "*", ""),
    e.KEY_9: ("9", "(", ""),
    e.KEY_0: ("0", ")", ""),
    e.KEY_MINUS: ("-", "_", ""),
    e.KEY_EQUAL: ("=", "+", ""),
    e.KEY_LEFTBRACE: ("[", "{", ""),
    e.KEY_RIGHTBRACE: ("]", "}", ""),
    e.KEY_BACKSLASH: ("\\", "|", ""),
    e.KEY_SEMICOLON: (";", ":", ""),
    e.KEY_APOSTROPHE: ("'", '"', ""),
    e.KEY_102ND: ("<", ">", ""),
    e.KEY_COMMA: (",", "<", ""),
    e.KEY_DOT: (".", ">", ""),
    e.KEY_SLASH: ("/", "?", ""),
}

# Spain: shift+7 "/", the "-" on the key right of "." (US "/"), "@" "#" on AltGr+2/3.
ES: dict[int, Levels] = {
    **_letters({"q": "@", "e": "€"}),
    **_keypad("."),
    **_SPACE,
    e.KEY_GRAVE: ("º", "ª", "\\"),
    e.KEY_1: ("1", "!", "|"),
    e.KEY_2: ("2", '"', "@"),
    e.KEY_3: ("3", "·", "#"),
    e.KEY_4: ("4", "$", "~"),
    e.KEY_5: ("5", "%", ""),
    e.KEY_6: ("6", "&", ""),
    e.KEY_7: ("7", "/", "{"),
    e.KEY_8: ("8", "(", "["),
    e.KEY_9: ("9", ")", "]"),
    e.KEY_0: ("0", "=", "}"),
    e.KEY_MINUS: ("'", "?", "\\"),
    e.KEY_EQUAL: ("¡", "¿", ""),
    e.KEY_LEFTBRACE: ("", "", "["),  # dead grave / dead circumflex
    e.KEY_RIGHTBRACE: ("+", "*", "]"),
    e.KEY_SEMICOLON: ("ñ", "Ñ", ""),
    e.KEY_APOSTROPHE: ("", "", "{"),  # dead acute / dead diaeresis
    e.KEY_BACKSLASH: ("ç", "Ç", "}"),
    e.KEY_102ND: ("<", ">", "|"),
    e.KEY_COMMA: (",", ";", ""),
    e.KEY_DOT: (".", ":", ""),
    e.KEY_SLASH: ("-", "_", ""),
}

# Latin America: like Spain for digits, "#" on shift+3, "{" "}" unshifted right of "ñ".
LATAM: dict[int, Levels] = {
    **_letters({"q": "@", "e": "€"}),
    **_keypad("."),
    **_SPACE,
    e.KEY_GRAVE: ("|", "°", ""),
    e.KEY_1: ("1", "!", "|"),
    e.KEY_2: ("2", '"', "@"),
    e.KEY_3: ("3", "#", ""),
    e.KEY_4: ("4", "$", "~"),
    e.KEY_5: ("5", "%", ""),
    e.KEY_6: ("6", "&", ""),
    e.KEY_7: ("7", "/", "{"),
    e.KEY_8: ("8", "(", "["),
    e.KEY_9: ("9", ")", "]"),
    e.KEY_0: ("0", "=", "}"),
    e.KEY_MINUS: ("'", "?", "\\"),
    e.KEY_EQUAL: ("¿", "¡", ""),
    e.KEY_LEFTBRACE: ("", "", ""),  # dead acute / dead diaeresis
    e.KEY_RIGHTBRACE: ("+", "*", "~"),
    e.KEY_SEMICOLON: ("ñ", "Ñ", "~"),
    e.KEY_APOSTROPHE: ("{", "[", ""),  # AltGr: dead circumflex
    e.KEY_BACKSLASH: ("}", "]", ""),  # AltGr: dead grave
    e.KEY_102ND: ("<", ">", "\\"),
    e.KEY_COMMA: (",", ";", ""),
    e.KEY_DOT: (".", ":", ""),
    e.KEY_SLASH: ("-", "_", ""),
}

# Brazil ABNT2: "/" "?" on the extra key left of right Shift (KEY_RO) or AltGr+Q/W, ";" ":" where US has
# "/", "ç" where US has ";", a keypad "," (KPDL) and an extra keypad "." (KEY_KPCOMMA).
BR_ABNT2: dict[int, Levels] = {
    **_letters({"q": "/", "w": "?"}),
    **_keypad(","),
    **_SPACE,
    e.KEY_KPCOMMA: (".", ".", ""),
    e.KEY_GRAVE: ("'", '"', ""),
    e.KEY_1: ("1", "!", ""),
    e.KEY_2: ("2", "@", ""),
    e.KEY_3: ("3", "#", ""),
    e.KEY_4: ("4", "$", ""),
    e.KEY_5: ("5", "%", ""),
    e.KEY_6: ("6", "", ""),  # Shift: dead diaeresis
    e.KEY_7: ("7", "&", "{"),
    e.KEY_8: ("8", "*", "["),
    e.KEY_9: ("9", "(", "]"),
    e.KEY_0: ("0", ")", "}"),
    e.KEY_MINUS: ("-", "_", "\\"),
    e.KEY_EQUAL: ("=", "+", ""),
    e.KEY_LEFTBRACE: ("", "", ""),  # dead acute / dead grave
    e.KEY_RIGHTBRACE: ("[", "{", ""),
    e.KEY_BACKSLASH: ("]", "}", ""),
    e.KEY_SEMICOLON: ("ç", "Ç", ""),
    e.KEY_APOSTROPHE: ("", "", "~"),  # dead tilde / dead circumflex
    e.KEY_102ND: ("\\", "|", ""),
    e.KEY_COMMA: (",", "<", ""),
    e.KEY_DOT: (".", ">", ""),
    e.KEY_SLASH: (";", ":", ""),
    e.KEY_RO: ("/", "?", ""),
}

KEYMAPS: dict[str, Keymap] = {
    k.name: k for k in (Keymap("us", US), Keymap("es", ES), Keymap("latam", LATAM), Keymap("br-abnt2", BR_ABNT2))
}


def get_keymap(name: str) -> Keymap:
    """The keymap called ``name``; ``ValueError`` lists the valid ones."""
    try:
        return KEYMAPS[name]
    except KeyError:
        raise ValueError(f"unknown keymap {name!r}; one of {', '.join(KEYMAPS)}") from None
