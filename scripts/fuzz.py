"""The project's own bad-input campaign: seeded, reproducible mutations of every input path, fed to the real
CLI and the real daemon, with the outcome of each input judged.

Families (``--family``, default all):

* ``config``, ``token``, ``catalog``: a mutated ``kiosk.toml``, token file or ``catalog.csv`` through
  ``mpqr-kiosk check`` (``cli.main`` in this process, stdout and stderr captured) against the emulator.
* ``scanner``: bytes and key events into each input source's decoder (HID keymaps and roles, serial lines,
  stdin through a pipe, the GPIO keypad on mock pins); what comes out is applied to the core's ``Entry``.
* ``control``: lines sent to the real daemon's control socket.
* ``api``: real emulator answers, mutated by a proxy on their way to the real daemon (both APIs).

What is counted: a **crash** (a traceback, an exception escaping, an exit code not in ``exits.py``, a daemon
that dies or stops answering ``status``), a **hang** (no outcome within the input's deadline) and an **amount
change** (garbage that changes the entry's total other than by valid digits or a catalog code; a control line
that starts a sale for an amount other than the one a valid request asked for; an API body that makes a sale
paid when the emulator has not approved exactly its total, or leaves money the emulator approved on a cancelled
or expired sale once its late watch is over). Each failing input is written to ``--out`` as a
reproducer (the input's bytes and a ``.txt`` naming family, seed, index and what happened). The last line is
``fuzz: N inputs, C crashes, H hangs, A amount changes``, after one line per family saying what its inputs
reached (check's exit codes, the decoders fed, sales started, paid, in review, watched out). Input ``i`` of a
family depends only on the seed, the family and ``i``. ``tests/test_fuzz.py`` runs a short seeded campaign;
``scripts/fuzz`` is the long one.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import logging
import os
import random
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import harness
from evdev import InputEvent
from evdev import ecodes as e

from mpqr_kiosk import cli, exits
from mpqr_kiosk.catalog import load_catalog
from mpqr_kiosk.core.entry import Entry
from mpqr_kiosk.core.events import CLEAR, DELETE, DIGITS, ENTER, MULTIPLY, Key, Scan
from mpqr_kiosk.core.sites import site as site_of
from mpqr_kiosk.devices.input.hid import HidDecoder, Refused, Role
from mpqr_kiosk.devices.input.keymaps import KEYMAPS, OPERATOR_KEYS, Keymap
from mpqr_kiosk.devices.input.keypad import FACES, KeypadSource
from mpqr_kiosk.devices.input.serial_source import LineDecoder
from mpqr_kiosk.devices.input.stdin_source import StdinSource
from mpqr_kiosk.emulator.printer import LoopbackPrinter
from mpqr_kiosk.emulator.server import EmulatorServer
from mpqr_kiosk.emulator.state import Emulator
from mpqr_kiosk.journal import Journal

FAMILIES = ("config", "token", "catalog", "scanner", "control", "api")
EXIT_CODES = {exits.OK, exits.USAGE, exits.CONFIG, exits.CHECK, exits.TEMPFAIL}
DEADLINE = 20.0  # seconds one input may take to an outcome
SITE = "MLB"
CATALOG = {"7790895000997": ("Café", "4.50"), "789100": ("Pão de queijo", "12.00"), "ABC-123": ("Agua", "0.99")}
CATALOG_TEXT = "code,title,unit price,sku\n" + "".join(f"{c},{t},{p},S{i}\n" for i, (c, (t, p)) in
                                                          enumerate(CATALOG.items()))


LOCK = threading.Lock()  # the api family's two lanes share the campaign


@dataclass
class Finding:
    family: str
    index: int
    kind: str  # crash | hang | amount
    what: str


@dataclass
class Campaign:
    """Counts and reproducers."""

    seed: int
    out: Path
    inputs: int = 0
    findings: list[Finding] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)  # what the inputs reached, for the family's line

    def note(self, what: str) -> None:
        with LOCK:
            self.notes[what] = self.notes.get(what, 0) + 1

    def rng(self, family: str, index: int) -> random.Random:
        return random.Random(f"{self.seed}:{family}:{index}")

    def found(self, family: str, index: int, kind: str, what: str, data: bytes, ext: str = "bin") -> None:
        with LOCK:
            self.findings.append(Finding(family, index, kind, what))
        self.out.mkdir(parents=True, exist_ok=True)
        stem = self.out / f"{family}-{self.seed}-{index:05d}"
        Path(f"{stem}.{ext}").write_bytes(data)
        Path(f"{stem}.txt").write_text(f"family: {family}\nseed: {self.seed}\nindex: {index}\nkind: {kind}\n"
                                       f"input: {stem.name}.{ext}\nwhat happened:\n{what}\n")

    def count(self, kind: str) -> int:
        return sum(1 for f in self.findings if f.kind == kind)

    def summary(self) -> str:
        return (f"fuzz: {self.inputs} inputs, {self.count('crash')} crashes, {self.count('hang')} hangs, "
                f"{self.count('amount')} amount changes")


class LogTap(logging.Handler):
    """Every log record of this process, formatted (tracebacks included), since the last ``take``."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def take(self) -> str:
        text, self.lines = "\n".join(self.lines), []
        return text


TAP = LogTap()


