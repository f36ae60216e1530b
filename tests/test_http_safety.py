"""What the HTTP client and the backends refuse to believe or do: redirects to another origin, answers dripped
a byte at a time, huge bodies, days-long Retry-After, echoed tokens; a reused idempotency key; sites whose
money has no decimals; items without a code; a store without its location."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import TOKEN, mp_config

from mpqr_kiosk import provision
from mpqr_kiosk.assemble import backend_of
from mpqr_kiosk.config import ShopConfig
from mpqr_kiosk.core.model import Item, OrderPhase, Sale
from mpqr_kiosk.core.sites import site
from mpqr_kiosk.emulator.server import EmulatorServer
from mpqr_kiosk.emulator.state import Emulator
from mpqr_kiosk.mercadopago import http
from mpqr_kiosk.mercadopago.errors import ApiError, BadResponse, TransportError
from mpqr_kiosk.mercadopago.http import HttpClient
from mpqr_kiosk.mercadopago.orders import OrdersBackend
from mpqr_kiosk.mercadopago.seller import Seller
from mpqr_kiosk.receipt import build_receipt


class Recorder(BaseHTTPRequestHandler):
    """A loopback server whose answer each test sets; it notes every request it gets, with its headers."""

    answer = (200, {}, b"{}")
    seen: list[dict] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).seen.append({"path": self.path, "authorization": self.headers.get("Authorization")})
        status, headers, body = type(self).answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    handler = type("Handler", (Recorder,), {"seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_redirect_to_another_origin_is_not_followed_and_the_token_goes_nowhere(server):
    handler, url = server
    elsewhere = type("Elsewhere", (Recorder,), {"seen": []})
    other = ThreadingHTTPServer(("127.0.0.1", 0), elsewhere)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        handler.answer = (302, {"Location": f"http://127.0.0.1:{other.server_address[1]}/users/me"}, b"")
        with pytest.raises(BadResponse, match="redirect") as raised:
            HttpClient(url, TOKEN).request("GET", "/users/me")
        assert raised.value.indeterminate
        assert elsewhere.seen == []  # never followed: the token did not travel there
    finally:
        other.shutdown()
        other.server_close()


def test_an_answer_dripped_a_byte_at_a_time_is_cut_at_the_deadline():
    listener = socket.create_server(("127.0.0.1", 0))

    def drip() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100:
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                return
            time.sleep(0.2)  # each byte well within the read timeout

    threading.Thread(target=drip, daemon=True).start()
    client = HttpClient(f"http://127.0.0.1:{listener.getsockname()[1]}", TOKEN, timeout=(1.0, 1.0), deadline=1.5)
    started = time.monotonic()
    with pytest.raises(TransportError) as raised:
        client.request("GET", "/users/me")
    assert time.monotonic() - started < 3.0  # not the 30 s the drip would take
    assert raised.value.indeterminate and "within 2 s" in str(raised.value)
    listener.close()


def test_an_answer_bigger_than_any_this_api_sends_is_refused(server, monkeypatch):
    handler, url = server
    monkeypatch.setattr(http, "MAX_BODY", 1000)
    handler.answer = (200, {}, b"[" + b"1," * 2000 + b"1]")
    with pytest.raises(BadResponse, match="larger"):
        HttpClient(url, TOKEN).request("GET", "/users/me")


@pytest.mark.parametrize(("header", "seconds"), [("7", 7.0), ("999999999", 300.0), ("-5", 0.0), ("soon", 0.0),
                                                 ("nan", 0.0), ("inf", 300.0)])
def test_retry_after_is_read_and_capped(server, header, seconds):
    handler, url = server
    handler.answer = (429, {"Retry-After": header}, b'{"message": "slow down", "error": "too_many", "status": 429}')
    with pytest.raises(ApiError) as raised:
        HttpClient(url, TOKEN).request("GET", "/users/me")
    assert raised.value.retry_after == pytest.approx(seconds)


def test_retry_after_as_an_http_date_is_seconds_from_now(server):
    handler, url = server
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    handler.answer = (429, {"Retry-After": when}, b"{}")
    with pytest.raises(ApiError) as raised:
        HttpClient(url, TOKEN).request("GET", "/users/me")
    assert 55 <= raised.value.retry_after <= 61


def test_an_error_that_echoes_the_token_is_masked_in_the_exception(server):
    handler, url = server
    body = json.dumps({"message": f"bad token {TOKEN}", "error": f"invalid_{TOKEN}", "status": 401}).encode()
    handler.answer = (401, {}, body)
    with pytest.raises(ApiError) as raised:
        HttpClient(url, TOKEN).request("GET", "/users/me")
    assert TOKEN not in str(raised.value) and TOKEN not in raised.value.code and "***" in str(raised.value)


def test_deeply_nested_json_is_a_bad_response_not_a_crash(server):
    handler, url = server
    handler.answer = (200, {}, b"[" * 100000 + b"]" * 100000)
    with pytest.raises(BadResponse):
        HttpClient(url, TOKEN).request("GET", "/users/me")


# ---------------------------------------------------------------- the backends


class Canned:
    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, str]] = []

    def request(self, method, path, *, params=None, json=None, headers=None):
        self.sent.append((method, path))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def server_time(self) -> float:
        return 1_756_000_000.0


def an_order(reference: str, status: str = "created") -> dict:
    return {"id": "ORDTST01AAAABBBBCCCCDDDDEEEE", "external_reference": reference, "status": status,
            "transactions": {"payments": [{"id": "PAY01X", "status": "created", "amount": "12.50"}]}}


def test_a_reused_idempotency_key_is_resolved_by_reading_never_by_creating_again():
    sale = Sale("K1", "K1-key", "MLA", (Item("Importe", 1250),), 1250, 1_755_999_000.0, ttl=600,
                expires_at=1_756_000_500.0)
    used = ApiError("POST /v1/orders", 409, "idempotency_key_already_used", "used with a different request")
    client = Canned(used, {"data": [an_order("K1")], "paging": {"total": "1"}}, an_order("K1"))
    seen = OrdersBackend(client, Seller(1, "S", "POS001", site("MLA"), "", "Shop")).recover(sale, 600)
    assert seen.phase is OrderPhase.OPEN and seen.order_id == "ORDTST01AAAABBBBCCCCDDDDEEEE"
    assert client.sent == [("POST", "/v1/orders"), ("GET", "/v1/orders"),
                           ("GET", "/v1/orders/ORDTST01AAAABBBBCCCCDDDDEEEE")]


def test_an_orders_sale_older_than_its_time_to_live_is_looked_for_never_created_again():
    old = Sale("K2", "K2-key", "MLA", (Item("Importe", 1250),), 1250, 1_755_990_000.0, ttl=600,
               expires_at=1_755_990_600.0)  # expired long ago on the server's clock
    client = Canned({"data": [], "paging": {"total": "0"}})
    seen = OrdersBackend(client, Seller(1, "S", "POS001", site("MLA"), "", "Shop")).recover(old, 600)
    assert seen.phase is OrderPhase.ABSENT and client.sent == [("GET", "/v1/orders")]


@pytest.mark.parametrize("api", ["instore", "orders"])
def test_no_item_goes_out_with_an_empty_code(emulator, api):
    backend = backend_of(mp_config(emulator, api=api), TOKEN, "Shop")
    sale = Sale("K3", "K3-key", "MLB", (Item("Importe", 1250),), 1250, time.time(), ttl=600)
    items = backend.order_body(sale, 600)["items"]
    codes = [item["sku_number"] if api == "instore" else item["external_code"] for item in items]
    assert codes == ["KEYED"]


def test_colombian_pesos_are_whole_at_the_keypad_the_catalog_the_api_and_the_receipt(tmp_path):
    from mpqr_kiosk.catalog import load_catalog

    cop = site("MCO")
    assert cop.parse("12.500") == 12500 and cop.format(12500) == "$ 12.500"
    with pytest.raises(ValueError):
        cop.parse("12,50")  # no centavos
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("code,title,unit price,sku\n1,Tinto,2.500,T\n", encoding="utf-8")
    assert load_catalog(catalog, cop)["1"].unit_price == 2500
    emu = Emulator(site="MCO")
    with EmulatorServer(emu) as server:
        emu.url = server.url
        backend = backend_of(mp_config(emu, api="instore", site="MCO"), TOKEN, "Tienda")
        sale = Sale("K4", "K4-key", "MCO", (Item("Tinto", 2500, 2),), 5000, time.time(), ttl=600)
        body = backend.order_body(sale, 600)
        assert body["total_amount"] == 5000 and isinstance(body["total_amount"], int)
        backend.push(sale, 600)
        emu.pay("POS001", "approved")
        assert backend.read(sale).approved == 5000
    paid = Sale("K4", "K4-key", "MCO", (Item("Tinto", 2500, 2),), 5000, time.time(), paid_amount=5000)
    from datetime import datetime

    from mpqr_kiosk.core.model import Shop

    lines = " ".join(str(line) for line in build_receipt(paid, Shop("Tienda"), cop, datetime.now(), False).lines)
    assert "$ 5.000" in lines and "5.000,00" not in lines


def test_provision_sends_the_shops_location_and_explains_mercado_pagos_refusals(emulator):
    client = HttpClient(emulator.url, TOKEN)
    shop = ShopConfig(name="Padaria Nova", street_name="Rua Augusta", street_number="100", city="São Paulo",
                      state="SP", latitude=-23.55, longitude=-46.65)
    store = provision.ensure_store(client, emulator.user_id, "STORE002", shop)
    assert store["location"]["address_line"] == "Rua Augusta 100, São Paulo, SP"
    with pytest.raises(provision.ProvisionError, match="fill in \\[shop\\] street_name, street_number, city"):
        provision.ensure_store(client, emulator.user_id, "STORE003", ShopConfig(name="Sem Endereço"))
    abroad = ShopConfig(name="Longe", street_name="Av. Reforma", street_number="1", city="México", state="CDMX",
                        latitude=19.43, longitude=-99.13)
    with pytest.raises(provision.ProvisionError, match="outside the account's country") as raised:
        provision.ensure_store(client, emulator.user_id, "STORE004", abroad)
    assert "(BAD_REQUEST)" in str(raised.value)
