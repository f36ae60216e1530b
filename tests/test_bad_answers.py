"""Answers from Mercado Pago that would break a process: amounts of thousands of digits, JSON nested 100000
deep, bodies of the wrong JSON type, fields of the wrong type, QR images that are HTML, cut short or
decompression bombs. Each ends in one bounded line naming the request and what was wrong, with the exit code
exits.py gives it; the daemon keeps serving, the sale's amount unchanged and not paid, until a good answer."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import TOKEN
from daemon_harness import Daemon
from PIL import Image

from mpqr_kiosk import check, cli, provision
from mpqr_kiosk.core.model import Sale
from mpqr_kiosk.core.sites import site
from mpqr_kiosk.emulator.printer import LoopbackPrinter
from mpqr_kiosk.journal import Journal
from mpqr_kiosk.mercadopago.errors import MAX_MESSAGE, BadResponse, ServerError
from mpqr_kiosk.mercadopago.http import HttpClient, decode
from mpqr_kiosk.mercadopago.instore import InstoreBackend
from mpqr_kiosk.mercadopago.seller import Seller

DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE = b"9" * 5000
Answer = tuple[int, str, bytes] | Callable[[bytes], bytes]


class Garbler:
    """A loopback proxy in front of the emulator that answers chosen requests itself ("GET /pos": a status,
    content type and body) or garbles the emulator's real answer (a function of its body)."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.answers: dict[str, Answer] = {}
        garbler = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                chosen = garbler.answers.get(f"{self.command} {self.path.split('?')[0]}")
                if chosen is None or callable(chosen):
                    status, kind, content = garbler.forward(self.command, self.path, dict(self.headers), body)
                    content = chosen(content) if chosen else content
                else:
                    status, kind, content = chosen
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = answer  # noqa: N815 - http.server's naming

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        kept = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type", "x-idempotency-key")}
        sent = urllib.request.Request(self.upstream + path, data=body or None, method=method, headers=kept)
        try:
            with urllib.request.urlopen(sent, timeout=10) as answer:
                return answer.status, answer.headers.get("Content-Type", ""), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Content-Type", ""), error.read()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def garbler(emulator):
    proxy = Garbler(emulator.url)
    yield proxy
    proxy.close()


def write_config(tmp_path: Path, emulator, api_base: str) -> str:
    token = tmp_path / "access_token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    (tmp_path / "catalog.csv").write_text("code,title,unit price,sku\n1,Café,3.00,C\n", encoding="utf-8")
    Journal(tmp_path / "state").close()  # reconcile reads the day's sales from it
    path = tmp_path / "kiosk.toml"
    path.write_text(f"""
[mercadopago]
site = "{emulator.site.id}"
user_id = {emulator.user_id}
access_token_file = "{token}"
api_base = "{api_base}"
qr_payload = "{emulator.payload('POS001')}"
[shop]
name = "Padaria Teste"
[input]
devices = []
catalog = "{tmp_path / 'catalog.csv'}"
[display]
driver = "none"
[printer]
connection = "dummy"
[state]
dir = "{tmp_path / 'state'}"
[control]
socket = "{tmp_path / 'control.sock'}"
""", encoding="utf-8")
    return str(path)


def body(value) -> tuple[int, str, bytes]:
    return 200, "application/json", value if isinstance(value, bytes) else json.dumps(value).encode()


def png_header(width: int, height: int) -> bytes:
    """The start of a PNG that says it is ``width`` x ``height`` (all a decoder reads before deciding)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def lines_of(text: str) -> dict[str, str]:
    """check's output, the line of each check by its name."""
    return {line.split()[1]: line for line in text.splitlines() if len(line.split()) > 1}


# -- the HTTP edge -------------------------------------------------------------------------------------------

EDGE = {
    "an amount of 5000 digits": (b'{"transaction_amount": ' + HUGE + b"}", "a number in the body has 5000 digits"),
    "an amount of 1e400": (b'{"transaction_amount": 1e400}', "a number in the body is out of range (1e400)"),
    "an amount of 1e-400": (b'{"transaction_amount": 1e-400}', "a number in the body is out of range (1e-400)"),
    "an id of 35 digits": (b'{"id": ' + b"9" * 35 + b"}", f"a number in the body is out of range ({'9' * 35})"),
    "NaN": (b'{"transaction_amount": NaN}', "the body has NaN, which is not a JSON number"),
    "100000 nested arrays": (DEEP, "the body nests deeper than 32 levels"),
    "100000 nested objects": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "the body nests deeper than 32 levels"),
}


