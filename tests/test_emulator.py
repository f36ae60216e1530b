"""The Mercado Pago emulator over real HTTP: accounts, stores, POS, in-store orders, merchant orders,
buyer actions, faults, notifications, the request log and the CLI."""

import argparse
import email.utils
import io
import json
import logging
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import zxingcpp
from conftest import SettableClock
from PIL import Image

from mpqr_kiosk import cli as kiosk_cli
from mpqr_kiosk import emvco
from mpqr_kiosk.emulator import Emulator, EmulatorServer, cli

USER = 123456789
TOKEN = f"TEST-5555-082812-0a1b2c-{USER}"
ORDERS = f"/instore/qr/seller/collectors/{USER}/pos/POS001/orders"
STORE_ORDERS = f"/instore/qr/seller/collectors/{USER}/stores/STORE001/pos/POS001/orders"


class Api:
    """Talks to an emulator: ``api.get(path)`` with the token, ``api.emu(...)`` for /_emu control."""

    def __init__(self, url: str, token: str | None = TOKEN) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.trust_env = False
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 5)
        return self.session.request(method, self.url + path, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, **kwargs) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def emu(self, method: str, action: str, body: dict | None = None) -> requests.Response:
        return requests.request(method, f"{self.url}/_emu/{action}", json=body, timeout=5)


def order(ref: str = "K1-0001", total: float = 100.0, **extra) -> dict:
    body = {
        "external_reference": ref,
        "title": "Venta",
        "description": "Venta en kiosco",
        "total_amount": total,
        "items": [
            {
                "title": "Pasta",
                "unit_price": total / 4,
                "quantity": 4,
                "unit_measure": "unit",
                "total_amount": total,
            }
        ],
    }
    body.update(extra)
    return body


def iso_in(clock: SettableClock, seconds: float) -> str:
    return datetime.fromtimestamp(clock.now + seconds, timezone(timedelta(hours=-3))).isoformat(
        timespec="milliseconds"
    )


@pytest.fixture
def clock():
    return SettableClock()


@pytest.fixture
def emulator(request, clock):
    """The emulator, in the merchant-order mode a test asks for (``indirect`` parametrisation)."""
    return Emulator(site="MLA", user_id=USER, clock=clock, merchant_order=getattr(request, "param", "at_create"))


@pytest.fixture
def api(emulator):
    with EmulatorServer(emulator) as server:
        yield Api(server.url)


# -- transport, auth, accounts -------------------------------------------------------------------------


def test_server_binds_loopback_and_sends_a_date_header(api):
    assert api.url.startswith("http://127.0.0.1:")
    answer = api.get("/users/me")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    sent = email.utils.parsedate_to_datetime(answer.headers["Date"]).timestamp()
    assert abs(sent - time.time()) < 5


def test_server_refuses_a_non_loopback_address(emulator):
    with pytest.raises(ValueError, match="loopback"):
        EmulatorServer(emulator, host="0.0.0.0")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}])
def test_missing_token_is_401(api, headers):
    answer = requests.get(api.url + "/users/me", headers=headers, timeout=5)
    assert answer.status_code == 401
    assert answer.json() == {"message": "invalid_token", "error": "unauthorized", "status": 401, "cause": []}


def test_token_maps_to_its_user(api):
    me = api.get("/users/me").json()
    assert (me["id"], me["site_id"], me["country_id"]) == (USER, "MLA", "AR")
    assert me["nickname"]
    other = Api(api.url, "APP_USR-1234-010203-abc-42").get("/users/me").json()
    assert other["id"] == 42
    plain = Api(api.url, "no-digits-here").get("/users/me").json()
    assert plain["id"] == USER
    legacy = requests.get(f"{api.url}/users/me", params={"access_token": "TEST-x-77"}, timeout=5)
    assert legacy.json()["id"] == 77


def test_token_table_rejects_unknown_tokens():
    with EmulatorServer(Emulator(tokens={"secret-a": 1, "secret-b": 2})) as server:
        assert Api(server.url, "secret-b").get("/users/me").json()["id"] == 2
        assert Api(server.url, "TEST-1-123456789").get("/users/me").status_code == 401


def test_unknown_route_and_wrong_method(api):
    missing = api.get("/nothing/here")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong = api.request("PATCH", ORDERS)
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"
    assert api.post("/users/me").status_code == 405


# -- stores and POS ----------------------------------------------------------------------------------


