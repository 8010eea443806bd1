"""The fake ka-ching stock import answers like ka-ching's "Stock" import page: all three credentials as
query parameters, checked; POST replaces, ``adjustment=true`` adds, DELETE removes; a malformed body is
refused whole; success is 200 "Import of N stock value(s) initiated", N the values parsed — and, as strict as
the document allows, an import to a stock location that does not exist is initiated too (200, counted in N)
and its values then fail: never applied, listed under ``failed``; the switch ``initiated_fewer`` leaves an
import's last value unparsed (N one less, the value under ``failed``)."""
from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
import requests

from tests.worker.sandbox.loopback import serving
from worker.sandbox.exchange import Request
from worker.sandbox.kaching.api import KachingApi
from worker.sandbox.faults import FaultPlan

AUTH = {"account": "acme", "integration": "wms", "apikey": "kaching-key-123"}
NOW = 1_700_000_000.0


@pytest.fixture
def api() -> KachingApi:
    return KachingApi(account="acme", integration="wms", api_key="kaching-key-123", clock=lambda: NOW)


def call(api, body, method="POST", **query):
    params = {**AUTH, **query}
    params = {k: v for k, v in params.items() if v is not None}
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = api.answer(Request(method=method, path="/imports/stock", query=urlencode(params), body=raw))
    return reply.status, reply.data


def test_import_replaces_and_counts_values(api):
    body = {"shop-1": {"A": 7, "B": 3, "C": {"red": 2, "blue": 5}}}
    assert call(api, body) == (200, {"status": "OK", "message": "Import of 4 stock value(s) initiated"})
    one = {"status": "OK", "message": "Import of 1 stock value(s) initiated"}
    assert call(api, {"shop-1": {"A": 4}}) == (200, one)
    state = api.snapshot()
    assert state["stock"] == {"shop-1": {"A": 4, "B": 3}}
    assert state["variant_stock"] == {"shop-1": {"C": {"red": 2, "blue": 5}}}
    assert [e["type"] for e in state["events"]] == ["external_reset"] * 5 and state["imports"] == 2


def test_adjustment_adds_and_starts_from_zero(api):
    call(api, {"shop-1": {"A": 7}})
    assert call(api, {"shop-1": {"A": -2, "NEW": 3}}, adjustment="true")[0] == 200
    assert api.snapshot()["stock"] == {"shop-1": {"A": 5, "NEW": 3}}
    assert api.snapshot()["events"][-1]["type"] == "external_adjustment"
    call(api, {"shop-1": {"A": 1}}, adjustment="false")  # explicit false: a replace
    assert api.snapshot()["stock"]["shop-1"]["A"] == 1


def test_delete_removes_records_and_is_not_a_zero(api):
    call(api, {"shop-1": {"A": 7, "B": 0, "C": {"red": 1, "blue": 1}}})
    status, data = call(api, {"shop-1": {"A": 0, "C": {"red": 0}, "NEVER": 0}}, method="DELETE")
    assert status == 200 and data["message"] == "Deletion of 3 stock value(s) initiated"
    state = api.snapshot()
    assert state["stock"] == {"shop-1": {"B": 0}}  # B was set to 0: it stays, at 0
    assert state["variant_stock"] == {"shop-1": {"C": {"blue": 1}}}


@pytest.mark.parametrize("changes", [{"apikey": "wrong"}, {"apikey": None}, {"account": "other"},
                                     {"integration": None}, {"account": ""}])
def test_every_credential_is_checked(api, changes):
    status, data = call(api, {"shop-1": {"A": 1}}, **changes)
    assert status == 401 and data["status"] == "ERROR"
    assert api.snapshot()["stock"] == {}