@pytest.mark.parametrize("name", EDGE)
def test_the_http_client_refuses_json_out_of_bounds_with_one_short_line(garbler, name):
    content, problem = EDGE[name]
    garbler.answers["GET /users/me"] = body(content)
    with pytest.raises(BadResponse) as raised:
        HttpClient(garbler.url, TOKEN).request("GET", "/users/me")
    assert str(raised.value) == f"GET /users/me: 200 {problem}"
    assert raised.value.indeterminate


def test_brackets_inside_strings_do_not_count_as_nesting(garbler):
    garbler.answers["GET /users/me"] = body({"nickname": "[{" * 50_000, "id": 1})
    assert HttpClient(garbler.url, TOKEN).request("GET", "/users/me")["id"] == 1


@pytest.mark.timeout(60)  # a hang guard: the body below once took hours to scan (a backtracking string pattern)
def test_a_mebibyte_of_escaped_quotes_in_an_open_string_is_refused_not_scanned_for_hours():
    with pytest.raises(BadResponse) as raised:
        decode(b'"' + b'\\"' * 500_000, "GET /v1/orders/ORD1")
    assert str(raised.value) == "GET /v1/orders/ORD1: 200 the body is not JSON"


def test_what_mercado_pago_really_sends_comes_through_unchanged():
    """Ids of 11 and more digits, amounts as 1234.5, 1250 and "50.00", payments nested in an order, a page of
    a hundred payments with a Pix QR's base64 in each (mp_api.md, mp_orders_api.md)."""
    order = {"id": "ORD01JQ4S4KY8HWQ6NA5PXB65B3D3", "status": "processed", "total_amount": "50.00",
             "transactions": {"payments": [{"id": "PAY01JQ4S4KY8HWQ6NA5PXB65B3D4", "amount": "50.00",
                                            "reference": {"id": "106751012345"}, "status": "processed"}]}}
    page = {"paging": {"total": 100, "limit": 100, "offset": 0},
            "results": [{"id": 106751012345 + n, "transaction_amount": 1234.5 if n % 2 else 1250,
                         "external_reference": f"POS001-{n:016x}", "status": "approved",
                         "point_of_interaction": {"transaction_data": {"qr_code_base64": "iVBORw0K" * 1000}}}
                        for n in range(100)]}
    for answer in (order, page):
        assert decode(json.dumps(answer).encode(), "GET x") == answer


def test_an_error_answer_nested_100000_deep_is_still_the_statuss_error(garbler):
    garbler.answers["GET /users/me"] = (500, "application/json", DEEP)
    with pytest.raises(ServerError) as raised:
        HttpClient(garbler.url, TOKEN).request("GET", "/users/me")
    assert str(raised.value) == "GET /users/me: 500"


def test_a_status_of_100000_characters_is_quoted_in_40(garbler):
    mo = {"id": 1, "status": "x" * 100_000, "external_reference": "POS001-R1", "payments": []}
    garbler.answers["GET /merchant_orders/search"] = body({"elements": [mo], "total": 1})
    backend = InstoreBackend(HttpClient(garbler.url, TOKEN), Seller(123456789, "STORE001", "POS001", site("MLB"), "",
                                                                     "Padaria"))
    with pytest.raises(BadResponse) as raised:
        backend.read(Sale("POS001-R1", "key", "MLB", (), 1250, 0.0))
    assert raised.value.message == f"unknown merchant order status '{'x' * 36}..."
    assert len(str(raised.value)) < MAX_MESSAGE


@pytest.mark.parametrize("status", [["closed"], {"closed": True}], ids=["a list", "an object"])
def test_a_status_of_the_wrong_type_is_a_bad_answer_not_a_type_error(garbler, status):
    mo = {"id": 1, "status": status, "external_reference": "POS001-R1", "payments": []}
    garbler.answers["GET /merchant_orders/search"] = body({"elements": [mo], "total": 1})
    backend = InstoreBackend(HttpClient(garbler.url, TOKEN), Seller(123456789, "STORE001", "POS001", site("MLB"), "",
                                                                     "Padaria"))
    kind = "array" if isinstance(status, list) else "object"
    with pytest.raises(BadResponse, match=f"unknown merchant order status a JSON {kind}$"):
        backend.read(Sale("POS001-R1", "key", "MLB", (), 1250, 0.0))


