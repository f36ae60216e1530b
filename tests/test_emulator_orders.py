"""The emulator's Orders API (``/v1/orders``, type qr, static mode) over real HTTP."""

import re
import uuid

import pytest
import requests
from conftest import SettableClock

from mpqr_kiosk.emulator import Emulator, EmulatorServer

USER = 123456789
TOKEN = f"TEST-5555-082812-0a1b2c-{USER}"


class Api:
    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"Bearer {TOKEN}"

    def post(
        self, path: str, body: dict | None = None, key: str | None = None, **kwargs
    ) -> requests.Response:
        headers = {"X-Idempotency-Key": key} if key else {}
        return self.session.post(
            self.url + path, json=body, headers=headers, timeout=kwargs.pop("timeout", 5)
        )

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.url + path, timeout=5)

    def emu(self, method: str, action: str, body: dict | None = None) -> requests.Response:
        return requests.request(method, f"{self.url}/_emu/{action}", json=body, timeout=5)

    def create(self, body: dict | None = None, key: str | None = None) -> requests.Response:
        return self.post("/v1/orders", body or order(), key or str(uuid.uuid4()))


def order(ref: str = "K1-0001", amount: str = "50.00", **extra) -> dict:
    body = {
        "type": "qr",
        "total_amount": amount,
        "description": "Venta kiosco",
        "external_reference": ref,
        "expiration_time": "PT10M",
        "config": {"qr": {"external_pos_id": "POS001", "mode": "static"}},
        "transactions": {"payments": [{"amount": amount}]},
        "items": [{"title": "Pasta", "unit_price": amount, "quantity": 1, "unit_measure": "unit"}],
    }
    body.update(extra)
    return body


@pytest.fixture
def clock():
    return SettableClock()


@pytest.fixture
def emulator(clock):
    return Emulator(site="MLA", user_id=USER, clock=clock)


@pytest.fixture
def api(emulator):
    with EmulatorServer(emulator) as server:
        yield Api(server.url)


def errors_of(answer: requests.Response) -> list[str]:
    return [e["code"] for e in answer.json()["errors"]]


def test_create_returns_the_full_order(api):
    answer = api.create()
    assert answer.status_code == 201
    created = answer.json()
    assert re.fullmatch(r"ORDTST01[0-9A-Z]{22}", created["id"])
    assert (created["status"], created["status_detail"]) == ("created", "created")
    assert created["type"] == "qr" and created["user_id"] == str(USER) and created["currency"] == "ARS"
    assert created["total_amount"] == "50.00" and created["external_reference"] == "K1-0001"
    assert created["config"] == {"qr": {"external_pos_id": "POS001", "mode": "static"}}
    [payment] = created["transactions"]["payments"]
    assert re.fullmatch(r"PAY01[0-9A-Z]{24}", payment["id"])
    assert (payment["amount"], payment["status"], payment["status_detail"]) == (
        "50.00",
        "created",
        "ready_to_process",
    )
    assert "type_response" not in created  # static mode
    assert api.get(f"/v1/orders/{created['id']}").json() == created


def test_create_needs_an_idempotency_key(api):
    answer = api.post("/v1/orders", order())
    assert answer.status_code == 400
    assert answer.json() == {
        "errors": [
            {
                "code": "empty_required_header",
                "message": "The X-Idempotency-Key header is required.",
                "details": [],
            }
        ]
    }


def test_orders_api_auth_errors_use_its_error_shape():
    with EmulatorServer(Emulator()) as server:
        answer = requests.post(f"{server.url}/v1/orders", json=order(), timeout=5)
    assert answer.status_code == 401 and answer.json()["errors"][0]["code"] == "unauthorized"


def test_same_key_same_body_replays_the_first_answer(api):
    first = api.create(key="k-1")
    again = api.create(key="k-1")
    assert again.status_code == 201 and again.json() == first.json()
    assert len(api.emu("GET", "state").json()["orders"]) == 1
    posts = [e for e in api.emu("GET", "requests").json() if e["method"] == "POST"]
    assert len(posts) == 2


def test_same_key_other_body_is_409(api):
    api.create(key="k-1")
    clash = api.create(order(ref="K1-0002"), key="k-1")
    assert clash.status_code == 409 and errors_of(clash) == ["idempotency_key_already_used"]


def test_replay_after_a_lost_answer_returns_the_created_order(api):
    api.emu("POST", "faults", {"op": "push", "kind": "http500"})
    lost = api.create(key="k-9")
    assert lost.status_code == 500 and errors_of(lost) == ["internal_server_error"]
    replay = api.create(key="k-9")
    assert replay.status_code == 201
    [stored] = api.emu("GET", "state").json()["orders"]
    assert stored["id"] == replay.json()["id"]


