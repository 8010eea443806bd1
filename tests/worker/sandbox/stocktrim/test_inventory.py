"""The fake StockTrim checks ``api-auth-id`` + ``api-auth-signature`` on every request (401 "Invalid auth
Id or signature"), sets stock on hand per location and the overall level as their sum, refuses a batch
with one bad item whole (400 ValidationProblemDetails naming the item's field), and records forecast runs
that ProcessingStatus reports."""
from __future__ import annotations

import json

import pytest
import requests

from tests.fixtures.clock import T0
from tests.worker.sandbox.loopback import serving
from worker.sandbox.exchange import Request
from worker.sandbox.stocktrim.api import StockTrimApi

HEADERS = {"api-auth-id": "tenant-42", "api-auth-signature": "Acme Tenant"}


@pytest.fixture
def api(clock) -> StockTrimApi:
    return StockTrimApi(auth_id="tenant-42", auth_signature="Acme Tenant", clock=clock, forecast_seconds=60)


def call(api, method, path, body=None, headers=HEADERS):
    raw = b"" if body is None else json.dumps(body).encode()
    return api.answer(Request(method=method, path=path, body=raw, headers=dict(headers)))


def inventory(*items, overall=True):
    return {"inventory": [dict(zip(("productId", "locationCode", "stockOnHand"), item)) for item in items],
            "updateOverallAllOnHandToBeSumOfLocation": overall}


def test_inventory_sets_levels_per_location_and_the_overall_sum(api):
    reply = call(api, "POST", "/api/Inventory", inventory(("A", "nw", 5), ("A", "se", 3), ("B", "nw", 0)))
    assert reply.status == 200 and reply.data["message"] == "Inventory set for 3 item(s)"
    call(api, "POST", "/api/Inventory", inventory(("A", "nw", 1)))
    state = api.snapshot()
    assert state["stock"] == {"nw": {"A": 1, "B": 0}, "se": {"A": 3}}
    assert state["overall_stock_on_hand"] == {"A": 4, "B": 0}
    assert state["inventory_posts"] == 2 and len(state["updates"]) == 4


def test_overall_is_left_alone_without_the_flag(api):
    call(api, "POST", "/api/Inventory", inventory(("A", "nw", 5), overall=False))
    assert api.snapshot()["overall_stock_on_hand"] == {}


@pytest.mark.parametrize("headers, detail", [
    ({}, "Invalid Authorization Headers"),
    ({"api-auth-id": "tenant-42"}, "Invalid Authorization Headers"),
    ({**HEADERS, "api-auth-signature": "Other"}, "Invalid auth Id or signature"),
    ({**HEADERS, "api-auth-id": "tenant-43"}, "Invalid auth Id or signature"),
])
def test_auth_headers_are_checked_on_every_route(api, headers, detail):
    for method, path in (("POST", "/api/Inventory"), ("POST", "/api/RunForecastCalculations"),
                         ("GET", "/api/ProcessingStatus")):
        reply = call(api, method, path, inventory(("A", "nw", 1)), headers=headers)
        assert (reply.status, reply.data["detail"], reply.data["status"]) == (401, detail, 401)
    assert api.snapshot()["inventory_posts"] == 0 and api.snapshot()["forecast_runs"]["count"] == 0


@pytest.mark.parametrize("bad, field", [
    ({"productId": "UNKNOWN-9", "locationCode": "nw", "stockOnHand": 1}, "productId"),
    ({"productId": "", "locationCode": "nw", "stockOnHand": 1}, "productId"),
    ({"productId": "C", "stockOnHand": 1}, "locationCode"),
    ({"productId": "C", "locationCode": "nw", "stockOnHand": "7"}, "stockOnHand"),
    ({"productId": "C", "locationCode": "nw", "stockOnHand": None}, "stockOnHand"),
    ({"productId": "C", "locationCode": "nw"}, "stockOnHand"),
    ({"productId": "C", "locationCode": "nw", "stockOnHand": True}, "stockOnHand"),
    ({"productId": "C", "locationCode": "nw", "stockOnHand": 1, "stockOnOrder": "x"}, "stockOnOrder"),
])
def test_one_bad_item_refuses_the_whole_batch_and_names_it(api, bad, field):
    body = inventory(("A", "nw", 5), ("B", "nw", 2))
    body["inventory"].insert(1, bad)
    reply = call(api, "POST", "/api/Inventory", body)
    assert reply.status == 400 and reply.data["status"] == 400
    assert list(reply.data["errors"]) == [f"inventory[1].{field}"]
    assert api.snapshot()["stock"] == {}


def test_negative_stock_and_unknown_fields_are_accepted(api):
    body = inventory(("A", "nw", -2))
    body["inventory"][0]["note"] = "ignored"
    assert call(api, "POST", "/api/Inventory", body).status == 200
    assert api.snapshot()["stock"] == {"nw": {"A": -2}}


@pytest.mark.parametrize("body", [[], {"inventory": None}, {"inventory": "A"},
                                  {"inventory": [], "updateOverallAllOnHandToBeSumOfLocation": "yes"}])
def test_malformed_requests_are_400(api, body):
    assert call(api, "POST", "/api/Inventory", body).status == 400


def test_forecast_runs_are_recorded_and_reported_while_processing(api, clock):
    assert call(api, "GET", "/api/ProcessingStatus").data["isProcessing"] is False
    reply = call(api, "POST", "/api/RunForecastCalculations")
    assert (reply.status, reply.data) == (201, None)
    clock.now += 30
    status = call(api, "GET", "/api/ProcessingStatus").data
    assert (status["isProcessing"], status["percentageComplete"]) == (True, 50)
    clock.now += 31
    assert call(api, "GET", "/api/ProcessingStatus").data["isProcessing"] is False
    call(api, "POST", "/api/runforecastcalculations")  # ASP.NET routes ignore case
    assert api.snapshot()["forecast_runs"] == {"count": 2, "times": [T0, T0 + 61]}


def test_over_loopback_with_an_empty_201_and_a_log_without_the_signature(api):
    with serving(api) as (base_url, control):
        posted = requests.post(base_url + "api/Inventory", json=inventory(("A", "nw", 5)), headers=HEADERS,
                               timeout=10)
        assert posted.status_code == 200 and posted.json()["message"] == "Inventory set for 1 item(s)"
        ran = requests.post(base_url + "api/RunForecastCalculations", headers=HEADERS, timeout=10)
        assert (ran.status_code, ran.content) == (201, b"")
        refused = requests.get(base_url + "api/ProcessingStatus", timeout=10)
        assert refused.status_code == 401 and refused.headers["Content-Type"].startswith("application/json")
        assert control.state()["stock"] == {"nw": {"A": 5}}
        log = control.requests()
        assert [e["status"] for e in log] == [200, 201, 401]
        assert "Acme Tenant" not in json.dumps(log) and log[0]["params"]["api-auth-id"] == "tenant-42"