def bounded(call: Callable[[], Any], deadline: float) -> tuple[bool, Any, str]:
    """Run ``call`` in a thread: (finished in time, its value, the traceback of what it raised or "")."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException:  # noqa: BLE001 - whatever escapes is the finding
            box["error"] = traceback.format_exc()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(deadline)
    logged = TAP.take()
    error = box.get("error", "") or (f"a traceback was logged:\n{logged[-4000:]}" if "Traceback" in logged else "")
    return not thread.is_alive(), box.get("value"), error


# -- mutations ------------------------------------------------------------------------------------------

JUNK_VALUES = ['"x"', "1", "-1", "0", "true", "3.5", "[1, 2]", "{a = 1}", "1979-05-27T07:32:00Z", "[]", '""',
               '"../../etc/passwd"', '"\\u0000"', "nan", "inf", "-inf", "9" * 400, "1e999", '"' + "A" * 100_000 + '"',
               "0x7FFFFFFFFFFFFFFFFFFF", '"/dev/zero"', '"\\u202e"', "[[]]", '"evdev:auto"', '["keypad"]',
               '"http://10.0.0.1"', '"ftp://x"', "18446744073709551617", '["serial:/dev/null:0"]', '"-1s"',
               '"99999999999999d"', '"0s"', '"1e9m"']


def flip(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    return bytes(buf)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def reencode(text: str, rng: random.Random) -> bytes:
    kind = rng.choice(["latin-1", "utf-16", "utf-16-be", "utf-32", "bom", "bom2", "cp1252", "nul"])
    text = text.replace("Bench", "Padaria São João €")
    if kind == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    if kind == "bom2":
        return b"\xef\xbb\xbf\xef\xbb\xbf" + text.encode()
    if kind == "nul":
        return text.encode().replace(b"\n", b"\n\x00", rng.randint(1, 5))
    return text.encode(kind, "replace")


def line_ops(text: str, rng: random.Random, junk: list[str]) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines))
        op = rng.choice(["delete", "duplicate", "swap", "insert", "value", "ctrl"])
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "insert":
            lines.insert(i, rng.choice(junk))
        elif op == "value" and "=" in lines[i]:
            lines[i] = lines[i].split("=", 1)[0] + "= " + rng.choice(JUNK_VALUES)
        elif op == "ctrl":
            pos = rng.randrange(len(lines[i]) + 1)
            char = chr(rng.choice([0, 7, 8, 9, 11, 12, 13, 27, 127, 0x85, 0x2028]))
            lines[i] = lines[i][:pos] + char + lines[i][pos:]
        if not lines:
            lines = [""]
    return "\n".join(lines) + "\n"


# the mutations every text family has: a byte flipped, the file cut short, another encoding
GARBLES = {"flip": lambda text, rng: flip(text.encode(), rng),
           "truncate": lambda text, rng: truncate(text.encode(), rng),
           "encoding": reencode}


def config_input(base: str, rng: random.Random) -> bytes:
    kind = rng.choice(["flip", "truncate", "encoding", "nesting", "huge", "types", "unknown", "pins", "lines",
                       "lines", "types"])
    if kind in GARBLES:
        return GARBLES[kind](base, rng)
    if kind == "nesting":
        depth = rng.choice([50, 500, 5000, 50_000])
        nest = rng.choice([("[" * depth + "]" * depth), ("{a = " * depth + "1" + "}" * depth)])
        return base.replace("[shop]\n", f"[shop]\nname = {nest}\n", 1).encode()
    if kind == "huge":
        key = rng.choice(["name", "order_ttl", "poll_interval", "user_id", "width", "port", "dir", "devices"])
        value = rng.choice(['"' + "N" * rng.choice([81, 10_000, 2_000_000]) + '"', "9" * rng.choice([20, 5000]),
                            "[" + ", ".join(['"stdin"'] * 10_000) + "]", '"' + "9" * 5000 + 's"', "1e308"])
        return re.sub(rf"(?m)^{key} = .*$", lambda _: f"{key} = {value}", base, count=1).encode()
    if kind == "types":
        lines = base.splitlines()
        keyed = [i for i, line in enumerate(lines) if " = " in line]
        for i in rng.sample(keyed, rng.randint(1, 3)):
            lines[i] = lines[i].split(" = ", 1)[0] + " = " + rng.choice(JUNK_VALUES)
        return ("\n".join(lines) + "\n").encode()
    if kind == "unknown":
        extra = rng.choice(["bogus = 1", "[bogus]\nx = 1", "Name = \"x\"", "name.sub = 1", "[shop.extra]\na = 1",
                            "[[input]]\na = 1", "\"quoted key\" = 1", "receipt_footer = 1"])
        section = rng.choice(["[mercadopago]", "[shop]", "[input]", "[display]", "[printer]", "[state]", ""])
        return (base.replace(section + "\n", f"{section}\n{extra}\n", 1) if section else base + extra + "\n").encode()
    if kind == "pins":
        rows = rng.sample(range(0, 30), 4)
        cols = rng.sample(range(0, 30), rng.choice([3, 4, 5]))
        leds = [rng.choice(rows + cols + [0, 17, 27, -1, 40, 99999]) for _ in range(4)]
        extra = (f'[input]\ndevices = ["keypad"]\nkeypad_rows = {rows}\nkeypad_cols = {cols}\n'
                 f"[leds]\ngreen = {leds[0]}\nyellow = {leds[1]}\nred = {leds[2]}\nbuzzer = {leds[3]}\n")
        text = re.sub(r'(?s)\[input\]\ndevices = \["stdin"\]\n', "", base)
        return (text.replace("[display]", extra.split("[leds]")[0] + "[display]", 1)
                + "[leds]" + extra.split("[leds]")[1]).encode()
    return line_ops(base, rng, ["[shop]", "[mercadopago]", "x = ", "= 1", "[", "]]", "'''", '"""', "a.b.c = 1",
                                "devices = []", "api = \"orders\"", "site = \"XXX\""]).encode()


def token_input(rng: random.Random) -> tuple[str, bytes, int]:
    """(kind of file, its contents, its mode)."""
    good = harness.TOKEN
    kind = rng.choice(["file"] * 8 + ["dir", "dangling", "loop", "huge", "fifo_absent", "empty_dir_link"])
    content = rng.choice([
        good, good + "\n", "\ufeff" + good, good + "\r\n", " " + good + " ", good + "\n" + good, good[:7], "",
        "\n\n", good.replace("-", " "), good + "\x00", "A" * 513, "A" * 512, good + "é", "Bearer " + good,
        "TEST-999999999999999999999999999999999999-1", "APP_USR-1-1", "x" * 8, good.upper(), "\x1b[31m" + good,
        "TEST-HARNESS-0000-000000001", "-" * 8, "_" * 600,
    ]).encode()
    if rng.random() < 0.3:
        content = flip(content, rng) if content else bytes(rng.randrange(256) for _ in range(rng.randint(1, 50)))
    if rng.random() < 0.1:
        content = content.decode("utf-8", "replace").encode(rng.choice(["utf-16", "latin-1", "utf-32"]), "replace")
    mode = rng.choice([0o600] * 6 + [0o400, 0o640, 0o604, 0o644, 0o000, 0o700, 0o4600, 0o666])
    return kind, content, mode


def catalog_input(rng: random.Random) -> bytes:
    base = CATALOG_TEXT
    kind = rng.choice(["flip", "truncate", "encoding", "rows", "rows", "rows", "lines", "huge", "delimiter"])
    if kind in GARBLES:
        return GARBLES[kind](base, rng)
    if kind == "huge":
        return rng.choice([
            base + "9," + "T" * 100_000 + ",1.00,S\n",
            base + "".join(f"{i},T,1.00,S\n" for i in range(rng.choice([1000, 50_000]))),
            base + '1,"' + "x\n" * 10_000 + '",1.00,S\n',
            base + "," * 100_000 + "\n",
            base + "1,T," + "9" * rng.choice([10, 400, 5000]) + ",S\n",
        ]).encode()
    if kind == "delimiter":
        return rng.choice([base.replace(",", ";"), base.replace(",", ";", 3), base.replace(",", "\t"),
                           base.replace("\n", "\r"), base.replace("\n", "\r\n"), '"' + base,
                           base.replace("code", "CODE", 1), "sep=,\n" + base]).encode()
    if kind == "rows":
        lines = base.splitlines()
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(1, len(lines))
            cells = lines[i].split(",")
            j = rng.randrange(len(cells))
            cells[j] = rng.choice([
                "", " ", "-1", "-0", "0", "0.001", "1.234", "1.234,50", "1,234.50", "4,50", '"4,50"', "4.5", "nan",
                "inf", "1e3", "1_000", "٣", "１２", "0x10", "2500000.01", "250000.00", "250000,01", "1.2.3", "12.",
                "\x00", "\x1b@", "\t", "a\nb", '"a""b"', "é" * 81, "X" * 65, "\u202e", "\x0c", "9" * 30, "+5", ".5",
                "4,50,", "7790895000997", "ABC-123",
            ])
            lines[i] = ",".join(cells)
        return ("\n".join(lines) + "\n").encode()
    junk = ["", ",,,", "code,title,unit price,sku", '"', "a,b", "1,2,3,4,5", "\ufeffx,y,1,z"]
    return line_ops(base, rng, junk).encode()