WHERE = {"street_name": "Caseros", "street_number": "3039", "city_name": "Belgrano", "state_name": "Capital Federal",
         "latitude": -34.56, "longitude": -58.46}  # devsite-docs stores.json's example, placed in Buenos Aires


def test_store_create_and_search(api):
    created = api.post(f"/users/{USER}/stores", json={"name": "Sucursal 2", "external_id": "SUC002", "location": WHERE})
    assert created.status_code == 201
    assert created.json()["external_id"] == "SUC002" and isinstance(created.json()["id"], int)
    found = api.get(f"/users/{USER}/stores/search", params={"external_id": "SUC002"}).json()
    assert found["paging"]["total"] == 1 and found["results"][0]["name"] == "Sucursal 2"
    seeded = api.get(f"/users/{USER}/stores/search", params={"external_id": "STORE001"}).json()
    assert seeded["paging"]["total"] == 1
    nothing = api.get(f"/users/{USER}/stores/search", params={"external_id": "NOPE"}).json()
    assert nothing == {"paging": {"total": 0, "offset": 0, "limit": 50}, "results": []}


@pytest.mark.parametrize(
    "path, body, status, error",
    [
        (f"/users/{USER}/stores", {"external_id": "S1", "location": WHERE}, 400, "INVALID_NAME"),
        (f"/users/{USER}/stores", {"name": "x", "external_id": "S-1", "location": WHERE}, 400, "INVALID_EXTERNAL_ID"),
        (f"/users/{USER}/stores", {"name": "x", "external_id": "STORE001", "location": WHERE}, 409, "conflict"),
        (f"/users/{USER}/stores", {"name": "x", "external_id": "S1"}, 400, "INVALID_LOCATION"),
        (f"/users/{USER}/stores", {"name": "x", "location": {**WHERE, "city_name": 7}}, 400, "INVALID_CITY_NAME"),
        (f"/users/{USER}/stores", {"name": "x", "location": {**WHERE, "state_name": ""}}, 400, "INVALID_STATE_NAME"),
        (f"/users/{USER}/stores", {"name": "x", "location": {k: v for k, v in WHERE.items() if k != "street_name"}},
         400, "INVALID_STREET_NAME"),
        (f"/users/{USER}/stores", {"name": "x", "location": {**WHERE, "latitude": None}}, 400, "VALIDATION_ERROR"),
        (f"/users/{USER}/stores", {"name": "x", "location": {**WHERE, "latitude": 19.43, "longitude": -99.13}},
         400, "BAD_REQUEST"),  # Mexico City is outside MLA
        (f"/users/{USER}/stores", {"name": "x", "location": WHERE, "colour": "red"}, 400, "UNKNOWN_FIELD"),
        ("/users/abc/stores", {"name": "x"}, 400, "INVALID_USER_ID"),
        ("/users/999/stores", {"name": "x"}, 400, "invalid_access_token"),
    ],
)
def test_store_errors(api, path, body, status, error):
    answer = api.post(path, json=body)
    assert answer.status_code == status
    assert answer.json()["error"] == error and answer.json()["status"] == status


def test_pos_create_search_and_get(api):
    body = {"name": "Caja 2", "fixed_amount": True, "external_store_id": "STORE001", "external_id": "POS002"}
    created = api.post("/pos", json=body)
    assert created.status_code == 200
    pos = created.json()
    assert pos["external_id"] == "POS002" and pos["fixed_amount"] is True and pos["status"] == "active"
    assert pos["qr"]["image"] == f"{api.url}/instore/merchant/qr/{pos['id']}/{pos['uuid']}.png"
    found = api.get("/pos", params={"external_id": "POS002", "external_store_id": "STORE001"}).json()
    assert found["paging"]["total"] == 1 and found["results"][0]["id"] == pos["id"]
    assert found["results"][0]["qr"]["image"] == pos["qr"]["image"]
    assert api.get(f"/pos/{pos['id']}").json()["external_id"] == "POS002"
    assert api.get("/pos", params={"external_id": "NOPE"}).json()["results"] == []


