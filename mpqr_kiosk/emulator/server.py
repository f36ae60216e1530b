"""The emulator over real HTTP (``http.server``, a daemon thread per connection), loopback by default."""

from __future__ import annotations

import logging
import re
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from mpqr_kiosk.emulator import api, errors
from mpqr_kiosk.emulator.messages import Request, Response, json_response
from mpqr_kiosk.emulator.state import Emulator
from mpqr_kiosk.loopback import is_loopback_host

log = logging.getLogger(__name__)
SECRET_QUERY = re.compile(r"(access_token=)[^&\s\"]*")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    emulator: Emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished mid-request (killed, or timed out) is no emulator error."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            log.debug("client %s went away", client_address)
            return
        log.exception("emulator: error serving %s", client_address)


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mpqr-kiosk-emulator"
    timeout = 60  # idle keep-alive connections are closed after this
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # headers and body are separate writes: without this, Nagle + delayed ACK cost 40 ms a request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        split = urlsplit(self.path)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return
        request = Request(
            self.command,
            split.path,
            dict(parse_qsl(split.query, keep_blank_values=True)),
            {name.lower(): value for name, value in self.headers.items()},
            self.rfile.read(length) if length > 0 else b"",
        )
        try:
            response = api.handle(self.server.emulator, request)
        except Exception:  # an emulator bug: answer 500 rather than drop the connection
            log.exception("emulator error on %s %s", self.command, split.path)
            response = json_response(500, errors.legacy(500, "internal_error", "emulator error").body)
        if response.reset:
            self._reset()
        else:
            self._write(response)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET  # noqa: N815

    def _write(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            if response.status != 204:
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if response.status != 204:
                self.wfile.write(response.body)
        except OSError:  # the client gave up (e.g. its timeout fired during an injected delay)
            self.close_connection = True

    def _reset(self) -> None:
        """Abort the connection with a TCP RST: SO_LINGER 0, then close."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.rfile.close()
        self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.debug("%s %s", self.address_string(), SECRET_QUERY.sub(r"\1***", format % args))


class EmulatorServer:
    """Serve an ``Emulator`` on ``host:port`` (port 0 = any free port) in a background thread."""

    def __init__(
        self, emulator: Emulator, host: str = "127.0.0.1", port: int = 0, allow_remote: bool = False
    ) -> None:
        if not allow_remote and not is_loopback_host(host):
            raise ValueError(f"refusing to listen on non-loopback address {host!r}")
        self.emulator = emulator
        self.host = host
        self.port = port
        self.url = ""
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> EmulatorServer:
        """Bind and serve; ``url`` is then ``http://HOST:PORT``."""
        server_class = _HTTPServer6 if ":" in self.host else _HTTPServer
        self._httpd = server_class((self.host, self.port), _Handler)
        self._httpd.emulator = self.emulator
        self.port = self._httpd.server_address[1]
        self.url = (
            f"http://[{self.host}]:{self.port}" if ":" in self.host else f"http://{self.host}:{self.port}"
        )
        self.emulator.base_url = self.url
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="mp-emulator", daemon=True
        )
        self._thread.start()
        log.debug("emulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