# -- the CLI families -----------------------------------------------------------------------------------

class CliRig:
    """A folder with a valid config, token and catalog; an emulator and a printer on loopback."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        self.folder = folder
        self.emulator = Emulator(site=SITE, user_id=123456789)
        self.server = EmulatorServer(self.emulator).start()
        self.printer = LoopbackPrinter().up()
        self.config = harness.write_config(folder, self.emulator, self.server.url, self.printer)
        self.base = self.config.read_text()
        self.token = folder / "token"
        (folder / "catalog.csv").write_text(CATALOG_TEXT)

    def close(self) -> None:
        self.server.stop()
        self.printer.down()

    def check(self) -> tuple[bool, int | None, str, str]:
        """``mpqr-kiosk check`` in this process: (finished in time, exit code, output, what escaped)."""
        out, err = io.StringIO(), io.StringIO()

        def call() -> int:
            try:
                return cli.main(["--config", str(self.config), "check"])
            except SystemExit as exc:  # argparse
                return exc.code if isinstance(exc.code, int) else exits.USAGE

        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            done, rc, escaped = bounded(call, DEADLINE)
        return done, rc, out.getvalue() + err.getvalue(), escaped


def judge_cli(campaign: Campaign, family: str, index: int, data: bytes, result: tuple, ext: str,
              extra: str = "") -> None:
    done, rc, output, escaped = result
    if done:
        campaign.note(f"check exit {rc}")
    if not done:
        campaign.found(family, index, "hang", f"check gave no outcome within {DEADLINE:g}s", data, ext)
    elif escaped:
        campaign.found(family, index, "crash", escaped, data, ext)
    elif rc not in EXIT_CODES or "Traceback" in output:
        campaign.found(family, index, "crash", f"exit {rc}\n{output[-4000:]}", data, ext)
    elif extra:
        campaign.found(family, index, "amount", extra, data, ext)


def run_config(campaign: Campaign, indexes: range, rig: CliRig) -> None:
    for index in indexes:
        data = config_input(rig.base, campaign.rng("config", index))
        rig.config.write_bytes(data)
        judge_cli(campaign, "config", index, data, rig.check(), "toml")
        campaign.inputs += 1
    rig.config.write_text(rig.base)


def run_token(campaign: Campaign, indexes: range, rig: CliRig) -> None:
    for index in indexes:
        kind, data, mode = token_input(campaign.rng("token", index))
        _remove(rig.token)
        if kind == "dir":
            rig.token.mkdir()
        elif kind == "dangling":
            rig.token.symlink_to(rig.folder / "nowhere")
        elif kind == "loop":
            rig.token.symlink_to(rig.token)
        elif kind == "empty_dir_link":
            rig.token.symlink_to(rig.folder)
        elif kind == "fifo_absent":
            pass  # no token file at all
        else:
            rig.token.write_bytes(data * (20_000 if kind == "huge" else 1))
            rig.token.chmod(mode)
        judge_cli(campaign, "token", index, f"{kind} mode {mode:o}\n".encode() + data, rig.check(), "token")
        campaign.inputs += 1
    _remove(rig.token)
    rig.token.write_text(harness.TOKEN)
    rig.token.chmod(0o600)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


STRICT_AMOUNT = re.compile(r"\d{1,9}(?:[.,]\d{1,2})?")


def strict_cents(text: str) -> int | None:
    """Minor units of an amount written plainly (``12``, ``12.5``, ``12,50``); None for any other form."""
    text = text.strip()
    if not STRICT_AMOUNT.fullmatch(text):
        return None
    whole, _, frac = text.replace(",", ".").partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def run_catalog(campaign: Campaign, indexes: range, rig: CliRig) -> None:
    the_site = site_of(SITE)
    path = rig.folder / "catalog.csv"
    for index in indexes:
        data = catalog_input(campaign.rng("catalog", index))
        path.write_bytes(data)
        result = rig.check()
        judge_cli(campaign, "catalog", index, data, result, "csv", catalog_money(path, data, the_site))
        campaign.inputs += 1
    path.write_text(CATALOG_TEXT)


def catalog_money(path: Path, data: bytes, the_site) -> str:
    """What is wrong with the prices of a catalog that loads: out of bounds, or not what a plainly written
    price says."""
    try:
        catalog = load_catalog(path, the_site)
    except ValueError:
        return ""
    problems = [f"{code}: {item.unit_price}" for code, item in catalog.items()
                if not (isinstance(item.unit_price, int) and 0 <= item.unit_price <= the_site.max_amount)]
    text = data.decode("utf-8-sig", "replace")
    for line in text.splitlines():
        cells = [c.strip() for c in re.split("[,;]", line)]
        if len(cells) == 4 and cells[0] in catalog:
            expected = strict_cents(cells[2])
            if expected is not None and "," not in cells[2] and catalog[cells[0]].unit_price != expected:
                problems.append(f"{cells[0]}: price {cells[2]!r} loaded as {catalog[cells[0]].unit_price}")
    return "\n".join(problems)


# -- the scanner family ---------------------------------------------------------------------------------

def apply(entry: Entry, values: list, prices: dict[str, int]) -> Entry:
    """What decoded values do to the operator's entry (the core's rules; ENTER only charges what is shown)."""
    from mpqr_kiosk.core.model import Item

    for value in values:
        if isinstance(value, Scan):
            if value.code in prices:
                entry = entry.add(Item(CATALOG[value.code][0], prices[value.code], 1, "S", value.code))
        elif isinstance(value, Key):
            if value.key in DIGITS:
                entry = entry.digit(int(value.key)) or entry
            elif value.key == MULTIPLY:
                entry = entry.multiply() or entry
            elif value.key == DELETE:
                entry = entry.delete()
            elif value.key == CLEAR:
                entry = Entry()
            elif value.key != ENTER:
                raise ValueError(f"not a key: {value.key!r}")
        elif not isinstance(value, Refused):
            raise ValueError(f"not a decoded value: {value!r}")
    return entry


def _keys_for(keymap: Keymap, char: str) -> tuple[int, bool, bool] | None:
    for altgr in (False, True):
        for shift in (False, True):
            for code in keymap.keys:
                if keymap.char(code, shift, altgr) == char and not (e.KEY_KP0 <= code <= e.KEY_KPDOT):
                    return code, shift, altgr
    return None


def _press(code: int, shift: bool = False, altgr: bool = False) -> list[InputEvent]:
    ev = []
    if shift:
        ev.append(InputEvent(0, 0, e.EV_KEY, e.KEY_LEFTSHIFT, 1))
    if altgr:
        ev.append(InputEvent(0, 0, e.EV_KEY, e.KEY_RIGHTALT, 1))
    ev += [InputEvent(0, 0, e.EV_KEY, code, 1), InputEvent(0, 0, e.EV_SYN, 0, 0), InputEvent(0, 0, e.EV_KEY, code, 0)]
    if altgr:
        ev.append(InputEvent(0, 0, e.EV_KEY, e.KEY_RIGHTALT, 0))
    if shift:
        ev.append(InputEvent(0, 0, e.EV_KEY, e.KEY_LEFTSHIFT, 0))
    return ev


MODIFIERS = (e.KEY_LEFTSHIFT, e.KEY_RIGHTSHIFT, e.KEY_RIGHTALT, e.KEY_LEFTCTRL, e.KEY_RIGHTCTRL, e.KEY_LEFTALT)
RELEASE_ALL = [InputEvent(0, 0, e.EV_KEY, m, 0) for m in MODIFIERS]


def _keypad_means_something(keymap: Keymap, code: int) -> bool:
    return code in OPERATOR_KEYS or any(keymap.char(code, s, a) in (*DIGITS, "*", "#")
                                        for s in (False, True) for a in (False, True))


def hid_input(rng: random.Random) -> tuple[str, list[InputEvent], list]:
    """(label, events, what the valid parts mean) for one HID device."""
    keymap = KEYMAPS[rng.choice(sorted(KEYMAPS))]
    role = rng.choice(list(Role))
    events: list[InputEvent] = []
    meant: list = []
    for _ in range(rng.randint(1, 12)):
        if rng.random() < 0.4:  # a valid part
            if role is Role.SCANNER and rng.random() < 0.7:
                code = rng.choice(sorted(CATALOG))
                for char in code:
                    events += _press(*_keys_for(keymap, char))
                events += _press(rng.choice([e.KEY_ENTER, e.KEY_KPENTER]))
                meant.append(Scan(code))
            elif role is Role.SCANNER:
                key, code = rng.choice([(ENTER, e.KEY_ENTER), (DELETE, e.KEY_BACKSPACE), (CLEAR, e.KEY_ESC)])
                events += _press(code)
                meant.append(Key(key))
            else:
                key = rng.choice([*DIGITS, *DIGITS, MULTIPLY, ENTER, DELETE, CLEAR])
                code = {MULTIPLY: e.KEY_KPASTERISK, ENTER: e.KEY_KPENTER, DELETE: e.KEY_BACKSPACE,
                        CLEAR: e.KEY_ESC}.get(key) or getattr(e, rng.choice(["KEY_", "KEY_KP"]) + key)
                events += _press(code)
                meant.append(Key(key))
            continue
        for _ in range(rng.randint(1, 30)):  # garbage
            kind = rng.random()
            if kind < 0.15:
                events.append(InputEvent(0, 0, rng.choice([e.EV_SYN, e.EV_MSC, e.EV_REL, e.EV_ABS, e.EV_LED, 0x1f]),
                                         rng.randrange(0x300), rng.randrange(-5, 5)))
            elif kind < 0.35:
                events.append(InputEvent(0, 0, e.EV_KEY, rng.randrange(0x300), rng.choice([0, 2, 3, -1])))
            elif kind < 0.5:
                events.append(InputEvent(0, 0, e.EV_KEY, rng.choice(MODIFIERS), rng.choice([0, 1])))
            else:
                code = rng.randrange(0x300) if rng.random() < 0.3 else rng.choice(sorted(keymap.keys))
                if role is Role.KEYPAD and _keypad_means_something(keymap, code):
                    continue
                if role is Role.SCANNER and code in (e.KEY_ENTER, e.KEY_KPENTER, e.KEY_BACKSPACE, e.KEY_ESC):
                    continue
                events.append(InputEvent(0, 0, e.EV_KEY, code, 1))
        events += RELEASE_ALL
        if role is Role.SCANNER:  # a garbage code ends, refused or unknown (or Enter alone: harmless)
            events += _press(e.KEY_ENTER)
    return f"hid {keymap.name} {role}", events, meant


def _junk_line(rng: random.Random, longest: int) -> bytes:
    kind = rng.random()
    if kind < 0.3:
        return bytes(rng.choice([rng.randrange(256), rng.randrange(0x20)]) for _ in range(rng.randint(1, 80)))
    if kind < 0.5:
        return b"X" * rng.choice([65, 300, longest + 1, 3 * longest])
    if kind < 0.7:
        return rng.choice([b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\x80abc", b"\xf4\x90\x80\x80"]) + b"12"
    if kind < 0.85:
        return rng.choice([b"12\x1d50", b"\x1b[31m1", b"1\x0025", b"scan:\x07", b"\xe2\x80\xae789100", b"1\t2",
                           b"\x02789100\x03", b"12\x0b", b"\x1d7790895000997"])
    return "".join(rng.choice("abcXYZ-_/+@é€") for _ in range(rng.randint(1, 20))).encode()


def line_input(rng: random.Random, serial: bool) -> tuple[str, bytes, list]:
    longest = 256 if serial else 4096
    data, meant = b"", []
    for _ in range(rng.randint(1, 15)):
        ends = rng.choice([b"\r", b"\n", b"\r\n"]) if serial else b"\n"
        if rng.random() < 0.4:
            code = rng.choice(sorted(CATALOG))
            if serial:
                data += code.encode() + ends
                meant.append(Scan(code))
            elif rng.random() < 0.5:
                prefix = rng.choice(["scan:", " scan: "] if code.isdigit() else ["", " ", "scan:"])
                data += f"{prefix}{code}{rng.choice(['', ' '])}".encode() + ends
                meant.append(Scan(code))
            else:
                keys = "".join(rng.choice("0123456789*#DC") for _ in range(rng.randint(1, 6)))
                data += keys.encode() + ends
                meant += [Key({"*": MULTIPLY, "#": ENTER, "D": DELETE, "C": CLEAR}.get(k, k)) for k in keys]
        else:
            junk = _junk_line(rng, longest)
            data += junk.replace(b"\r", b"").replace(b"\n", b"") + ends
    return ("serial" if serial else "stdin"), data, meant


def feed_serial(data: bytes, rng: random.Random) -> list:
    decoder, got, i = LineDecoder(), [], 0
    while i < len(data):
        n = rng.randint(1, 64)
        got += decoder.feed(data[i : i + n])
        i += n
    return got


def feed_stdin(data: bytes) -> list:
    got: list = []
    read, write = os.pipe()
    source = StdinSource(got.append, stream=os.fdopen(read, "r"), on_refused=got.append)
    source.start()
    writer = threading.Thread(target=lambda: (os.write(write, data) if data else None, os.close(write)), daemon=True)
    writer.start()
    deadline = time.monotonic() + DEADLINE
    while source.healthy and time.monotonic() < deadline:
        time.sleep(0.001)
    source.stop()
    if source.healthy:
        raise TimeoutError("stdin source did not reach the end of its input")
    return got


class Matrix:
    """A mock membrane keypad on gpiozero's mock pins: closing a key joins its row pin to its column pin."""

    def __init__(self, faces: tuple[str, ...], rows: tuple[int, ...], cols: tuple[int, ...]) -> None:
        from gpiozero.pins.mock import MockConnectedPin, MockFactory, MockPin

        self.factory = MockFactory()
        self.faces = faces
        self.cols = [self.factory.pin(c, pin_class=MockPin) for c in cols]
        self.rows = [self.factory.pin(r, pin_class=MockConnectedPin) for r in rows]

    def press(self, face: str) -> None:
        for r, line in enumerate(self.faces):
            if face in line:
                self.rows[r].input_pin = self.cols[line.index(face)]

    def release(self) -> None:
        for row in self.rows:
            row.input_pin = None
        for col in self.cols:
            col.drive_high()