@pytest.mark.parametrize(
    "change, status, error",
    [
        ({"external_id": "POS-2"}, 400, "INVALID_EXTERNAL_ID"),
        ({"external_id": "POS 2"}, 400, "INVALID_EXTERNAL_ID"),
        ({"external_id": "P" * 40}, 400, "EXTERNAL_ID_TOO_LONG"),
        ({"fixed_amount": "true"}, 400, "INVALID_FIXED_AMOUNT"),
        ({"external_store_id": "NOSTORE"}, 400, "INEXISTENT_EXTERNAL_STORE_ID"),
        ({"name": "N" * 45}, 400, "NAME_TOO_LONG"),
        ({"colour": "red"}, 400, "UNKNOWN_FIELD_EXCEPTION"),
        ({"external_id": "POS001"}, 409, "conflict"),
    ],
)
def test_pos_errors(api, change, status, error):
    body = {"name": "Caja", "fixed_amount": True, "external_store_id": "STORE001", "external_id": "POS009"}
    answer = api.post("/pos", json={**body, **change})
    assert answer.status_code == status
    assert answer.json()["error"] == error


def test_pos_payload_takes_the_store_name_and_city(api, emulator):
    location = {**WHERE, "street_name": "Rua Augusta", "street_number": "10", "city_name": "São Paulo",
                "state_name": "SP"}
    assert api.post(
        f"/users/{USER}/stores", json={"name": "Padaria São João", "external_id": "S2", "location": location}
    ).status_code == 201
    assert api.post(
        f"/users/{USER}/stores", json={"name": "東京", "external_id": "S3", "location": {**WHERE, "city_name": "東京"}}
    ).status_code == 201
    for store, pos in (("S2", "P2"), ("S3", "P3")):
        body = {"name": "Caixa", "fixed_amount": True, "external_store_id": store, "external_id": pos}
        assert api.post("/pos", json=body).status_code == 200
    fields = emvco.parse(emulator.payload("P2"))
    assert (fields["59"], fields["60"]) == ("Padaria Sao Joao", "Sao Paulo")
    fields = emvco.parse(emulator.payload("P3"))  # nothing printable: a fallback, not an error
    assert (fields["59"], fields["60"]) == ("Mercado Pago", "BUENOS AIRES")
    found = api.get(f"/users/{USER}/stores/search", params={"external_id": "S2"}).json()
    assert found["results"][0]["location"]["address_line"] == "Rua Augusta 10, São Paulo, SP"


def test_pos_by_id_errors(api):
    assert api.get("/pos/abc").json()["error"] == "INVALID_POS_ID"
    assert api.get("/pos/abc").status_code == 400
    assert api.get("/pos/1").status_code == 404


def test_pos_qr_png_decodes_to_a_verified_payload(api, emulator):
    pos = api.get("/pos", params={"external_id": "POS001"}).json()["results"][0]
    image = requests.get(pos["qr"]["image"], timeout=5)  # the image link needs no token
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(image.content)))
    assert len(decoded) == 1
    payload = decoded[0].text
    emvco.verify(payload)
    assert payload == emulator.payload("POS001")
    fields = emvco.parse(payload)
    assert fields["01"] == "11"
    assert emvco.parse(fields["43"])["01"] == f"https://mpago.la/pos/{pos['id']}"
    assert requests.get(pos["qr"]["image"].replace(pos["uuid"], "0" * 64), timeout=5).status_code == 404


# -- in-store orders ---------------------------------------------------------------------------------


def test_put_get_delete_order(api):
    put = api.put(ORDERS, json=order(notification_url="https://example.com/ipn"))
    assert put.status_code == 204 and put.content == b""
    got = api.get(ORDERS)
    assert got.status_code == 200
    [current] = got.json()
    assert current["external_reference"] == "K1-0001" and current["total_amount"] == 100.0
    assert current["user_id"] == USER and current["external_pos_id"] == "POS001"
    assert (
        current["items"][0]["title"] == "Pasta" and current["notification_url"] == "https://example.com/ipn"
    )
    assert api.delete(ORDERS).status_code == 204
    gone = api.get(ORDERS)
    assert gone.status_code == 404
    assert gone.json() == {
        "message": "No associated order found.",
        "error": "point_of_sale_in_store_order_not_found",
        "status": 404,
        "cause": [],
    }
    assert api.delete(ORDERS).status_code == 404


def test_store_path_variant(api):
    assert api.put(STORE_ORDERS, json=order()).status_code == 204
    assert api.get(ORDERS).json()[0]["external_reference"] == "K1-0001"
    wrong_store = STORE_ORDERS.replace("STORE001", "STORE999")
    assert api.put(wrong_store, json=order()).status_code == 404
    assert api.delete(STORE_ORDERS).status_code == 204