def test_replay_after_a_reset_before_applying_creates_once(api):
    api.emu("POST", "faults", {"op": "push", "kind": "reset", "after": False})
    with pytest.raises(requests.ConnectionError):
        api.create(key="k-7")
    assert api.emu("GET", "state").json()["orders"] == []
    assert api.create(key="k-7").status_code == 201
    assert len(api.emu("GET", "state").json()["orders"]) == 1


def test_unknown_pos_is_404(api):
    body = order(config={"qr": {"external_pos_id": "POS404", "mode": "static"}})
    answer = api.create(body)
    assert answer.status_code == 404 and errors_of(answer) == ["pos_not_found"]


@pytest.mark.parametrize(
    "site, amount, ok",
    [
        ("MLA", "50.00", True),
        ("MLA", "50", True),
        ("MLA", "50.5", False),
        ("MLB", "10.00", True),
        ("MLB", "10", False),
        ("MLC", "1000", True),
        ("MLC", "1000.00", False),
        ("MLU", "100.00", True),
        ("MLA", "0.00", False),
        ("MLA", "-5.00", False),
    ],
)
def test_amount_format_per_site(site, amount, ok):
    with EmulatorServer(Emulator(site=site)) as server:
        answer = Api(server.url).create(order(amount=amount))
    assert answer.status_code == (201 if ok else 400)
    if not ok:
        assert errors_of(answer) == ["property_value"]


@pytest.mark.parametrize(
    "change, code",
    [
        ({"total_amount": 50}, "property_type"),
        ({"external_reference": "has space"}, "property_value"),
        ({"external_reference": "x" * 65}, "property_value"),
        ({"expiration_time": "PT10S"}, "property_value"),
        ({"expiration_time": "PT3601H"}, "property_value"),
        ({"expiration_time": "10 minutes"}, "property_value"),
        ({"type": "point"}, "property_value"),
        ({"colour": "red"}, "unsupported_properties"),
        ({"config": {"qr": {"external_pos_id": "POS001", "mode": "dynamic"}}}, "unsupported_properties"),
        ({"transactions": {"payments": [{"amount": "49.00"}]}}, "property_value"),
        ({"items": [{"title": "x", "unit_price": "1.00", "quantity": 1.5}]}, "property_type"),
    ],
)
def test_create_validation(api, change, code):
    answer = api.create(order(**change))
    assert answer.status_code == 400 and errors_of(answer) == [code]


def test_shortest_expiration_is_accepted(api):
    assert api.create(order(expiration_time="PT30S")).status_code == 201


def test_get_unknown_order_is_404(api):
    answer = api.get("/v1/orders/ORDTST01XXXXXXXXXXXXXXXXXXXXXX")
    assert answer.status_code == 404 and errors_of(answer) == ["order_not_found"]


def test_pay_approved_processes_the_order(api):
    created = api.create().json()
    paid = api.emu("POST", "pay", {"external_pos_id": "POS001"}).json()["order"]
    got = api.get(f"/v1/orders/{created['id']}").json()
    assert got == paid
    assert (got["status"], got["status_detail"], got["total_paid_amount"]) == (
        "processed",
        "accredited",
        "50.00",
    )
    [payment] = got["transactions"]["payments"]
    assert (payment["status"], payment["status_detail"], payment["paid_amount"]) == (
        "processed",
        "accredited",
        "50.00",
    )
    assert payment["reference_id"].isdigit() and payment["id"] == created["transactions"]["payments"][0]["id"]
    assert api.emu("POST", "pay", {"external_pos_id": "POS001"}).status_code == 404  # off the POS now


def test_pay_with_another_amount_shows_in_total_paid(api):
    created = api.create().json()
    api.emu("POST", "pay", {"external_pos_id": "POS001", "amount": "45.00"})
    got = api.get(f"/v1/orders/{created['id']}").json()
    assert got["status"] == "processed" and got["total_paid_amount"] == "45.00" != got["total_amount"]


def test_rejected_payment_keeps_the_order_created(api):
    created = api.create().json()
    rejected = api.emu("POST", "pay", {"external_pos_id": "POS001", "result": "rejected"}).json()
    assert rejected["attempt"]["status_detail"] == "cc_rejected_other_reason"
    assert api.get(f"/v1/orders/{created['id']}").json() == created
    [stored] = api.emu("GET", "state").json()["orders"]
    assert [a["result"] for a in stored["emulator"]["attempts"]] == ["rejected"]
    api.emu("POST", "pay", {"external_pos_id": "POS001"})
    assert api.get(f"/v1/orders/{created['id']}").json()["status"] == "processed"


def test_cancel(api):
    created = api.create().json()
    canceled = api.post(f"/v1/orders/{created['id']}/cancel")
    assert canceled.status_code == 200
    body = canceled.json()
    assert (body["status"], body["status_detail"]) == ("canceled", "canceled")
    assert body["transactions"]["payments"][0]["status_detail"] == "canceled_by_api"
    again = api.post(f"/v1/orders/{created['id']}/cancel")
    assert again.status_code == 409 and errors_of(again) == ["cannot_cancel_order"]
    assert api.emu("POST", "pay", {"external_pos_id": "POS001"}).status_code == 404