def keypad_input(rng: random.Random) -> tuple[str, list, list]:
    """(label, plan of (face or None, polls), what the valid presses mean)."""
    ncols = rng.choice(sorted(FACES))
    faces = FACES[ncols]
    keyof = {"#": ENTER, "*": MULTIPLY, "D": DELETE, "C": CLEAR}
    plan: list = [(None, 4)]
    meant = []
    for _ in range(rng.randint(1, 12)):
        face = rng.choice("".join(faces))
        if rng.random() < 0.5:  # a clean press
            plan += [(face, rng.randint(4, 9)), (None, rng.randint(4, 9))]
            if face in DIGITS or face in keyof:
                meant.append(Key(keyof.get(face, face)))
        else:  # bounce: never three same readings in a row, then released long
            for _ in range(rng.randint(1, 6)):
                plan += [(face, rng.randint(1, 2)), (None, 1)]
            plan.append((None, 5))
    return f"keypad {ncols} columns", plan, meant


def feed_keypad(plan: list, ncols: int) -> list:
    rows, cols = (5, 6, 13, 19), (12, 16, 20, 21)[:ncols]
    matrix = Matrix(FACES[ncols], rows, cols)
    source = KeypadSource(rows, cols, lambda key: None, pin_factory=matrix.factory)
    got: list = []
    try:
        source.open()
        for face, polls in plan:
            matrix.release()
            if face is not None:
                matrix.press(face)
            for _ in range(polls):
                got += source.poll()
    finally:
        source.stop()
        matrix.factory.reset()
    return got