@pytest.mark.parametrize(
    "body, error",
    [
        ({"external_reference": None}, "invalid_external_reference"),
        ({"external_reference": "has space"}, "invalid_external_reference"),
        ({"external_reference": "bad@ref"}, "invalid_external_reference"),
        ({"external_reference": "x" * 65}, "invalid_external_reference"),
        ({"total_amount": "100.00"}, "invalid_total_amount"),
        ({"total_amount": None}, "invalid_total_amount"),
        ({"total_amount": 10.001}, "invalid_total_amount"),
        ({"title": 5}, "invalid_title"),
        ({"description": None}, "invalid_description"),
        ({"items": {"title": "x"}}, "invalid_items"),
        ({"items": []}, "error_creating_seller_qr_order"),
        ({"items": [{"title": "x", "unit_price": 1, "quantity": 1}]}, "invalid_unit_measure"),
        ({"items": [{"title": "x", "unit_price": 1, "unit_measure": "unit"}]}, "invalid_quantity"),
        ({"items": [{"title": "x", "quantity": 1, "unit_measure": "unit"}]}, "invalid_unit_price"),
        (
            {"items": [{"title": 3, "unit_price": 1, "quantity": 1, "unit_measure": "unit"}]},
            "invalid_items.title",
        ),
        ({"expiration_date": "2020-01-01T00:00:00.000-04:00"}, "invalid_expiration_date"),
        ({"expiration_date": "2999-01-01T00:00:00"}, "invalid_expiration_date"),
        ({"expiration_date": "tomorrow"}, "invalid_expiration_date"),
        ({"notification_url": "ftp://x"}, "invalid_notification_url"),
        ({"sponsor": {"id": "abc"}}, "invalid_sponsor.id"),
    ],
)
def test_put_order_validation(api, body, error):
    answer = api.put(ORDERS, json=order(**body))
    assert answer.status_code == 400
    assert answer.json()["error"] == error and answer.json()["cause"] == []
    assert api.get(ORDERS).status_code == 404  # nothing was placed


@pytest.mark.parametrize(
    "path, status, error",
    [
        ("/instore/qr/seller/collectors/abc/pos/POS001/orders", 400, "invalid_collectorId"),
        ("/instore/qr/seller/collectors/999/pos/POS001/orders", 400, "invalid_access_token"),
        (f"/instore/qr/seller/collectors/{USER}/pos/POS-1/orders", 400, "invalid_externalPosId"),
        (f"/instore/qr/seller/collectors/{USER}/pos/POS404/orders", 404, "point_of_sale_not_found"),
    ],
)
def test_put_order_path_errors(api, path, status, error):
    answer = api.put(path, json=order())
    assert answer.status_code == status and answer.json()["error"] == error


def test_put_order_with_a_future_expiration_is_accepted(api, clock):
    assert api.put(ORDERS, json=order(expiration_date=iso_in(clock, 600))).status_code == 204