# -- the daemon ----------------------------------------------------------------------------------------------

# (fault, what the daemon's log line for it says), fired in this order on the sale's reads
FAULTS = [
    ("huge_amount", "a number in the body has 5000 digits"),
    ("deep_json", "the body nests deeper than 32 levels"),
    ("wrong_type", "is not a JSON object"),
    ("malformed", "the body is not JSON"),
    ("http500", "500 internal_server_error Internal server error (injected)"),
    ("echo_token", "invalid credentials for ***"),
    ("timeout", "timed out"),
]


@pytest.mark.slow
@pytest.mark.parametrize("api", ["instore", "orders"])
def test_the_daemon_refuses_bad_answers_keeps_serving_and_finishes_the_sale_once_they_stop(tmp_path, emulator, api):
    printer = LoopbackPrinter().up()
    d = Daemon(tmp_path, emulator, printer, api=api)
    # seven bad answers in a row back the reads off to 13 s: the order must outlive them
    d.config.write_text(d.config.read_text().replace('order_ttl = "60s"', 'order_ttl = "300s"'))
    try:
        d.start()
        reference = d.sale("12.50")
        assert d.until(lambda: d.state_of(reference) == "waiting")
        for kind, _ in FAULTS:  # first armed, first fired: each answers one read (a timeout: past the client's 10 s)
            emulator.inject("read", kind, after=kind != "timeout", delay=11)
        emulator.pay("POS001", "approved")  # the money is there: only the answers about it are bad
        while emulator.snapshot()["faults"]:
            status = d.control("status")  # the daemon still answers, and shows the sale waiting, not paid
            assert d.process.poll() is None and status["sale"]["reference"] == reference
            sale = d.journaled(reference)
            assert sale.state.value == "waiting" and sale.total == 1250 and sale.paid_amount == 0
            d.until(lambda: False, 0.3)
        assert d.until(lambda: d.receipt_of(reference) == "printed", 40), d.log.read_text()[-3000:]
        sale = d.journaled(reference)
        assert sale.state.value == "paid" and sale.paid_amount == sale.total == 1250
        assert d.until(lambda: printer.receipts() == 1, 5)
    finally:
        d.close()
        printer.down()
    log = d.log.read_text()
    assert "Traceback" not in log and TOKEN not in log
    assert max(len(line) for line in log.splitlines()) < 600  # no line carries a body
    for kind, said in FAULTS:
        assert any(reference in line and said in line for line in log.splitlines()), (kind, log[-3000:])


# -- check and provision -------------------------------------------------------------------------------------

USERS_ME = {
    "a list": ([{"id": 123456789}], "the account is not a JSON object"),
    "a string": ("123456789", "the account is not a JSON object"),
    "a number": (123456789, "the account is not a JSON object"),
    "null": (None, "the account is not a JSON object"),
    "no id": ({"nickname": "PADARIA"}, "the account has no numeric id"),
    "an id that is text": ({"id": "123456789"}, "the account has no numeric id"),
    "a site_id that is a list": ({"id": 123456789, "site_id": ["MLB"]}, "site_id is not text"),
    "100000 nested arrays": (DEEP, "the body nests deeper than 32 levels"),
    "an id of 5000 digits": (b'{"id": ' + HUGE + b"}", "a number in the body has 5000 digits"),
}


@pytest.mark.parametrize("name", USERS_ME)
def test_check_fails_the_token_line_on_a_users_me_answer_of_the_wrong_shape(tmp_path, emulator, garbler, capsys,
                                                                             name):
    value, problem = USERS_ME[name]
    garbler.answers["GET /users/me"] = body(value)
    assert check.run(write_config(tmp_path, emulator, garbler.url)) == 4
    out = capsys.readouterr().out
    assert lines_of(out)["token"] == f"FAIL token      Mercado Pago's answer to GET /users/me was not usable: {problem}"


POS = {"external_id": "POS001", "id": 1, "fixed_amount": True, "external_store_id": "STORE001"}
POS_SEARCH = {
    "a list": ([POS], "the POS search answer is not a JSON object"),
    "null": (None, "the POS search answer is not a JSON object"),
    "results that are text": ({"results": "POS001"}, "results is not a list"),
    "a POS that is text": ({"results": ["POS001"]}, "a POS is not a JSON object"),
    "another POS only": ({"results": [{**POS, "external_id": "POS002"}]}, "it lists other POS only, not POS001"),
    "an id that is a list": ({"results": [{**POS, "id": [1]}]}, "the POS id is not a usable id"),
    "fixed_amount that is text": ({"results": [{**POS, "fixed_amount": "yes"}]}, "fixed_amount is not true or false"),
    "100000 nested arrays": (DEEP, "the body nests deeper than 32 levels"),
}


