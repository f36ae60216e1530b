"""A raw-9100 network receipt printer on loopback, for python-escpos's real ``Network`` class.

It keeps every byte across connections (so a test sees every receipt ever printed), answers the
``DLE EOT n`` status queries with ``status``, and can be switched off (nothing listens: connection
refused, like a printer without power) or made to stop answering queries (a stalled printer)."""

from __future__ import annotations

import socket
import threading

DLE_EOT = b"\x10\x04"


class FakePrinter:
    def __init__(self, port: int = 0):
        self.data = bytearray()
        self.status = 0x12  # online, paper present
        self.answers_left: int | None = None  # None: answer every status query; N: answer N more, then stall
        self.lock = threading.Lock()
        self.port = port
        self.listener: socket.socket | None = None
        self.thread: threading.Thread | None = None

    def up(self) -> FakePrinter:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.port = self.listener.getsockname()[1]
        self.listener.listen(4)
        self.thread = threading.Thread(target=self._accept, args=(self.listener,), daemon=True)
        self.thread.start()
        return self

    def down(self) -> None:
        if self.listener:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone would not
            self.listener.close()
            self.listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                with self.lock:
                    self.data += chunk
                queries = chunk.count(DLE_EOT)
                if self.answers_left is not None:
                    queries = min(queries, self.answers_left)
                    self.answers_left -= queries
                if queries:
                    try:
                        conn.sendall(bytes([self.status]) * queries)
                    except OSError:
                        return

    def receipts(self) -> int:
        """How many receipts were cut."""
        with self.lock:
            return bytes(self.data).count(b"\x1dV")

    def count(self, text: bytes) -> int:
        with self.lock:
            return bytes(self.data).count(text)
