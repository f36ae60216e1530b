"""Our HTTP client and both backends against the emulator, over real HTTP on loopback."""

import logging
import time
from dataclasses import replace

import pytest
import requests
from conftest import TOKEN, mp_config

from mpqr_kiosk.assemble import backend_of
from mpqr_kiosk.core.model import Item, OrderPhase, Sale
from mpqr_kiosk.mercadopago.errors import ApiError, BadResponse, NotFound, RateLimited, TransportError, Unauthorized
from mpqr_kiosk.mercadopago.http import HttpClient
from mpqr_kiosk.provision import find_pos, static_payload


def a_sale(ref: str = "POS001-0001", total: int = 2150) -> Sale:
    items = (Item("Pão de queijo", 450, 2, "SKU1", "789"), Item("Valor digitado", total - 900))
    return Sale(ref, f"{ref}-key", "MLB", items, total, 1_700_000_000.0)


def requests_to(emulator, method: str, fragment: str) -> list[dict]:
    return [r for r in emulator.requests() if r["method"] == method and fragment in r["path"]]


def test_paid_flow_through_each_backend(emulator, backend):
    sale = a_sale()
    pushed = backend.push(sale, 120)
    assert pushed.server_time > 0
    sale = replace(sale, order_id=pushed.order_id)
    assert backend.read(sale).phase is OrderPhase.OPEN
    emulator.scan("POS001")
    emulator.pay("POS001", "rejected")
    seen = backend.read(sale)
    assert seen.phase is OrderPhase.OPEN and seen.approved == 0
    emulator.pay("POS001", "approved")
    seen = backend.read(sale)
    assert seen.phase is OrderPhase.CLOSED
    assert seen.approved == sale.total  # the core's paid rule holds: closed and approved == total
    assert any(p.status == "approved" and p.id for p in seen.payments)
    assert seen.server_time > 0


def test_instore_put_get_delete_status_codes_and_shapes(emulator, instore):
    sale = a_sale()
    instore.push(sale, 120)
    put = requests_to(emulator, "PUT", "/instore/qr/seller/collectors/")
    assert [r["status"] for r in put] == [204]
    client = instore.client
    on_pos = client.request("GET", instore.orders_path)
    assert isinstance(on_pos, list) and on_pos[0]["external_reference"] == sale.reference
    assert on_pos[0]["total_amount"] == 21.5
    found = client.request("GET", "/merchant_orders/search", params={"external_reference": sale.reference})
    assert [(mo["status"], mo["payments"]) for mo in found["elements"]] == [("opened", [])]  # made with the order
    instore.cancel(sale)
    with pytest.raises(NotFound) as gone:
        client.request("GET", instore.orders_path)
    assert gone.value.code == "point_of_sale_in_store_order_not_found"
    instore.cancel(sale)  # deleting what is already gone is not an error
    assert [r["status"] for r in requests_to(emulator, "DELETE", "/orders")] == [204, 404]


def test_merchant_order_search_uses_elements_and_an_opened_order_never_completes(emulator, instore):
    sale = a_sale()
    instore.push(sale, 120)
    emulator.scan("POS001")
    emulator.pay("POS001", "approved", amount=1000)  # approved, but less than the total
    found = instore.client.request("GET", "/merchant_orders/search", params={"external_reference": sale.reference})
    assert set(found) >= {"elements", "total"} and "results" not in found
    assert found["elements"][0]["status"] == "opened"
    seen = instore.read(sale)
    assert seen.phase is OrderPhase.OPEN and seen.attempted and seen.approved == 1000


@pytest.mark.parametrize("emulator", ["at_scan"], indirect=True)
def test_each_scan_makes_a_merchant_order_and_the_closed_one_decides(emulator, instore):
    sale = a_sale()
    instore.push(sale, 120)
    emulator.scan("POS001")
    emulator.scan("POS001")
    emulator.pay("POS001", "approved")
    found = instore.client.request("GET", "/merchant_orders/search", params={"external_reference": sale.reference})
    assert found["total"] == 2
    seen = instore.read(sale)
    assert seen.phase is OrderPhase.CLOSED and seen.approved == sale.total


def test_validation_errors_are_definite_and_typed(emulator, instore):
    with pytest.raises(ApiError) as raised:
        instore.push(a_sale(ref="bad reference!"), 120)
    assert raised.value.status == 400 and raised.value.code == "invalid_external_reference"
    assert not raised.value.indeterminate


def test_unknown_pos_is_not_found(emulator):
    backend = backend_of(mp_config(emulator, external_pos_id="NOSUCHPOS"), TOKEN, "Shop")
    with pytest.raises(NotFound):
        backend.push(a_sale(), 120)


def test_bad_token_is_unauthorized_and_never_echoed(emulator):
    client = HttpClient(emulator.url, "")
    with pytest.raises(Unauthorized) as raised:
        client.request("GET", "/users/me")
    assert raised.value.status == 401