def run_scanner(campaign: Campaign, indexes: range) -> None:
    the_site = site_of(SITE)
    prices = {code: the_site.parse(price) for code, (_, price) in CATALOG.items()}
    for index in indexes:
        rng = campaign.rng("scanner", index)
        which = rng.choice(["hid", "hid", "serial", "stdin", "keypad"])
        if which == "hid":
            label, events, meant = hid_input(rng)
            keymap, role = label.split()[1:]
            data = "\n".join(f"{ev.type} {ev.code} {ev.value}" for ev in events).encode()

            def feed(events=events, keymap=keymap, role=role) -> list:
                decoder = HidDecoder(KEYMAPS[keymap], Role(role))
                return [value for event in events for value in decoder.feed(event)]
        elif which == "keypad":
            label, plan, meant = keypad_input(rng)
            data = json.dumps(plan).encode()
            ncols = int(label.split()[1])

            def feed(plan=plan, ncols=ncols) -> list:
                return feed_keypad(plan, ncols)
        else:
            label, data, meant = line_input(rng, which == "serial")
            chunks = random.Random(rng.random())

            def feed(data=data, which=which, chunks=chunks) -> list:
                return feed_serial(data, chunks) if which == "serial" else feed_stdin(data)
        done, got, escaped = bounded(feed, DEADLINE)
        campaign.inputs += 1
        campaign.note(f"into {which}")
        name = f"{label}\n".encode() + data
        if not done:
            campaign.found("scanner", index, "hang", f"{label}: no outcome within {DEADLINE:g}s", name)
            continue
        if escaped:
            campaign.found("scanner", index, "crash", f"{label}:\n{escaped}", name)
            continue
        try:
            actual = apply(Entry(), got, prices)
        except ValueError as exc:
            campaign.found("scanner", index, "crash", f"{label}: {exc}", name)
            continue
        expected = apply(Entry(), meant, prices)
        if (actual.items, actual.amount, actual.quantity) != (expected.items, expected.amount, expected.quantity):
            campaign.found("scanner", index, "amount",
                           f"{label}: the entry came to {actual.total} + {actual.amount} keyed (x{actual.quantity}), "
                           f"the valid input means {expected.total} + {expected.amount} (x{expected.quantity})\n"
                           f"decoded: {[v for v in got if not isinstance(v, Refused)]}\nmeant: {meant}", name)


# -- the daemon families --------------------------------------------------------------------------------

