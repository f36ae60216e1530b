"""A raw-9100 network receipt printer on loopback, for python-escpos's real ``Network`` class: the shop's printer
in tests, ``bench`` and ``soak``.

It keeps what each connection sent, answers ``DLE EOT n`` status queries from ``replies`` (default: online,
paper present), can stop answering (``answers_left``), be switched off (``down``: connection refused, like a
printer without power) or power cycled mid-job (``drop``: the open connection is reset), and splits what it
printed into receipts at each cut, noting when each receipt's first byte arrived (and showing
``on_receipt`` each receipt as it arrives)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable

DLE_EOT = b"\x10\x04"
CUT = b"\x1dV"  # GS V m [n]
COPY_MARK = b"PIA ***"  # the end of "*** COPIA ***" / "*** CÓPIA ***" (python-escpos may switch code page inside)
ONLINE_PAPER_OK = 0x12


class LoopbackPrinter:
    def __init__(self, port: int = 0, replies: dict[int, int] | None = None) -> None:
        self.replies = dict(replies) if replies is not None else {n: ONLINE_PAPER_OK for n in (1, 2, 3, 4)}
        self.answers_left: int | None = None  # None: answer every status query; N: answer N more, then stall
        self.port = port
        self.received: list[bytearray] = []  # raw bytes, one buffer per connection
        self.connections: list[socket.socket] = []
        self.first_bytes: list[float] = []  # wall-clock time each receipt's first byte arrived
        self.in_progress = b""  # what arrived of the receipt not yet cut, on the latest connection
        # shown what arrived of the receipt in progress, until it returns True (the soak's kill -9 mid-print)
        self.on_receipt: Callable[[bytes], bool] | None = None
        self.lock = threading.Lock()
        self._receipts: list[bytes] = []
        self._listener: socket.socket | None = None
        self._resetting = threading.Event()
        self._closed = threading.Event()

    def up(self) -> LoopbackPrinter:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self.port = self._listener.getsockname()[1]
        self._listener.listen(8)
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()
        return self

    def down(self) -> None:
        """Power off: nothing listens any more and open connections end."""
        if self._listener:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone would not
            self._listener.close()
            self._listener = None
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def drop(self) -> None:
        """Power cycle mid-job: the open connection is reset (its reader wakes up and closes it abortively)."""
        self._resetting.set()
        self._closed.clear()
        self.connections[-1].shutdown(socket.SHUT_RD)
        assert self._closed.wait(5), "the printer connection did not close"
        self._resetting.clear()

    def receipts(self) -> int:
        """How many receipts were cut."""
        with self.lock:
            return len(self._receipts)

    def originals(self, reference: str) -> int:
        """Cut receipts of the sale not marked COPY."""
        with self.lock:
            return sum(1 for r in self._receipts if reference.encode() in r and COPY_MARK not in r)

    def copies(self, reference: str) -> int:
        """Cut receipts of the sale marked COPY."""
        with self.lock:
            return sum(1 for r in self._receipts if reference.encode() in r and COPY_MARK in r)

    def count(self, text: bytes) -> int:
        """Occurrences of ``text`` in everything received, status queries included."""
        with self.lock:
            return sum(bytes(buffer).count(text) for buffer in self.received)

    def wait_for(self, marker: bytes, connection: int = 0, timeout: float = 5.0) -> bytes:
        """The raw bytes of ``connection`` once ``marker`` is among them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) > connection and marker in self.received[connection]:
                    return bytes(self.received[connection])
            time.sleep(0.01)
        raise AssertionError(f"{marker!r} never arrived on connection {connection}")

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with self.lock:
                self.received.append(bytearray())
                self.connections.append(conn)
                buffer = self.received[-1]
                self.in_progress = b""
            threading.Thread(target=self._serve, args=(conn, buffer), daemon=True).start()

    def _serve(self, conn: socket.socket, buffer: bytearray) -> None:
        scanned = 0
        current = b""  # the receipt in progress on this connection
        while chunk := _recv(conn):
            with self.lock:
                buffer.extend(chunk)
            content, scanned = self._answer_queries(conn, buffer, scanned)
            current = self._collect(current, content)
        if self._resetting.is_set():  # an abortive close: the client gets RST, like a rebooted printer
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        self._closed.set()

    def _answer_queries(self, conn: socket.socket, buffer: bytearray, scanned: int) -> tuple[bytes, int]:
        """Answers the complete ``DLE EOT n`` queries after ``scanned``; returns the print bytes between them."""
        content = bytearray()
        while (at := buffer.find(DLE_EOT, scanned)) != -1 and at + 2 < len(buffer):
            content += buffer[scanned:at]
            reply = self.replies.get(buffer[at + 2])
            if reply is not None and self.answers_left != 0:
                if self.answers_left is not None:
                    self.answers_left -= 1
                with contextlib.suppress(OSError):
                    conn.sendall(bytes([reply]))
            scanned = at + 3
        held = at if at != -1 else len(buffer) - (1 if buffer.endswith(DLE_EOT[:1]) else 0)
        content += buffer[scanned:held]  # a query cut short by the chunk waits for its next bytes
        return bytes(content), held

    def _collect(self, current: bytes, content: bytes) -> bytes:
        if not content:
            return current
        with self.lock:
            if not current:
                self.first_bytes.append(time.time())
            current += content
            hook = self.on_receipt
        if hook and hook(current):
            self.on_receipt = None
        with self.lock:
            while CUT in current:
                receipt, current = current.split(CUT, 1)
                current = current[2:] if current[:1] in (b"A", b"B") else current[1:]
                self._receipts.append(receipt)
            self.in_progress = current
        return current


def _recv(conn: socket.socket) -> bytes:
    try:
        return conn.recv(65536)
    except OSError:
        return b""
