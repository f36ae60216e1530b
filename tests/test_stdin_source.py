import contextlib
import io
import os
import time

import pytest
from conftest import wait_for

from mpqr_kiosk.core.events import CLEAR, DELETE, ENTER, MULTIPLY, Key, Scan
from mpqr_kiosk.devices.input.hid import Refused
from mpqr_kiosk.devices.input.stdin_source import StdinSource, parse_line


@pytest.mark.parametrize(
    ("line", "values"),
    [
        ("1250#\n", [Key("1"), Key("2"), Key("5"), Key("0"), Key(ENTER)]),
        ("3*", [Key("3"), Key(MULTIPLY)]),
        ("  D C\t\n", [Scan("D C")]),  # a space makes it a barcode
        ("AB\x1dCD", [Refused("code has non-printable characters")]),
        ("DC", [Key(DELETE), Key(CLEAR)]),
        ("C", [Key(CLEAR)]),
        ("scan:7790895000997", [Scan("7790895000997")]),
        ("scan: 1250", [Scan("1250")]),
        ("ABC-123", [Scan("ABC-123")]),
        ("Pão 1", [Scan("Pão 1")]),
        ("  \n", []),
        ("scan:", [Refused("empty code")]),
        ("x" * 65, [Refused("code longer than 64 characters")]),
    ],
)
def test_line_format(line, values):
    assert parse_line(line) == values


def test_reads_a_text_stream_in_order_and_turns_unhealthy_at_its_end():
    got, refused = [], []
    source = StdinSource(
        got.append, stream=io.StringIO("1250#\nscan:7791234000159\n\nABC-123\n" + "9" * 70 + "x\nC\n"),
        on_refused=refused.append,
    )  # fmt: skip
    source.start()
    assert wait_for(lambda: not source.healthy)
    source.stop()
    assert got == [
        Key("1"), Key("2"), Key("5"), Key("0"), Key(ENTER), Scan("7791234000159"), Scan("ABC-123"), Key(CLEAR),
    ]  # fmt: skip
    assert refused == [Refused("code longer than 64 characters")]


@pytest.fixture
def piped():
    """A started StdinSource reading a real pipe: (source, write end, keys and scans, refusals)."""
    r, w = os.pipe()
    stream = open(r, encoding="utf-8")
    got, refused = [], []
    source = StdinSource(got.append, stream=stream, on_refused=refused.append)
    source.start()
    yield source, w, got, refused
    source.stop()
    stream.close()
    with contextlib.suppress(OSError):
        os.close(w)


def test_a_descriptor_stream_joins_partial_lines_refuses_bad_bytes_and_stops_while_blocked(piped):
    source, w, got, refused = piped
    os.write(w, b"3")
    os.write(w, b"*\nABC")
    os.write(w, b"-9\n\xff\xfe\n")
    assert wait_for(lambda: len(got) == 3 and refused)
    assert got == [Key("3"), Key(MULTIPLY), Scan("ABC-9")]
    assert refused == [Refused("line is not UTF-8 text")]
    assert source.healthy
    source.stop()  # nothing more is written: the read is waiting, stop must not hang
    assert not source.healthy
    os.write(w, b"7\n")
    time.sleep(0.3)
    assert got == [Key("3"), Key(MULTIPLY), Scan("ABC-9")]  # a stopped source reads no more


def test_an_overlong_descriptor_line_is_refused_once_and_its_tail_is_not_a_scan(piped):
    source, w, got, refused = piped
    os.write(w, b"A" * 5000)
    assert wait_for(lambda: refused == [Refused("line too long")])
    os.write(w, b"B" * 3000 + b"\nOK\n")
    os.close(w)
    assert wait_for(lambda: not source.healthy)
    assert refused == [Refused("line too long")]
    assert got == [Scan("OK")]


@pytest.mark.parametrize("separator", ["\x1c", "\x1d", "\x1e", "\x1f"])
def test_digits_wrapped_in_separator_bytes_are_refused_not_typed(separator):
    """str.strip() would remove ASCII separators and leave digits that change the total."""
    [event] = parse_line(f"{separator}1250{separator}\n")
    assert isinstance(event, Refused)
    assert parse_line("1250\r\n") == [Key(d) for d in "1250"]  # what a terminal adds is still fine
