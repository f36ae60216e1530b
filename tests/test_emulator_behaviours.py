"""The emulator follows the docs, and picks the worse case where they are silent: merchant orders made at
creation, at a scan or with the first payment; payments in review decided later; two phones on one QR;
partial and over payments; refunds that answer "processing" first; sites without the Orders API; idempotency
keys that live 24 hours; the Orders search."""

from __future__ import annotations

import pytest
import requests
from conftest import TOKEN, SettableClock

from mpqr_kiosk.emulator.server import EmulatorServer
from mpqr_kiosk.emulator.state import Emulator

USER = 123456789
ORDERS = f"/instore/qr/seller/collectors/{USER}/pos/POS001/orders"


class Api:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.server = EmulatorServer(emulator).start()
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"Bearer {TOKEN}"

    def __call__(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.server.url + path, timeout=5, **kwargs)

    def merchant_orders(self, reference: str = "K1") -> list[dict]:
        return self("GET", "/merchant_orders/search", params={"external_reference": reference}).json()["elements"] or []


@pytest.fixture
def clock():
    return SettableClock()


@pytest.fixture
def api_for(clock):
    """Emulators over HTTP on ``clock``, stopped after the test."""
    made: list[Api] = []

    def make(site: str = "MLB", **options) -> Api:
        made.append(Api(Emulator(site=site, user_id=USER, clock=clock, **options)))
        return made[-1]

    yield make
    for api in made:
        api.server.stop()


def order(clock, reference: str = "K1", total: float = 10.0) -> dict:
    from datetime import UTC, datetime

    return {"external_reference": reference, "title": "Venda", "description": "Venda", "total_amount": total,
            "expiration_date": datetime.fromtimestamp(clock.now + 600, UTC).isoformat(timespec="milliseconds"),
            "items": [{"sku_number": "KEYED", "category": "others", "title": "Valor", "description": "Valor",
                       "unit_price": total, "quantity": 1, "unit_measure": "unit", "total_amount": total}]}


@pytest.mark.parametrize(("mode", "after_put", "after_scan", "after_pay"),
                         [("at_create", 1, 1, 1), ("at_scan", 0, 1, 1), ("at_payment", 0, 0, 1)])
def test_a_merchant_order_appears_when_the_mode_says(api_for, clock, mode, after_put, after_scan, after_pay):
    api = api_for(merchant_order=mode)
    assert api("PUT", ORDERS, json=order(clock)).status_code == 204
    assert len(api.merchant_orders()) == after_put
    api.emulator.scan("POS001")
    assert len(api.merchant_orders()) == after_scan
    api.emulator.pay("POS001", "approved")
    assert [mo["status"] for mo in api.merchant_orders()][-1:] == ["closed"] and len(api.merchant_orders()) == after_pay


@pytest.mark.parametrize("mode", ["at_create", "at_scan", "at_payment"])
def test_a_payment_in_review_keeps_the_order_until_decided(api_for, clock, mode):
    api = api_for(merchant_order=mode)
    api("PUT", ORDERS, json=order(clock))
    paying = api.emulator.pay("POS001", "in_process")["payment"]
    assert paying["status"] == "in_process" and paying["status_detail"] == "pending_review_manual"
    assert api("GET", ORDERS).status_code == 200  # still on the POS
    api.emulator.decide(str(paying["id"]), "approved")
    (mo,) = api.merchant_orders()
    assert mo["status"] == "closed" and [p["status"] for p in mo["payments"]] == ["approved"]
    assert api("GET", ORDERS).status_code == 404  # consumed
    with pytest.raises(Exception, match="not in_process"):
        api.emulator.decide(str(paying["id"]), "rejected")


@pytest.mark.parametrize("mode", ["at_create", "at_scan", "at_payment"])
def test_two_phones_on_one_qr_both_pay_and_both_show(api_for, clock, mode):
    api = api_for(merchant_order=mode)
    api("PUT", ORDERS, json=order(clock))
    api.emulator.scan("POS001", phone="a")
    api.emulator.scan("POS001", phone="b")
    api.emulator.pay("POS001", "approved", phone="a")
    api.emulator.pay("POS001", "approved", phone="b")  # its checkout was open: Mercado Pago takes it [inferred]
    approved = [p for mo in api.merchant_orders() for p in mo["payments"] if p["status"] == "approved"]
    assert len(approved) == 2 and sum(p["transaction_amount"] for p in approved) == 20.0


def test_a_checkout_open_when_the_order_was_deleted_can_still_pay_it(api_for, clock):
    api = api_for()
    api("PUT", ORDERS, json=order(clock))
    api.emulator.scan("POS001", phone="late")
    assert api("DELETE", ORDERS).status_code == 204
    paid = api.emulator.pay("POS001", "approved", phone="late")
    assert paid["merchant_order"]["external_reference"] == "K1" and paid["payment"]["status"] == "approved"
    with pytest.raises(Exception, match="No associated order"):
        api.emulator.pay("POS001", "approved", phone="someone-new")  # nothing on the POS for a new scan