def test_an_unknown_location_is_initiated_and_its_values_fail_unapplied(api):
    status, data = call(api, {"shop-1": {"A": 1}, "UNKNOWN-shop": {"A": 2, "B": {"red": 3}}})
    assert (status, data) == (200, {"status": "OK", "message": "Import of 3 stock value(s) initiated"})
    state = api.snapshot()
    assert state["stock"] == {"shop-1": {"A": 1}} and state["variant_stock"] == {}
    assert [(f["location"], f["product"], f["variant"], f["count"]) for f in state["failed"]] == [
        ("UNKNOWN-shop", "A", None, 2), ("UNKNOWN-shop", "B", "red", 3)]
    assert all("does not exist" in f["reason"] for f in state["failed"])


def test_the_initiated_fewer_switch_leaves_the_last_value_unparsed_and_unapplied(api):
    plan = FaultPlan(initiated_fewer=1)
    body = json.dumps({"shop-1": {"A": 1, "B": {"red": 2, "blue": 3}}}).encode()
    request = Request(method="POST", path="/imports/stock", query=urlencode(AUTH), body=body)
    reply, fault = api.answer_under(request, plan)
    assert (reply.status, reply.data["message"], fault) == (200, "Import of 2 stock value(s) initiated",
                                                            "initiated_fewer")
    state = api.snapshot()
    assert state["variant_stock"] == {"shop-1": {"B": {"red": 2}}} and state["stock"] == {"shop-1": {"A": 1}}
    assert [(f["product"], f["variant"], f["reason"].split(" (")[0]) for f in state["failed"]] == [
        ("B", "blue", "not parsed")]
    assert api.answer_under(Request(method="POST", path="/imports/stock", query=urlencode(AUTH), body=b"{}"),
                            plan)[1] is None  # nothing to leave out of an empty import
    reply, fault = api.answer_under(request, FaultPlan())
    assert (reply.data["message"], fault) == ("Import of 3 stock value(s) initiated", None)


@pytest.mark.parametrize("body", [b"not json", b"", [1, 2], {"shop-1": 5}, {"shop-1": {"A": "7"}},
                                  {"shop-1": {"A": True}}, {"shop-1": {"A": None}},
                                  {"shop-1": {"A": {"red": "1"}}}, {"": {"A": 1}}, {"shop-1": {"": 1}}])
def test_malformed_bodies_are_refused(api, body):
    status, data = call(api, body)
    assert status == 400 and data["message"].startswith("Invalid stock import")
    assert api.snapshot()["imports"] == 0


def test_adjustment_must_be_true_or_false(api):
    assert call(api, {"shop-1": {"A": 1}}, adjustment="yes")[0] == 400


def test_empty_import_is_the_harmless_check(api):
    assert call(api, {}) == (200, {"status": "OK", "message": "Import of 0 stock value(s) initiated"})


def test_other_paths_and_verbs_are_404(api):
    assert api.answer(Request(method="GET", path="/imports/stock", query=urlencode(AUTH))).status == 404
    assert api.answer(Request(method="POST", path="/imports/products", query=urlencode(AUTH))).status == 404


def test_over_loopback_with_faults_and_a_log_without_the_key(api):
    with serving(api) as (base_url, control):
        url = base_url + "imports/stock"
        answer = requests.post(url, params=AUTH, json={"shop-1": {"A": 7}}, timeout=10)
        assert answer.status_code == 200 and answer.json()["status"] == "OK"
        assert requests.delete(url, params=AUTH, json={"shop-1": {"A": 0}}, timeout=10).status_code == 200
        control.set_faults(fail_rate=1.0)
        failed = requests.post(url, params=AUTH, json={"shop-1": {"A": 9}}, timeout=10)
        assert failed.status_code == 500 and failed.json()["status"] == "ERROR"
        control.set_faults(fail_rate=0, throttle_rate=1.0)
        throttled = requests.post(url, params=AUTH, json={"shop-1": {"A": 9}}, timeout=10)
        assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
        assert control.state()["stock"] == {}  # the faulted requests were not applied
        log = control.requests()
        assert [e["status"] for e in log] == [200, 200, 500, 429]
        assert "kaching-key-123" not in json.dumps(log) and log[0]["params"]["stock"] == {"shop-1": {"A": 7}}
        control.reset()
        assert control.requests() == [] and control.faults() == FaultPlan().as_dict()