class DaemonRig:
    """The real daemon on an emulator (through ``Proxy`` when one is given) and a loopback printer."""

    def __init__(self, folder: Path, api: str = "instore", proxy: bool = False) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.emulator = Emulator(site=SITE, user_id=123456789)
        self.server = EmulatorServer(self.emulator).start()
        self.proxy = Proxy(self.server.url) if proxy else None
        self.printer = LoopbackPrinter().up()
        url = self.proxy.url if self.proxy else self.server.url
        config = harness.write_config(folder, self.emulator, url, self.printer, poll="100ms", ttl="10m", api=api,
                                      extra='cancel_grace = "1s"\nlate_watch = "5s"')
        self.log = folder / "daemon.log"
        self.daemon = harness.Daemon(folder, config)
        self.log_seen = 0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.daemon.stop()
        if self.daemon.process.poll() is None:
            self.daemon.process.kill()
        self.server.stop()
        if self.proxy:
            self.proxy.stop()
        self.printer.down()

    def control(self, message: dict, timeout: float = DEADLINE) -> dict | None:
        try:
            return harness.request(self.daemon.socket, message, timeout=timeout)
        except (OSError, ValueError):
            return None

    def health(self) -> str:
        """Why the daemon is not well ("" when it is): dead, not answering status, or a traceback logged."""
        if self.daemon.process.poll() is not None:
            return f"the daemon died (exit {self.daemon.process.returncode})\n{self.new_log()}"
        status = self.control({"command": "status"})
        if not status or not status.get("ok"):
            return f"the daemon did not answer status within {DEADLINE:g}s: {status}"
        log = self.new_log()
        if "Traceback" in log:
            return f"a traceback in the daemon's log:\n{log[-4000:]}"
        return ""

    def new_log(self) -> str:
        text = self.log.read_text(errors="replace")
        new, self.log_seen = text[self.log_seen :], len(text)
        return new

    def idle(self, deadline: float = DEADLINE) -> bool:
        """Cancel whatever sale is live and wait until there is none."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            status = self.control({"command": "status"}, timeout=5)
            if status and status.get("ok") and not status.get("sale"):
                return True
            self.control({"command": "cancel"}, timeout=5)
            time.sleep(0.05)
        return False

    def journaled(self, reference: str):
        journal = Journal(self.folder / "state")
        try:
            return journal.get(reference)
        finally:
            journal.close()


def asked_cents(value: Any, max_amount: int) -> int | None:
    """The amount a control request plainly asks for (None: no valid amount). Plain forms only: a whole
    number, a float with at most two decimals, ``12.50``/``12,50``, ``1 250``, or ``1.234,50``/``1,234.50``."""
    cents = None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        cents = value * 100
    elif isinstance(value, float):
        try:
            d = Decimal(repr(value))
            cents = int(d * 100) if d == d.quantize(Decimal("0.01")) else None
        except (InvalidOperation, ValueError, OverflowError):
            return None
    elif isinstance(value, str) and len(value) <= 32:
        text = value.strip()
        cents = strict_cents(text)
        if re.fullmatch(r"\d{1,3}(?: \d{3})+(?:[.,]\d{1,2})?", text):  # thousands grouped by spaces
            cents = strict_cents(text.replace(" ", ""))
        grouped = re.fullmatch(r"(\d{1,3}(?:\.\d{3})+),(\d{2})|(\d{1,3}(?:,\d{3})+)\.(\d{2})", text)
        if grouped:
            whole, frac = (grouped[1], grouped[2]) if grouped[1] else (grouped[3], grouped[4])
            cents = int(re.sub(r"[.,]", "", whole)) * 100 + int(frac)
    return cents if cents is not None and 0 < cents <= max_amount else None


AMOUNTS = ["12.50", "12,50", "1", "0.01", "1.234,50", "1,234.50", 12, 12.5, "250000.00", "250000,01", "0", "-5",
           "1.500", "1.2345", "1.234.567", "12.", ".5", "1e3", "NaN", "inf", "١٢", "１２", "12\x00", " 7 ", "1 250",
           "+5", "0x10", "9" * 33, 10**30, 1e308, float("nan"), True, None, [], {}, "12.50.1", "12,5,0", "", "abc",
           "\u202e05.21", 0.1 + 0.2, 2**63, -0.0, "00012.50", "12.505"]
COMMANDS = ["status", "sale", "cancel", "reprint", "refund", "review", "report", "hint", "", "SALE", "do_sale",
            "__init__", "handle", "_sale", None, 1, ["sale"], {"a": 1}]


def control_input(rng: random.Random, the_site) -> tuple[bytes, Any]:
    """(the line, the amount a valid sale request in it asks for)."""
    command = "sale" if rng.random() < 0.6 else rng.choice(COMMANDS)
    message: dict[str, Any] = {"command": command}
    if command == "sale" or rng.random() < 0.2:
        message["amount"] = rng.choice(AMOUNTS)
    for key in rng.sample(["reference", "date", "amount", "extra", "x" * 300], rng.choice([0, 0, 0, 1, 2])):
        message.setdefault(key, rng.choice(["", "REF-1", "../../x", "a" * 65, "2026-02-30", "9999-12-31", 1, None,
                                            [1], {"b": 2}, "2026-01-01", "x" * 5000, "\x00", True, 1e999]))
    try:
        line = json.dumps(message).encode()
    except ValueError:
        line = b"{}"
    kind = rng.random()
    if kind < 0.15:
        line = flip(line, rng)
    elif kind < 0.25:
        line = truncate(line, rng)
    elif kind < 0.35:
        line = rng.choice([b"", b"\n", b"null", b"[]", b'"status"', b"1e999", b"NaN", b"{" * 10_000, b"[" * 100_000,
                           b"\xff\xfe{}", b'{"command": "status"}' * 3, b'{"command": "status", "command": "sale"}',
                           b'{"command": "sale", "amount": "12.50", "amount": "99999"}', b"\x00" * 5000,
                           b'{"command": "sale", "amount": ' + b"9" * 5000 + b"}", b"x" * 10_000,
                           b'{"command": "sale", "amount": 1e309}', b'{"command": "sale", "amount": NaN}'])
    try:
        parsed = json.loads(line)
    except (ValueError, RecursionError):
        parsed = None
    sale = isinstance(parsed, dict) and parsed.get("command") == "sale"
    return line + (b"\n" if rng.random() < 0.9 else b""), (parsed.get("amount", "") if sale else None)


def send_line(path: str, line: bytes, deadline: float) -> bytes | None:
    """Send raw bytes, half-close, read the answer; None when none came within ``deadline``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(deadline)
        sock.connect(path)
        with contextlib.suppress(OSError):
            sock.sendall(line)
            sock.shutdown(socket.SHUT_WR)
        data = b""
        end = time.monotonic() + deadline
        while not data.endswith(b"\n") and time.monotonic() < end:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return None
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        return data if data.endswith(b"\n") or time.monotonic() < end else None


def run_control(campaign: Campaign, indexes: range, folder: Path) -> None:
    rig = DaemonRig(folder)
    the_site = site_of(SITE)
    try:
        rig.health()
        for index in indexes:
            line, amount = control_input(campaign.rng("control", index), the_site)
            campaign.inputs += 1
            try:
                answer = send_line(rig.daemon.socket, line, DEADLINE)
            except OSError as exc:
                answer = f"cannot connect: {exc}".encode()
            if answer is None:
                campaign.found("control", index, "hang", f"no answer within {DEADLINE:g}s", line)
                rig.idle()
                continue
            problem = rig.health()
            if problem:
                campaign.found("control", index, "crash", problem, line)
                if rig.daemon.process.poll() is not None:
                    rig.close()
                    rig = DaemonRig(folder.with_name(f"{folder.name}-{index}"))
                continue
            if not answer and not line:  # said nothing, heard nothing
                continue
            try:
                reply = json.loads(answer)
            except ValueError:
                campaign.found("control", index, "crash", f"the answer is not JSON: {answer[:500]!r}", line)
                continue
            if not isinstance(reply, dict) or "ok" not in reply:
                campaign.found("control", index, "crash", f"the answer has no ok: {reply!r}", line)
            elif "internal error" in str(reply.get("error", "")):
                campaign.found("control", index, "crash", f"the daemon answered {reply}", line)
            if isinstance(reply, dict) and reply.get("ok") and reply.get("reference") and amount is not None:
                campaign.note("sales started")
                sale = rig.journaled(reply["reference"])
                asked = asked_cents(amount, the_site.max_amount)
                total = sale.total if sale else None
                if total != asked:
                    campaign.found("control", index, "amount",
                                   f"a sale of {total} started from amount {amount!r} (a valid request for it asks "
                                   f"{asked})", line)
            if not rig.idle():
                campaign.found("control", index, "hang", "the sale it started did not end after a cancel", line)
    finally:
        rig.close()