def test_token_never_appears_in_errors_or_logs(emulator, instore, caplog):
    caplog.set_level(logging.DEBUG)
    emulator.inject("push", "http500", after=False)
    with pytest.raises(ApiError) as raised:
        instore.push(a_sale(), 120)
    emulator.inject("read", "reset")
    with pytest.raises(TransportError) as reset:
        instore.read(a_sale())
    for text in (str(raised.value), repr(raised.value), str(reset.value), caplog.text):
        assert TOKEN not in text


@pytest.mark.parametrize(
    ("kind", "error", "status"),
    [("http500", ApiError, 500), ("http503", ApiError, 503), ("http409", ApiError, 409),
     ("http429", RateLimited, 429), ("reset", TransportError, 0), ("malformed", BadResponse, 200)],
)
def test_faults_on_push_are_indeterminate(emulator, instore, kind, error, status):
    emulator.inject("push", kind, after=True)
    with pytest.raises(error) as raised:
        instore.push(a_sale(), 120)
    assert raised.value.indeterminate
    assert raised.value.status == status
    if kind == "http429":
        assert raised.value.retry_after >= 1


def test_timeout_is_indeterminate_and_recover_finds_the_order_that_landed(emulator, instore):
    instore.client.timeout = (1.0, 0.3)
    emulator.inject("push", "timeout", after=True, delay=1.0)
    sale = a_sale()
    with pytest.raises(TransportError) as raised:
        instore.push(sale, 120)
    assert raised.value.indeterminate
    instore.client.timeout = (3.0, 5.0)
    assert instore.recover(sale, 120).phase is OrderPhase.OPEN
    time.sleep(1.0)  # the emulator logs the slow PUT when its handler finishes
    assert len(requests_to(emulator, "PUT", "/orders")) == 1  # recovered by reading, not by a second create


def test_recover_reports_absent_when_the_push_never_landed(emulator, instore):
    emulator.inject("push", "http503", after=False)
    sale = a_sale()
    with pytest.raises(ApiError):
        instore.push(sale, 120)
    assert instore.recover(sale, 120).phase is OrderPhase.ABSENT


def test_orders_api_idempotent_replay_returns_the_same_order(emulator):
    orders = backend_of(mp_config(emulator, api="orders"), TOKEN, "Shop")
    sale = a_sale()
    emulator.inject("push", "reset", after=True)
    with pytest.raises(TransportError):
        orders.push(sale, 120)
    seen = orders.recover(sale, 120)
    assert seen.phase is OrderPhase.OPEN and seen.order_id.startswith("ORD")
    assert orders.recover(sale, 120).order_id == seen.order_id
    assert [o["id"] for o in emulator.snapshot()["orders"]] == [seen.order_id]  # one order, never two


def test_orders_api_cancel_and_refund(emulator):
    orders = backend_of(mp_config(emulator, api="orders"), TOKEN, "Shop")
    sale = a_sale()
    sale = replace(sale, order_id=orders.push(sale, 120).order_id)
    orders.cancel(sale)
    assert orders.read(sale).phase is OrderPhase.CANCELLED
    orders.cancel(sale)  # a second cancel (409) is not an error: the read decides

    paid = a_sale("POS001-0002")
    paid = replace(paid, order_id=orders.push(paid, 120).order_id)
    emulator.pay("POS001", "approved")
    assert orders.read(paid).phase is OrderPhase.CLOSED
    orders.refund(paid)
    assert orders.read(paid).phase is OrderPhase.REFUNDED


def test_instore_refund(emulator, instore):
    sale = a_sale()
    instore.push(sale, 120)
    emulator.pay("POS001", "approved")
    payment = next(p for p in instore.read(sale).payments if p.status == "approved")
    instore.refund(replace(sale, payment_id=payment.id))
    assert any(p.status == "refunded" for p in instore.read(sale).payments)


def test_server_clock_is_learned_from_the_date_header(emulator, instore):
    instore.client.clock_offset = 12345.0
    instore.probe()
    assert abs(instore.client.clock_offset) < 5


def test_provisioning_reads_the_pos_qr_image_to_its_payload(emulator):
    client = HttpClient(emulator.url, TOKEN)
    pos = find_pos(client, "POS001")
    assert pos["fixed_amount"] is True
    payload = static_payload(pos)
    assert payload == emulator.payload("POS001")
    assert payload.startswith("000201010211") and len(payload) > 100


def test_the_qr_image_is_fetched_without_the_token(emulator, monkeypatch):
    sent = []
    real_send = requests.Session.send

    def spy(session, prepared, **kwargs):
        sent.append((prepared.url, prepared.headers.get("Authorization")))
        return real_send(session, prepared, **kwargs)

    monkeypatch.setattr(requests.Session, "send", spy)
    pos = find_pos(HttpClient(emulator.url, TOKEN), "POS001")
    sent.clear()
    static_payload(pos)
    assert [auth for _, auth in sent] == [None] and sent[0][0] == pos["qr"]["image"]