def test_over_and_partial_payments(api_for, clock):
    api = api_for()
    api("PUT", ORDERS, json=order(clock, total=10.0))
    part = api.emulator.pay("POS001", "approved", amount=400)["merchant_order"]
    assert (part["status"], part["order_status"], part["paid_amount"]) == ("opened", "partially_paid", 4.0)
    over = api.emulator.pay("POS001", "approved", amount=900)["merchant_order"]
    assert (over["status"], over["paid_amount"]) == ("closed", 13.0)


def test_an_in_store_refund_can_answer_in_process_and_happen_later(api_for, clock):
    api = api_for(refund_delay=30)
    api("PUT", ORDERS, json=order(clock))
    payment = api.emulator.pay("POS001", "approved")["payment"]
    answer = api("POST", f"/v1/payments/{payment['id']}/refunds", json={}, headers={"X-Idempotency-Key": "r1"})
    assert answer.status_code == 201 and answer.json()["status"] == "in_process"
    again = api("POST", f"/v1/payments/{payment['id']}/refunds", json={}, headers={"X-Idempotency-Key": "r1"})
    assert again.json() == answer.json()  # the same key: the same refund, not a second one
    assert api.merchant_orders()[0]["payments"][0]["status"] == "approved"
    clock.now += 31
    (refunded,) = api.merchant_orders()[0]["payments"]
    assert refunded["status"] == "refunded" and refunded["amount_refunded"] == 10.0


def create(api: Api, key: str, reference: str = "K1", amount: str = "10.00") -> requests.Response:
    body = {"type": "qr", "external_reference": reference, "total_amount": amount, "expiration_time": "PT10M",
            "config": {"qr": {"external_pos_id": "POS001", "mode": "static"}},
            "transactions": {"payments": [{"amount": amount}]}}
    return api("POST", "/v1/orders", json=body, headers={"X-Idempotency-Key": key})


def test_an_orders_refund_is_processing_first_then_refunded(api_for, clock):
    api = api_for(refund_delay=30)
    created = create(api, "k1").json()
    api.emulator.pay("POS001", "approved")
    refund = api("POST", f"/v1/orders/{created['id']}/refund", headers={"X-Idempotency-Key": "r1"}).json()
    assert (refund["status"], refund["status_detail"]) == ("processed", "accredited")
    assert [r["status"] for r in refund["transactions"]["refunds"]] == ["processing"]
    clock.now += 31
    done = api("GET", f"/v1/orders/{created['id']}").json()
    assert done["status"] == "refunded" and done["transactions"]["refunds"][0]["status"] == "processed"


def test_an_orders_payment_in_review_is_processing_until_decided_and_a_cancelled_order_takes_no_payment(api_for, clock):
    api = api_for()
    created = create(api, "k1").json()
    api.emulator.pay("POS001", "in_process")
    seen = api("GET", f"/v1/orders/{created['id']}").json()
    assert (seen["status"], seen["transactions"]["payments"][0]["status"]) == ("processing", "processing")
    assert api("POST", f"/v1/orders/{created['id']}/cancel").status_code == 409  # not cancellable in review
    api.emulator.decide(created["transactions"]["payments"][0]["id"], "rejected")
    assert api("GET", f"/v1/orders/{created['id']}").json()["status"] == "created"  # may be paid again
    assert api("POST", f"/v1/orders/{created['id']}/cancel").json()["status"] == "canceled"
    with pytest.raises(Exception, match="cannot be paid"):
        api.emulator.orders.pay(api.emulator.orders.orders()[0], "approved", None)


@pytest.mark.parametrize("site_id", ["MLM", "MCO", "MPE"])
def test_the_orders_api_answers_unsupported_site_where_it_is_not_served(api_for, clock, site_id):
    answer = create(api_for(site=site_id), "k1")
    assert answer.status_code == 400 and answer.json()["errors"][0]["code"] == "unsupported_site"


def test_an_idempotency_key_lives_24_hours(api_for, clock):
    api = api_for()
    first = create(api, "same").json()
    assert create(api, "same").json()["id"] == first["id"]  # a replay gets the order the key made
    other = create(api, "same", amount="11.00")
    assert other.status_code == 409 and other.json()["errors"][0]["code"] == "idempotency_key_already_used"
    clock.now += 24 * 3600 + 1
    assert create(api, "same").json()["id"] != first["id"]  # the key is forgotten: a replay creates anew


def test_the_orders_search_needs_dates_and_finds_by_reference(api_for, clock):
    from datetime import UTC, datetime, timedelta

    api = api_for()
    made = create(api, "k1", reference="FIND-ME").json()
    assert api("GET", "/v1/orders", params={"external_reference": "FIND-ME"}).json()["errors"][0]["code"] == (
        "missing_required_params")
    now = datetime.fromtimestamp(clock.now, UTC)
    params = {"external_reference": "FIND-ME", "begin_date": (now - timedelta(hours=1)).isoformat(),
              "end_date": (now + timedelta(hours=1)).isoformat()}
    found = api("GET", "/v1/orders", params=params).json()
    assert [o["id"] for o in found["data"]] == [made["id"]] and found["paging"]["total"] == "1"