@pytest.mark.parametrize("name", POS_SEARCH)
def test_check_fails_the_pos_line_and_provision_exits_75_on_a_pos_search_of_the_wrong_shape(
        tmp_path, emulator, garbler, capsys, name):
    value, problem = POS_SEARCH[name]
    garbler.answers["GET /pos"] = body(value)
    path = write_config(tmp_path, emulator, garbler.url)
    said = f"Mercado Pago's answer to GET /pos was not usable: {problem}"
    assert check.run(path) == 4
    assert lines_of(capsys.readouterr().out)["pos"] == f"FAIL pos        {said}"
    assert provision.run(path) == 75
    assert capsys.readouterr().err == f"mpqr-kiosk provision: {said}; try again later\n"
    assert sum(p["external_id"] == "POS001" for p in emulator.snapshot()["pos"]) == 1  # no second POS made


@pytest.mark.parametrize("answer, problem", [
    ({"results": [1]}, "a store is not a JSON object"),
    ({"results": [{"external_id": "STORE001", "id": None}]}, "the store id is not a usable id"),
    ([], "the store search answer is not a JSON object"),
], ids=["a store that is a number", "a store without an id", "a list"])
def test_provision_exits_75_on_a_store_search_of_the_wrong_shape(tmp_path, emulator, garbler, capsys, answer,
                                                                 problem):
    garbler.answers[f"GET /users/{emulator.user_id}/stores/search"] = body(answer)
    assert provision.run(write_config(tmp_path, emulator, garbler.url)) == 75
    assert capsys.readouterr().err == (f"mpqr-kiosk provision: Mercado Pago's answer to GET /users/{emulator.user_id}"
                                       f"/stores/search was not usable: {problem}; try again later\n")


def qr_png(emulator) -> bytes:
    pos = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"{emulator.url}/pos?external_id=POS001", headers={"Authorization": f"Bearer {TOKEN}"})).read())
    return urllib.request.urlopen(pos["results"][0]["qr"]["image"]).read()


def big_png() -> bytes:
    """A real PNG of 5000 x 5000 pixels (a few kilobytes: it is all white)."""
    out = io.BytesIO()
    Image.new("1", (5000, 5000), 1).save(out, "PNG")
    return out.getvalue()


IMAGES = {
    "HTML": (lambda emu: b"<html><body>Service unavailable</body></html>",
             "the QR image is not a whole PNG, JPEG or GIF image (UnidentifiedImageError)"),
    "a truncated PNG": (lambda emu: qr_png(emu)[:300], "the QR image is not a whole PNG, JPEG or GIF image (OSError)"),
    "a 20000x20000 bomb": (lambda emu: png_header(20000, 20000),
                           "the QR image is a decompression bomb (DecompressionBombError)"),
    "5000x5000 pixels": (lambda emu: big_png(), "the image is 5000x5000 pixels, far more than a QR needs"),
    "3 MB": (lambda emu: b"\x89PNG" + b"\0" * 3_000_000, "the answer is larger than 2097152 bytes"),
}


@pytest.mark.parametrize("name", IMAGES)
def test_a_qr_image_that_is_not_one_warns_in_check_and_exits_75_in_provision(tmp_path, emulator, garbler, capsys,
                                                                             name):
    make, problem = IMAGES[name]
    garbler.answers["GET /pos"] = body({"results": [{**POS, "qr": {"image": f"{garbler.url}/qr.png"}}]})
    garbler.answers["GET /qr.png"] = (200, "image/png", make(emulator))
    path = write_config(tmp_path, emulator, garbler.url)
    said = f"Mercado Pago's answer to GET qr.image was not usable: {problem}"
    assert check.run(path) == 0
    warned = lines_of(capsys.readouterr().out)["qr"]
    assert warned == f"warn qr         could not read the POS QR image to compare: {said}"
    assert provision.run(path) == 75
    assert capsys.readouterr().err == f"mpqr-kiosk provision: {said}; try again later\n"


