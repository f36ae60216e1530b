import os
import time

import pytest
import serial
from conftest import wait_for

from mpqr_kiosk.core.events import Scan
from mpqr_kiosk.devices.input import VALID_SPECS, parse_spec
from mpqr_kiosk.devices.input.hid import Refused
from mpqr_kiosk.devices.input.serial_source import LineDecoder, SerialSource


def test_lines_end_with_cr_lf_or_both_and_blank_lines_are_skipped():
    lines = LineDecoder()
    assert lines.feed(b"7891000") == []
    assert lines.feed(b"100103\r\nABC-12\r\r\n\nX/Y.Z $%+\n") == [
        Scan("7891000100103"),
        Scan("ABC-12"),
        Scan("X/Y.Z $%+"),
    ]


def test_overlong_non_text_and_non_printable_lines_are_refused_and_the_next_line_is_clean():
    lines = LineDecoder()
    out = lines.feed(b"9" * 65 + b"\r\n" + b"1" * 300 + b"\n" + b"\xff\xfe\n" + b"01\x1d17\n" + b"OK\n")
    assert out == [
        Refused("code longer than 64 characters"),
        Refused("code longer than 64 characters"),
        Refused("code is not UTF-8 text"),
        Refused("code has non-printable characters"),
        Scan("OK"),
    ]
    assert lines.feed(b"\xc3\x91and\xc3\xba\n") == [Scan("Ñandú")]


def test_reads_scans_written_into_a_loop_port(sources):
    port = serial.serial_for_url("loop://", timeout=0.2)
    got, refused = [], []
    source = SerialSource("loop://", 9600, got.append, on_refused=refused.append, opener=lambda *a, **k: port)
    sources.append(source)
    source.start()
    assert wait_for(lambda: source.healthy)
    port.write(b"7791234000159\r\n" + b"x" * 80 + b"\r\n")
    port.write(b"ORD-42\r\n")
    assert wait_for(lambda: len(got) == 2)
    assert got == [Scan("7791234000159"), Scan("ORD-42")]
    assert refused == [Refused("code longer than 64 characters")]
    source.stop()
    assert not port.is_open and not source.healthy


def test_reads_a_pty_like_a_real_tty(sources):
    master, slave = os.openpty()
    try:
        got = []
        source = SerialSource(os.ttyname(slave), 9600, got.append)
        sources.append(source)
        source.start()
        assert wait_for(lambda: source.healthy)
        os.write(master, b"4006381333931\r")
        assert wait_for(lambda: got == [Scan("4006381333931")])
    finally:
        for source in sources:
            source.stop()
        os.close(master)
        os.close(slave)


class FailingPort:
    """A port that fails on its first read, like a scanner pulled out mid-use."""

    def __init__(self):
        self.in_waiting = 0
        self.closed = False

    def read(self, size):
        raise serial.SerialException("device reports readiness to read but returned no data")

    def close(self):
        self.closed = True


def test_open_and_read_failures_reopen_with_a_growing_back_off(sources):
    calls, ports = [], []

    def opener(url, **kwargs):
        calls.append(kwargs)
        if len(calls) <= 2:
            raise serial.SerialException(f"could not open port {url}")
        port = FailingPort()
        ports.append(port)
        return port

    source = SerialSource("/dev/ttyACM0", 115200, lambda v: None, opener=opener, backoff=0.02, max_backoff=0.1)
    assert source.name == "serial:/dev/ttyACM0:115200"
    sources.append(source)
    source.start()
    assert wait_for(lambda: len(ports) >= 2)  # opened, failed, closed, reopened
    assert ports[0].closed and calls[0]["baudrate"] == 115200
    count = len(calls)
    time.sleep(0.5)
    assert 2 <= len(calls) - count <= 0.5 / 0.02  # keeps trying, never in a tight loop
    source.stop()
    assert not source.healthy


def test_a_serial_spec_takes_its_baud_rate_in_ascii_digits_only():
    assert parse_spec("serial:/dev/ttyACM0:115200") == ("serial", None, "/dev/ttyACM0", 115200)
    assert parse_spec("serial:loop://")[2] == "loop://"  # a URL's own colon is no baud rate
    with pytest.raises(ValueError) as raised:
        parse_spec("serial:/dev/ttyACM0:9600\u00b2")  # "²" is a digit to str.isdigit, not to int()
    assert str(raised.value) == ("'serial:/dev/ttyACM0:9600\u00b2' is not a valid input device; "
                                 f"valid forms: {VALID_SPECS}")