def test_put_order_with_an_infinite_amount_is_400(api):
    raw = json.dumps(order(total=float("inf"))).encode()  # Python writes Infinity; MP clients might too
    answer = api.put(ORDERS, data=raw, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_total_amount"


def test_put_order_with_invalid_json_is_400(api):
    answer = api.put(ORDERS, data=b"{not json", headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["error"] == "bad_request"


# -- merchant orders and the buyer -------------------------------------------------------------------


def test_scan_then_pay_closes_the_merchant_order_and_consumes_the_order(api):
    api.put(ORDERS, json=order(total=250.0))
    scanned = api.emu("POST", "scan", {"external_pos_id": "POS001"}).json()
    mo = scanned["merchant_order"]
    assert (mo["status"], mo["order_status"], mo["paid_amount"], mo["payments"]) == (
        "opened",
        "payment_required",
        0,
        [],
    )
    assert mo["external_reference"] == "K1-0001" and mo["total_amount"] == 250.0
    assert mo["collector"]["id"] == USER and mo["site_id"] == "MLA"
    search = api.get("/merchant_orders/search", params={"external_reference": "K1-0001"}).json()
    assert search == {"elements": [mo], "next_offset": 1, "total": 1}

    paid = api.emu("POST", "pay", {"external_pos_id": "POS001", "result": "approved"}).json()
    payment = paid["payment"]
    assert isinstance(payment["id"], int)
    assert (payment["status"], payment["status_detail"]) == ("approved", "accredited")
    assert payment["transaction_amount"] == 250.0 and payment["total_paid_amount"] == 250.0
    assert payment["currency_id"] == "ARS" and payment["date_approved"]
    closed = api.get(f"/merchant_orders/{mo['id']}").json()
    assert (closed["status"], closed["order_status"], closed["paid_amount"]) == ("closed", "paid", 250.0)
    assert closed["payments"] == [payment]
    assert api.get(ORDERS).status_code == 404  # the POS order is consumed


def test_pay_without_a_scan_scans_first(api):
    api.put(ORDERS, json=order())
    paid = api.emu("POST", "pay", {"external_pos_id": "POS001"}).json()
    assert paid["merchant_order"]["status"] == "closed"
    assert api.get("/merchant_orders/search", params={"external_reference": "K1-0001"}).json()["total"] == 1


def test_rejected_payment_keeps_the_order_for_a_retry(api):
    api.put(ORDERS, json=order())
    rejected = api.emu("POST", "pay", {"external_pos_id": "POS001", "result": "rejected"}).json()
    assert rejected["payment"]["status"] == "rejected"
    assert rejected["payment"]["status_detail"] == "cc_rejected_other_reason"
    assert rejected["merchant_order"]["status"] == "opened"
    assert rejected["merchant_order"]["paid_amount"] == 0
    assert api.get(ORDERS).status_code == 200
    retried = api.emu("POST", "pay", {"external_pos_id": "POS001", "result": "approved"}).json()
    mo = retried["merchant_order"]
    assert mo["id"] == rejected["merchant_order"]["id"]  # same scan, no rescan
    assert mo["status"] == "closed" and [p["status"] for p in mo["payments"]] == ["rejected", "approved"]


@pytest.mark.parametrize("emulator", ["at_scan"], indirect=True)
def test_at_scan_every_scan_opens_a_new_merchant_order(api):
    api.put(ORDERS, json=order())
    first = api.emu("POST", "scan", {"external_pos_id": "POS001"}).json()["merchant_order"]
    second = api.emu("POST", "scan", {"external_pos_id": "POS001"}).json()["merchant_order"]
    assert first["id"] != second["id"]
    page = api.get("/merchant_orders/search", params={"external_reference": "K1-0001", "limit": "1"}).json()
    assert page["total"] == 2 and page["next_offset"] == 1 and len(page["elements"]) == 1
    api.emu("POST", "pay", {"external_pos_id": "POS001"})
    statuses = {
        mo["id"]: mo["status"]
        for mo in api.get("/merchant_orders/search", params={"external_reference": "K1-0001"}).json()[
            "elements"
        ]
    }
    assert statuses == {first["id"]: "opened", second["id"]: "closed"}  # the latest scan is the one paid


def test_scan_before_the_order_waits_then_opens_a_merchant_order(api):
    waiting = api.emu("POST", "scan", {"external_pos_id": "POS001"}).json()
    assert waiting["waiting"] is True and "merchant_order" not in waiting
    assert api.get("/merchant_orders/search", params={"external_reference": "K1-0001"}).json() == {
        "elements": None,
        "total": 0,
    }
    api.put(ORDERS, json=order())
    search = api.get("/merchant_orders/search", params={"external_reference": "K1-0001"}).json()
    assert search["total"] == 1 and search["elements"][0]["status"] == "opened"


def test_partial_payment_leaves_the_merchant_order_open(api):
    api.put(ORDERS, json=order(total=100.0))
    assert api.emu("POST", "pay", {"external_pos_id": "POS001", "amount": "forty"}).status_code == 400
    assert api.emu("POST", "pay", {"external_pos_id": "POS001", "amount": "0,001"}).status_code == 400
    paid = api.emu("POST", "pay", {"external_pos_id": "POS001", "amount": "40,00"}).json()
    mo = paid["merchant_order"]
    assert paid["payment"]["transaction_amount"] == 40.0
    assert (mo["status"], mo["order_status"], mo["paid_amount"]) == ("opened", "partially_paid", 40.0)
    assert api.get(ORDERS).status_code == 200
    rest = api.emu("POST", "pay", {"external_pos_id": "POS001"}).json()
    assert rest["payment"]["transaction_amount"] == 60.0 and rest["merchant_order"]["status"] == "closed"


def test_merchant_order_errors(api):
    assert api.get("/merchant_orders/4018801790").status_code == 404
    assert api.get("/merchant_orders/4018801790").json()["error"] == "not_found"
    assert api.get("/merchant_orders/abc").status_code == 404
    assert api.emu("POST", "pay", {"external_pos_id": "POS001"}).status_code == 404  # nothing to pay
    assert api.emu("POST", "pay", {"external_pos_id": "POS001", "result": "maybe"}).status_code == 400
    assert api.emu("POST", "scan", {"external_pos_id": "POS404"}).status_code == 404


def test_expire_action_expires_unpaid_merchant_orders(api):
    api.put(ORDERS, json=order())
    mo = api.emu("POST", "scan", {"external_pos_id": "POS001"}).json()["merchant_order"]
    expired = api.emu("POST", "expire", {"external_pos_id": "POS001"}).json()
    assert [m["id"] for m in expired["merchant_orders"]] == [mo["id"]]
    assert api.get(f"/merchant_orders/{mo['id']}").json()["status"] == "expired"
    assert api.get(ORDERS).status_code == 404
    assert api.emu("POST", "expire", {"external_pos_id": "POS001"}).status_code == 404


def test_order_expires_by_itself_at_its_expiration_date(api, clock):
    api.put(ORDERS, json=order(expiration_date=iso_in(clock, 60)))
    mo = api.emu("POST", "scan", {"external_pos_id": "POS001"}).json()["merchant_order"]
    clock.now += 59
    assert api.get(ORDERS).status_code == 200
    clock.now += 2
    assert api.get(ORDERS).status_code == 404
    assert api.get(f"/merchant_orders/{mo['id']}").json()["status"] == "expired"


def test_busy_pos_replace(api):
    api.put(ORDERS, json=order("K1-A"))
    assert api.put(ORDERS, json=order("K1-B")).status_code == 204
    assert api.get(ORDERS).json()[0]["external_reference"] == "K1-B"


def test_busy_pos_409():
    with EmulatorServer(Emulator(busy_pos="409")) as server:
        api = Api(server.url)
        assert api.put(ORDERS, json=order("K1-A")).status_code == 204
        assert api.put(ORDERS, json=order("K1-A")).status_code == 204  # the same order again is fine
        busy = api.put(ORDERS, json=order("K1-B"))
        assert busy.status_code == 409 and busy.json()["error"] == "point_of_sale_busy"
        assert api.get(ORDERS).json()[0]["external_reference"] == "K1-A"


def test_busy_pos_must_be_known():
    with pytest.raises(ValueError):
        Emulator(busy_pos="queue")


def test_refund_a_payment(api):
    api.put(ORDERS, json=order(total=80.0))
    paid = api.emu("POST", "pay", {"external_pos_id": "POS001"}).json()
    payment_id = paid["payment"]["id"]
    refund = api.post(f"/v1/payments/{payment_id}/refunds", json={})
    assert refund.status_code == 201
    assert refund.json()["payment_id"] == payment_id and refund.json()["amount"] == 80.0
    assert refund.json()["status"] == "approved"
    mo = api.get(f"/merchant_orders/{paid['merchant_order']['id']}").json()
    assert mo["refunded_amount"] == 80.0 and mo["payments"][0]["status"] == "refunded"
    again = api.post(f"/v1/payments/{payment_id}/refunds")
    assert again.status_code == 400
    assert api.post("/v1/payments/1/refunds").status_code == 404


def test_partial_refund(api):
    api.put(ORDERS, json=order(total=80.0))
    paid = api.emu("POST", "pay", {"external_pos_id": "POS001"}).json()
    refund = api.post(f"/v1/payments/{paid['payment']['id']}/refunds", json={"amount": 30})
    assert refund.status_code == 201 and refund.json()["amount"] == 30.0
    mo = api.get(f"/merchant_orders/{paid['merchant_order']['id']}").json()
    assert mo["refunded_amount"] == 30.0 and mo["payments"][0]["status"] == "approved"
    assert api.post(f"/v1/payments/{paid['payment']['id']}/refunds", json={"amount": 60}).status_code == 400


# -- faults -------------------------------------------------------------------------------------------


def test_fault_after_applies_the_push_and_loses_the_answer(api):
    api.emu("POST", "faults", {"op": "push", "kind": "http500"})
    answer = api.put(ORDERS, json=order())
    assert answer.status_code == 500 and answer.json()["status"] == 500
    assert api.get(ORDERS).status_code == 200  # applied all the same


def test_fault_before_does_not_apply_the_push(api):
    api.emu("POST", "faults", {"op": "push", "kind": "http503", "after": False})
    assert api.put(ORDERS, json=order()).status_code == 503
    assert api.get(ORDERS).status_code == 404
    assert api.put(ORDERS, json=order()).status_code == 204  # the fault fired once


def test_timeout_fault(api):
    api.emu("POST", "faults", {"op": "push", "kind": "timeout", "delay": 1.0})
    with pytest.raises(requests.Timeout):
        api.put(ORDERS, json=order(), timeout=0.2)
    assert api.get(ORDERS).status_code == 200  # applied before the (lost) answer


def test_timeout_fault_before_applies_late(api):
    api.emu("POST", "faults", {"op": "push", "kind": "timeout", "delay": 0.5, "after": False})
    with pytest.raises(requests.Timeout):
        api.put(ORDERS, json=order(), timeout=0.1)
    assert api.get(ORDERS).status_code == 404  # not yet
    deadline = time.monotonic() + 3
    while api.get(ORDERS).status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert api.get(ORDERS).status_code == 200


def test_reset_fault_raises_connection_error(api):
    api.put(ORDERS, json=order())
    api.emu("POST", "faults", {"op": "read", "kind": "reset"})
    with pytest.raises(requests.ConnectionError):
        api.get("/merchant_orders/search", params={"external_reference": "K1-0001"})
    assert api.get(ORDERS).status_code == 200  # the next read is fine


def test_malformed_fault_sends_invalid_json(api):
    api.emu("POST", "faults", {"op": "read", "kind": "malformed"})
    answer = api.get("/merchant_orders/search", params={"external_reference": "K1-0001"})
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()


def test_429_fault_carries_retry_after(api):
    api.emu("POST", "faults", {"op": "cancel", "kind": "http429", "retry_after": 7, "after": False})
    api.put(ORDERS, json=order())
    answer = api.delete(ORDERS)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"
    assert api.get(ORDERS).status_code == 200  # the delete was refused before applying


def test_409_fault_and_count(api):
    armed = api.emu("POST", "faults", {"op": "read", "kind": "http409", "count": 2})
    assert armed.status_code == 201 and armed.json()["fault"]["count"] == 2
    assert [api.get(ORDERS).status_code for _ in range(3)] == [409, 409, 404]


def test_faults_can_be_listed_and_cleared(api):
    api.emu("POST", "faults", {"op": "read", "kind": "http500", "count": 5})
    assert api.emu("GET", "faults").json()["faults"][0]["kind"] == "http500"
    assert api.emu("DELETE", "faults").json() == {"cleared": 1}
    assert api.get(ORDERS).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"op": "push", "kind": "explode"},
        {"op": "write", "kind": "reset"},
        {"op": "push", "kind": "reset", "count": 0},
    ],
)
def test_bad_fault_is_400(api, body):
    assert api.emu("POST", "faults", body).status_code == 400