@pytest.mark.parametrize("qr, problem", [
    ("https://www.mercadopago.com/qr.png", "qr is not a JSON object"),
    ({"image": ["https://www.mercadopago.com/qr.png"]}, "POS POS001 has no qr.image URL"),
    ({"image": "file:///etc/passwd"}, "POS POS001 has no qr.image URL"),
], ids=["qr that is a string", "qr.image that is a list", "qr.image that is not http"])
def test_a_qr_field_of_the_wrong_shape_exits_75_in_provision(tmp_path, emulator, garbler, capsys, qr, problem):
    garbler.answers["GET /pos"] = body({"results": [{**POS, "qr": qr}]})
    assert provision.run(write_config(tmp_path, emulator, garbler.url)) == 75
    assert capsys.readouterr().err == (f"mpqr-kiosk provision: Mercado Pago's answer to GET /pos was not usable: "
                                       f"{problem}; try again later\n")


@pytest.mark.parametrize("command, code, said", [
    ("check", 4, "FAIL token      Mercado Pago's answer to GET /users/me was not usable: the body nests deeper"),
    ("provision", 75, "mpqr-kiosk provision: Mercado Pago's answer to GET /users/123456789/stores/search was not"),
    ("certify", 75, "mpqr-kiosk certify: Mercado Pago's answer to GET /users/me was not usable: the body nests"),
    ("reconcile", 75, "mpqr-kiosk reconcile: cannot read Mercado Pago's payments: Mercado Pago's answer to GET "
                      "/v1/payments/search was not usable: the body nests"),
])
def test_the_commands_end_100000_deep_json_in_one_line_and_their_exit_code_without_a_traceback(
        tmp_path, emulator, garbler, command, code, said):
    for path in ("/users/me", f"/users/{emulator.user_id}/stores/search", "/v1/payments/search"):
        garbler.answers[f"GET {path}"] = body(DEEP)
    config = write_config(tmp_path, emulator, garbler.url)
    done = subprocess.run([sys.executable, "-m", "mpqr_kiosk", "--config", config, command], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"})
    assert done.returncode == code, done.stderr
    assert said in done.stdout + done.stderr
    assert "Traceback" not in done.stderr and TOKEN not in done.stdout + done.stderr


# -- reconcile reads the payments search -------------------------------------------------------------------

PAYMENT = {"id": 25547902442, "status": "approved", "transaction_amount": 12.5, "external_reference": "POS001-a",
           "date_created": "2026-12-01T10:00:00.000-03:00", "date_approved": "2026-12-01T10:00:01.000-03:00"}
SEARCHES = {
    "results that are an object": ({"results": {"0": PAYMENT}}, "results is not a list"),
    "a payment that is a list": ({"results": [[PAYMENT]]}, "a payment is not a JSON object"),
    "an amount of 1e400": (json.dumps({"results": [PAYMENT]}).replace("12.5", "1e400").encode(),
                           "a number in the body is out of range (1e400)"),
    "an amount that is a list": ({"results": [{**PAYMENT, "transaction_amount": [12.5]}]},
                                 "transaction_amount is not an amount"),
    "a date that is not one": ({"results": [{**PAYMENT, "date_approved": "yesterday"}]},
                               "a payment's date 'yesterday' is not a date"),
    "a date that is a number": ({"results": [{**PAYMENT, "date_approved": 1764594001}]},
                                "a payment's date 1764594001 is not a date"),
    "paging that is a list": ({"results": [PAYMENT], "paging": [1]}, "paging is not a JSON object"),
    "a total that is text": ({"results": [PAYMENT], "paging": {"total": "1"}}, "paging.total is not a count"),
    "a reference that is a number": ({"results": [{**PAYMENT, "external_reference": 7}]},
                                     "a payment's external_reference is not text"),
}


@pytest.mark.parametrize("name", SEARCHES)
def test_reconcile_exits_75_naming_what_was_wrong_in_the_payments_search(tmp_path, emulator, garbler, capsys, name):
    answer, problem = SEARCHES[name]
    garbler.answers["GET /v1/payments/search"] = body(answer)
    assert cli.main(["--config", write_config(tmp_path, emulator, garbler.url), "reconcile"]) == 75
    assert capsys.readouterr().err == ("mpqr-kiosk reconcile: cannot read Mercado Pago's payments: Mercado Pago's "
                                       f"answer to GET /v1/payments/search was not usable: {problem}; try again\n")