class Proxy:
    """An HTTP proxy in front of the emulator that serves the next answers of one operation mutated."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.lock = threading.Lock()
        self.op: str | None = None
        self.left = 0
        self.mutate: Callable[[bytes], tuple[int, bytes]] | None = None
        self.served: list[tuple[str, int, bytes]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    conn.request(self.command, self.path, body, headers)
                    answer = conn.getresponse()
                    status, data = answer.status, answer.read()
                    ctype = answer.getheader("Content-Type", "application/json")
                finally:
                    conn.close()
                mutate = proxy.take(self.command, self.path.split("?")[0])
                if mutate is not None:
                    status, data = mutate(data)
                    with proxy.lock:
                        proxy.served.append((f"{self.command} {self.path}", status, data))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_PUT = do_DELETE = do_GET  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                """The daemon hanging up (its own deadline) is the daemon's business, not the proxy's."""

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def arm(self, op: str, count: int, mutate: Callable[[bytes], tuple[int, bytes]]) -> None:
        with self.lock:
            self.op, self.left, self.mutate, self.served = op, count, mutate, []

    def disarm(self) -> None:
        with self.lock:
            self.op, self.left = None, 0

    def take(self, method: str, path: str) -> Callable[[bytes], tuple[int, bytes]] | None:
        op = operation(method, path)
        with self.lock:
            if self.left and op == self.op:
                self.left -= 1
                return self.mutate
        return None

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def operation(method: str, path: str) -> str | None:
    if path.startswith("/users/me"):
        return None
    if method == "PUT" or (method == "POST" and path == "/v1/orders"):
        return "push"
    if method == "DELETE" or path.endswith("/cancel"):
        return "cancel"
    if method == "GET" and ("/orders" in path or "merchant_orders" in path or "/payments" in path):
        return "read"
    return None


VOCABULARY = ["closed", "opened", "expired", "processed", "canceled", "cancelled", "refunded", "", "CLOSED",
              "paid", "action_required", "in_process", "rejected", None, 0, -1, 1e300, "12.50", 12.5, [], {},
              "OTHER-SALE", True, "NaN", "∞", "x" * 10_000]


def mutate_json(value: Any, rng: random.Random, depth: int = 0) -> Any:
    """A garbled copy: values of wrong types, missing keys, absurd numbers; never a payment turned approved."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            roll = rng.random()
            if roll < 0.08:
                continue
            if roll < 0.2 and key not in ("status", "status_detail"):
                out[key] = rng.choice(VOCABULARY)
            elif roll < 0.25:
                out[key] = [item, item] if rng.random() < 0.5 else {"value": item}
            else:
                out[key] = mutate_json(item, rng, depth + 1)
        if rng.random() < 0.1:
            out[rng.choice(["extra", "status", "__proto__", ""])] = rng.choice(VOCABULARY)
        if out.get("status") == "approved" and value.get("status") != "approved":
            out["status"] = value.get("status")
        return out
    if isinstance(value, list):
        items = [mutate_json(v, rng, depth + 1) for v in value]
        if items and rng.random() < 0.2:
            items.append(items[0])
        if items and rng.random() < 0.1:
            items = items[:-1]
        return items
    if isinstance(value, bool) or value is None:
        return rng.choice([value, not value, "true", 0]) if rng.random() < 0.2 else value
    if isinstance(value, int | float):
        return rng.choice([value, -value, value * 100, value + 0.001, str(value), 1e300, float(value), 0]) \
            if rng.random() < 0.3 else value
    if isinstance(value, str):
        return rng.choice([value, "", value.upper(), value + "x", "\x00", value * 50]) if rng.random() < 0.2 else value
    return value


def api_mutator(rng: random.Random) -> Callable[[bytes], tuple[int, bytes]]:
    seed = rng.random()

    def mutate(body: bytes) -> tuple[int, bytes]:
        r = random.Random(seed)
        kind = r.random()
        status = r.choice([200] * 8 + [201, 204, 400, 404, 409, 429, 500, 502, 302])
        if kind < 0.15:
            return status, flip(body, r)
        if kind < 0.25:
            return status, truncate(body, r)
        if kind < 0.35:
            return status, r.choice([b"", b"null", b"[]", b"{}", b"1", b'"x"', b"[" * 100_000, b"<html>502</html>",
                                     b"\xff" * 100, b'{"elements": null}', b'{"elements": [null]}',
                                     b'{"status": "closed", "payments": "all"}', b"{" * 50_000, b"NaN",
                                     b'{"total_paid_amount": "NaN", "status": "processed"}'])
        try:
            parsed = json.loads(body) if body else {}
        except (ValueError, RecursionError):
            return status, flip(body, r)
        return 200 if r.random() < 0.8 else status, json.dumps(mutate_json(parsed, r)).encode()

    return mutate


def approved_truth(emulator: Emulator, reference: str) -> int:
    state = emulator.snapshot()
    the_site = emulator.site
    mos = [mo for mo in state["merchant_orders"] if mo["external_reference"] == reference]
    approved = sum(the_site.from_api(p["transaction_amount"]) for mo in mos for p in mo["payments"]
                   if p["status"] == "approved")
    orders = [o for o in state["orders"] if o["external_reference"] == reference and o["status"] == "processed"]
    return approved + sum(the_site.from_api(o["total_paid_amount"]) for o in orders)


def run_api(campaign: Campaign, indexes: range, folder: Path) -> None:
    """Two lanes side by side: even inputs on the in-store API, odd ones on the Orders API."""
    lanes = [threading.Thread(target=api_lane, args=(campaign, indexes[n::2], folder, api))
             for n, api in enumerate(("instore", "orders"))]
    for lane in lanes:
        lane.start()
    for lane in lanes:
        lane.join()