def test_faults_do_not_touch_unrelated_operations(api):
    api.emu("POST", "faults", {"op": "push", "kind": "http500"})
    assert api.get("/users/me").status_code == 200
    assert api.get(ORDERS).status_code == 404
    assert api.put(ORDERS, json=order()).status_code == 500


# -- request log, state, secrecy ----------------------------------------------------------------------


def test_request_log_counts_api_calls(api):
    api.emu("POST", "faults", {"op": "push", "kind": "http500"})
    api.put(ORDERS, json=order())
    api.put(ORDERS, json=order())
    api.get(ORDERS)
    api.emu("POST", "scan", {"external_pos_id": "POS001"})
    log = api.emu("GET", "requests").json()
    assert [(e["method"], e["status"]) for e in log] == [("PUT", 500), ("PUT", 204), ("GET", 200)]
    assert log[0]["fault"] == "http500" and log[0]["path"] == ORDERS and isinstance(log[0]["t"], float)
    assert api.emu("DELETE", "requests").json() == {"cleared": 3}
    assert api.emu("GET", "requests").json() == []


def test_state_dump(api):
    api.put(ORDERS, json=order())
    state = api.emu("GET", "state").json()
    [pos] = state["pos"]
    emvco.verify(pos["payload"])
    assert pos["external_id"] == "POS001" and pos["order"]["api"] == "instore"
    assert state["site"] == "MLA" and state["stores"][0]["external_id"] == "STORE001"