def test_cancel_fault_after_still_cancels(api):
    created = api.create().json()
    api.emu("POST", "faults", {"op": "cancel", "kind": "http503"})
    assert api.post(f"/v1/orders/{created['id']}/cancel").status_code == 503
    assert api.get(f"/v1/orders/{created['id']}").json()["status"] == "canceled"


def test_read_fault_on_get(api):
    created = api.create().json()
    api.emu("POST", "faults", {"op": "read", "kind": "malformed"})
    with pytest.raises(ValueError):
        api.get(f"/v1/orders/{created['id']}").json()
    assert api.get(f"/v1/orders/{created['id']}").json()["id"] == created["id"]


def test_refund_rules(api):
    created = api.create().json()
    path = f"/v1/orders/{created['id']}/refund"
    assert errors_of(api.post(path)) == ["empty_required_header"]
    early = api.post(path, key="r-1")
    assert early.status_code == 409 and errors_of(early) == ["cannot_refund_order"]
    api.emu("POST", "pay", {"external_pos_id": "POS001"})
    refunded = api.post(path, key="r-2")
    assert refunded.status_code == 201
    body = refunded.json()
    assert (body["status"], body["status_detail"]) == ("refunded", "refunded")
    [refund] = body["transactions"]["refunds"]
    assert (
        refund["amount"] == "50.00"
        and refund["transaction_id"] == created["transactions"]["payments"][0]["id"]
    )
    assert api.post(path, key="r-2").json() == body  # replayed, not refunded twice
    assert errors_of(api.post(path, key="r-3")) == ["cannot_refund_order"]


def test_partial_refund(api):
    created = api.create().json()
    api.emu("POST", "pay", {"external_pos_id": "POS001"})
    payment_id = created["transactions"]["payments"][0]["id"]
    path = f"/v1/orders/{created['id']}/refund"
    part = api.post(path, {"transactions": [{"id": payment_id, "amount": "20.00"}]}, key="p-1").json()
    assert (part["status"], part["status_detail"]) == ("processed", "partially_refunded")
    too_much = api.post(path, {"transactions": [{"id": payment_id, "amount": "40.00"}]}, key="p-2")
    assert too_much.status_code == 400 and errors_of(too_much) == ["refund_amount_exceeds"]
    rest = api.post(path, {"transactions": [{"id": payment_id, "amount": "30.00"}]}, key="p-3").json()
    assert rest["status"] == "refunded" and len(rest["transactions"]["refunds"]) == 2


def test_expire_action(api):
    created = api.create().json()
    expired = api.emu("POST", "expire", {"external_pos_id": "POS001"}).json()["order"]
    assert (expired["status"], expired["status_detail"]) == ("expired", "expired")
    assert api.get(f"/v1/orders/{created['id']}").json()["transactions"]["payments"][0]["status"] == "expired"


def test_order_expires_at_its_expiration_time(api, clock):
    created = api.create(order(expiration_time="PT1M")).json()
    clock.now += 59
    assert api.get(f"/v1/orders/{created['id']}").json()["status"] == "created"
    clock.now += 2
    assert api.get(f"/v1/orders/{created['id']}").json()["status"] == "expired"
    assert api.create(order(ref="K1-0002")).status_code == 201  # the POS is free again


def test_busy_pos_replace_leaves_the_old_order_unpayable(api):
    first = api.create(order(ref="K1-A")).json()
    second = api.create(order(ref="K1-B")).json()
    paid = api.emu("POST", "pay", {"external_pos_id": "POS001"}).json()["order"]
    assert paid["id"] == second["id"]
    assert api.get(f"/v1/orders/{first['id']}").json()["status"] == "created"


def test_busy_pos_409():
    with EmulatorServer(Emulator(busy_pos="409")) as server:
        api = Api(server.url)
        assert api.create(order(ref="K1-A")).status_code == 201
        busy = api.create(order(ref="K1-B"))
        assert busy.status_code == 409 and errors_of(busy) == ["point_of_sale_busy"]


def test_scan_before_the_order_counts_once_it_arrives(api):
    assert api.emu("POST", "scan", {"external_pos_id": "POS001"}).json()["waiting"] is True
    api.create()
    [stored] = api.emu("GET", "state").json()["orders"]
    assert stored["emulator"]["scans"] == 1
    scanned = api.emu("POST", "scan", {"external_pos_id": "POS001"}).json()
    assert scanned["waiting"] is False and scanned["order"]["status"] == "created"


def test_instore_and_orders_share_the_pos(api):
    api.create()
    instore = f"/instore/qr/seller/collectors/{USER}/pos/POS001/orders"
    assert api.session.get(api.url + instore, timeout=5).status_code == 404  # no in-store order there
    state = api.emu("GET", "state").json()
    assert state["pos"][0]["order"]["api"] == "orders"