def api_lane(campaign: Campaign, indexes: range, folder: Path, api: str) -> None:
    rig = DaemonRig(folder / api, api=api, proxy=True)
    references: set[str] = set()
    ended: dict[str, tuple[int, bytes]] = {}  # cancelled or expired: the input that saw it end
    try:
        for index in indexes:
            rng = campaign.rng("api", index)
            proxy = rig.proxy
            assert proxy is not None
            with LOCK:
                campaign.inputs += 1
            op = rng.choice(["read"] * 6 + ["push", "cancel"])
            count = rng.randint(1, 3)
            buyer = rng.choice(["none", "scan", "reject", "partial", "over", "in_process", "approve"])
            total = rng.randint(1, 50_000)
            mutator = api_mutator(rng)
            if op == "push":
                proxy.arm(op, count, mutator)
            answer = rig.control({"command": "sale", "amount": f"{total // 100}.{total % 100:02d}"})
            reference = answer.get("reference") if answer and answer.get("ok") else None
            if reference:
                references.add(reference)
                end = time.monotonic() + 2  # the order reaches the POS a moment after the sale starts
                while rig.emulator.snapshot()["pos"][0]["order"] is None and time.monotonic() < end:
                    time.sleep(0.02)
            try:
                if buyer == "scan":
                    rig.emulator.scan("POS001")
                elif buyer in ("reject", "in_process", "approve"):
                    rig.emulator.pay("POS001", buyer.replace("approve", "approved").replace("reject", "rejected"))
                elif buyer == "partial" and total > 1:
                    rig.emulator.pay("POS001", "approved", amount=rng.randint(1, total - 1))
                elif buyer == "over":
                    rig.emulator.pay("POS001", "approved", amount=total + rng.randint(1, 500))
            except Exception:  # noqa: BLE001 - no order on the POS (a garbled push): nothing to pay
                pass
            if op != "push":
                proxy.arm(op, count, mutator)
            if op == "cancel":
                rig.control({"command": "cancel"})
            end = time.monotonic() + 1.5
            while proxy.left and time.monotonic() < end:
                time.sleep(0.02)
            time.sleep(rng.choice([0.0, 0.1, 0.3]))
            proxy.disarm()
            if proxy.served:
                campaign.note("inputs with mutated answers served")
            served = b"\n".join(f"{what} -> {status}".encode() + b"\n" + body for what, status, body in proxy.served)
            data = f"api {api}, buyer {buyer}, total {total}, {op} x{count}\n".encode() + served
            problem = rig.health()
            if problem:
                campaign.found("api", index, "crash", problem, data)
                if rig.daemon.process.poll() is not None:
                    rig.close()
                    rig = DaemonRig(folder / f"{api}-{index}", api=api, proxy=True)
                    references.clear()
                    ended.clear()
                continue
            if not rig.idle():
                campaign.found("api", index, "hang", "the sale did not end after the answers were true again and a "
                                                     "cancel", data)
            for ref in list(references):
                sale = rig.journaled(ref)
                if sale is not None and sale.state.value == "paid":
                    campaign.note("sales paid")
                    approved = approved_truth(rig.emulator, ref)
                    if approved != sale.total:
                        campaign.found("api", index, "amount",
                                       f"{ref} is paid in the journal, but the emulator approved {approved} of "
                                       f"{sale.total}", data)
                    references.discard(ref)
                elif sale is None or sale.state.value in ("cancelled", "expired", "review", "refunded", "failed"):
                    campaign.note(f"sales {sale.state.value if sale else 'not journaled'}")
                    references.discard(ref)
                    if sale is not None and sale.state.value in ("cancelled", "expired"):
                        ended[ref] = (index, data)
            unaccounted(campaign, rig, ended, wait=0.0)
        rig.proxy.disarm()
        unaccounted(campaign, rig, ended, wait=DEADLINE)
    finally:
        rig.close()


def unaccounted(campaign: Campaign, rig: DaemonRig, ended: dict[str, tuple[int, bytes]], wait: float) -> None:
    """Rule 9 for the cancelled and expired sales whose late watch is over (journaled ``watch_until`` 0, waiting
    up to ``wait`` for it): what the emulator approved for each is on a paid sale or in review, never lost."""
    end = time.monotonic() + wait
    while ended:
        for ref in list(ended):
            sale = rig.journaled(ref)
            if sale is None or sale.watch_until > 0:
                continue
            index, data = ended.pop(ref)
            approved = approved_truth(rig.emulator, ref)
            if sale.state.value in ("cancelled", "expired") and approved:
                campaign.found("api", index, "amount", f"{ref} ended {sale.state.value} and its watch is over, but "
                                                       f"the emulator approved {approved} of {sale.total}", data)
            elif sale.state.value == "paid" and approved != sale.total:
                campaign.found("api", index, "amount", f"{ref} was paid after it ended, but the emulator approved "
                                                       f"{approved} of {sale.total}", data)
            campaign.note(f"ended sales watched out ({sale.state.value})")
        if not ended or time.monotonic() >= end:
            break
        time.sleep(0.2)
    for ref, (index, data) in list(ended.items()) if wait else []:
        campaign.found("api", index, "hang", f"{ref}: its late watch was not over {wait:g}s after the last input",
                       data)


# -- the campaign ---------------------------------------------------------------------------------------

def campaign_run(seed: int, per_family: int, families: list[str], out: Path, say: Callable[[str], None]) -> Campaign:
    """Run the families asked for; the reproducers go to ``out``."""
    campaign = Campaign(seed, out)
    root = logging.getLogger()
    root.addHandler(TAP)
    root.setLevel(logging.INFO)
    indexes = range(per_family)
    with tempfile.TemporaryDirectory(prefix="mpqr-fuzz-") as tmp:
        folder = Path(tmp)
        rig = CliRig(folder / "cli") if {"config", "token", "catalog"} & set(families) else None
        try:
            for family in families:
                started, before = time.monotonic(), len(campaign.findings)
                campaign.notes = {}
                if family == "config":
                    run_config(campaign, indexes, rig)
                elif family == "token":
                    run_token(campaign, indexes, rig)
                elif family == "catalog":
                    run_catalog(campaign, indexes, rig)
                elif family == "scanner":
                    run_scanner(campaign, indexes)
                elif family == "control":
                    run_control(campaign, indexes, folder / "control")
                elif family == "api":
                    run_api(campaign, indexes, folder / "api")
                found = campaign.findings[before:]
                reached = "".join(f", {n} {what}" for what, n in sorted(campaign.notes.items()))
                say(f"fuzz {family}: {per_family} inputs{reached}, {len(found)} failing, "
                    f"{time.monotonic() - started:.1f}s")
                for finding in found:
                    first = finding.what.strip().splitlines()[-1] if finding.what.strip() else ""
                    say(f"  {finding.kind} {family}-{seed}-{finding.index:05d}: {first[:200]}")
        finally:
            root.removeHandler(TAP)
            if rig is not None:
                rig.close()
    return campaign


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-family", type=int, default=1000, metavar="N", help="inputs per family (default 1000)")
    parser.add_argument("--family", action="append", choices=FAMILIES, help="only this family (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("fuzz-out"), help="where reproducers go (default fuzz-out/)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    campaign = campaign_run(args.seed, args.per_family, args.family or list(FAMILIES), args.out,
                            lambda line: print(line, flush=True))
    if campaign.findings:
        print(f"fuzz: reproducers in {args.out}/", flush=True)
    print(f"fuzz: seed {args.seed}, {time.monotonic() - started:.0f}s", flush=True)
    print(campaign.summary(), flush=True)
    return 1 if campaign.findings else 0


if __name__ == "__main__":
    sys.exit(main())