def test_the_token_never_reaches_logs_or_dumps(api, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "APP_USR-999-112233-deadbeefcafe-123456789"
    Api(api.url, secret).put(ORDERS, json=order())
    requests.get(f"{api.url}{ORDERS}", params={"access_token": secret}, timeout=5)
    requests.get(f"{api.url}/users/me", params={"access_token": secret, "x": "1"}, timeout=5)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("mpqr_kiosk"))
    assert "deadbeefcafe" not in ours
    assert "access_token=***" in ours  # the request was logged, its token masked
    assert "deadbeefcafe" not in api.emu("GET", "requests").text
    assert "deadbeefcafe" not in api.emu("GET", "state").text


# -- notifications --------------------------------------------------------------------------------------


class _Inbox(BaseHTTPRequestHandler):
    received: list[str] = []

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_merchant_order_notifications_reach_a_loopback_url(api):
    _Inbox.received = []
    inbox = ThreadingHTTPServer(("127.0.0.1", 0), _Inbox)
    threading.Thread(target=inbox.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{inbox.server_address[1]}/ipn?source_news=ipn"
        api.put(ORDERS, json=order(notification_url=url))
        mo = api.emu("POST", "pay", {"external_pos_id": "POS001"}).json()["merchant_order"]
        deadline = time.monotonic() + 3
        while len(_Inbox.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        inbox.shutdown()
        inbox.server_close()
    expected = f"/ipn?source_news=ipn&topic=merchant_order&id={mo['id']}"
    assert _Inbox.received == [expected, expected]  # opened on scan, closed on payment
    deliveries = api.emu("GET", "state").json()["notifications"]
    assert [d["status"] for d in deliveries] == [200, 200]


def test_notifications_never_leave_loopback(api):
    api.put(ORDERS, json=order(notification_url="https://example.com/ipn"))
    api.emu("POST", "scan", {"external_pos_id": "POS001"})
    [delivery] = api.emu("GET", "state").json()["notifications"]
    assert delivery["status"] is None and delivery["error"].startswith("skipped")


# -- CLI ------------------------------------------------------------------------------------------------


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    return parser.parse_args(argv)


def test_cli_refuses_a_remote_host_unless_allowed():
    assert cli.run(_parse(["--host", "0.0.0.0", "--port", "0"])) == 2
    args = _parse(["--host", "0.0.0.0", "--allow-remote"])
    assert args.allow_remote is True and args.port == 8765 and args.site == "MLA"


def test_cli_buyer_actions_print_the_answer(api, capsys):
    api.put(ORDERS, json=order(total=100.0))
    assert cli.run(_parse(["scan", "--url", api.url])) == 0
    scanned = json.loads(capsys.readouterr().out)
    assert scanned["merchant_order"]["status"] == "opened"
    assert cli.run(_parse(["pay", "--url", api.url, "--pos", "POS001", "--result", "rejected"])) == 0
    assert json.loads(capsys.readouterr().out)["payment"]["status"] == "rejected"
    assert cli.run(_parse(["pay", "--url", api.url, "--amount", "100.00"])) == 0
    assert json.loads(capsys.readouterr().out)["merchant_order"]["status"] == "closed"
    assert cli.run(_parse(["expire", "--url", api.url])) == 4  # nothing left to expire
    assert json.loads(capsys.readouterr().out)["error"] == "point_of_sale_in_store_order_not_found"


def test_cli_serves_until_sigterm():
    runner = (
        "import argparse, sys\n"
        "from mpqr_kiosk.emulator import cli\n"
        "parser = argparse.ArgumentParser()\n"
        "cli.configure(parser)\n"
        "sys.exit(cli.run(parser.parse_args(sys.argv[1:])))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", runner, "--port", "0", "--site", "MLB"], stderr=subprocess.PIPE, text=True
    )
    try:
        lines = []
        while not any("static QR payload" in line for line in lines):
            line = proc.stderr.readline()
            assert line, f"the emulator exited early: {lines}"
            lines.append(line)
        url = re.search(r"http://127\.0\.0\.1:\d+", "".join(lines))[0]
        payload = lines[-1].split("static QR payload: ", 1)[1].rstrip("\n")
        emvco.verify(payload)
        assert emvco.parse(payload)["58"] == "BR"
        assert requests.post(f"{url}/_emu/scan", json={}, timeout=5).json()["waiting"] is True
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert "emulator stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("port", ["99999", "-1", "80a"])
def test_the_standalone_emulator_refuses_a_port_that_is_none_as_a_usage_error(port, capsys):
    with pytest.raises(SystemExit) as raised:
        kiosk_cli.main(["emulator", f"--port={port}"])
    assert raised.value.code == 2
    assert f"argument --port: '{port}' is not a port: a number 0-65535" in capsys.readouterr().err
