"""The ka-ching client puts exactly the documented stock import on the wire — the count under the
warehouse's ka-ching location (a variant's under its product: ``{loc: {product: {variant: n}}}``),
credentials as query parameters, ``adjustment=true`` for a relative one — reads ka-ching's answers into the
shared classification (an import "initiated" for fewer values than sent: UnconfirmedError, ka-ching's
message in it), keeps the api key out of every error text, and works against the sandbox ka-ching over
loopback (the import replaces, the adjustment adds, a variant's count lands in the variant; an unknown
location is answered 200 and its value fails where the relay cannot see it)."""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from tests.worker.sandbox.loopback import serving
from worker.destinations.kaching.client import KachingClient
from worker.destinations.kaching.client import initiated, values_in
from worker.errors import OutcomeUnknownError, PermanentError, TransientError, UnconfirmedError
from worker.sandbox.kaching.api import KachingApi
from worker.settings import Locations, Settings

API_KEY = "kaching-api-key-4711"
BASE = "https://kaching.example/"


def settings(base_url: str = BASE) -> Settings:
    return Settings(kaching_base_url=base_url, kaching_account="acme", kaching_integration="wms",
                    kaching_api_key=API_KEY, kaching_locations=Locations.parse("L", "nw=shop-1,se=shop-2"),
                    read_timeout=5)


@responses.activate
def test_an_absolute_count_replaces_and_a_relative_one_adjusts():
    responses.add(responses.POST, BASE + "imports/stock", status=200,
                  json={"status": "OK", "message": "Import of 1 stock value(s) initiated"})
    client = KachingClient(settings())
    reply = client.import_stock("nw", "A-1", 7)
    client.import_stock("se", "A-1", -2, adjustment=True)
    first, second = (call.request for call in responses.calls)
    assert json.loads(first.body) == {"shop-1": {"A-1": 7}}
    assert json.loads(second.body) == {"shop-2": {"A-1": -2}}
    assert parse_qs(urlsplit(first.url).query) == {"account": ["acme"], "integration": ["wms"],
                                                   "apikey": [API_KEY]}
    assert parse_qs(urlsplit(second.url).query)["adjustment"] == ["true"]
    assert first.headers["Content-Type"] == "application/json"
    assert reply.status == 200
    assert reply.ledger_result() == {"message": "Import of 1 stock value(s) initiated", "values_sent": 1,
                                     "status": 200}


@responses.activate
def test_a_variants_count_goes_under_its_product():
    responses.add(responses.POST, BASE + "imports/stock", status=200,
                  json={"status": "OK", "message": "Import of 1 stock value(s) initiated"})
    KachingClient(settings()).import_stock("nw", "P-100", 4, variant_id="P-100-M")
    assert json.loads(responses.calls[0].request.body) == {"shop-1": {"P-100": {"P-100-M": 4}}}


@pytest.mark.parametrize("message, sent, error", [
    ("Import of 2 stock value(s) initiated", {"shop-1": {"A": 1, "P": {"S": 1}}}, None),
    ("Import of 3 stock value(s) initiated", {"shop-1": {"A": 1, "P": {"S": 1}}}, None),
    ("Import of 1 stock value(s) initiated", {"shop-1": {"A": 1, "P": {"S": 1}}}, UnconfirmedError),
    ("Import of 0 stock value(s) initiated", {"shop-1": {"A": 1}}, UnconfirmedError),
    ("Import initiated", {"shop-1": {"A": 1}}, None),  # no number: nothing to compare
    ("", {"shop-1": {"A": 1}}, None),
])
@responses.activate
def test_an_import_initiating_fewer_values_than_sent_is_unconfirmed(message, sent, error):
    responses.add(responses.POST, BASE + "imports/stock", status=200,
                  json={"status": "OK", "message": message})
    client = KachingClient(settings())
    if error is None:
        assert client.post_import(sent).status == 200
        return
    with pytest.raises(error) as caught:
        client.post_import(sent)
    assert caught.value.status == 200 and caught.value.error_messages == [message]
    assert f"initiated {initiated(message)} of the {values_in(sent)} stock value(s) sent" in str(caught.value)


@pytest.mark.parametrize("status, body, error", [
    (400, {"status": "ERROR", "message": "Stock location(s) not found: shop-9",
           "stock_location_ids": ["shop-9"]},
     PermanentError),  # should ka-ching refuse an unknown location up front after all
    (401, {"status": "ERROR", "message": "Unauthorized"}, PermanentError),
    (200, {"status": "ERROR", "message": "no"}, PermanentError),
    (429, {"status": "ERROR", "message": "slow down"}, TransientError),
    (503, {"status": "ERROR", "message": "down"}, TransientError),
])
@responses.activate
def test_answers_are_classified(status, body, error):
    responses.add(responses.POST, BASE + "imports/stock", status=status, json=body,
                  headers={"Retry-After": "3"} if status == 429 else {})
    with pytest.raises(error) as caught:
        KachingClient(settings()).import_stock("nw", "A-1", 7)
    assert caught.value.destination == "kaching" and caught.value.status == status
    assert body["message"] in str(caught.value)
    if status == 429:
        assert caught.value.retry_after == 3


@responses.activate
def test_a_2xx_that_cannot_be_read_is_an_unknown_outcome_and_keeps_no_api_key():
    responses.add(responses.POST, BASE + "imports/stock", status=200, body=f"<html>{API_KEY}</html>")
    with pytest.raises(OutcomeUnknownError) as caught:
        KachingClient(settings()).import_stock("nw", "A-1", 7)
    assert API_KEY not in str(caught.value) and API_KEY not in repr(caught.value)


def test_a_refused_connection_names_no_url_and_no_api_key():
    with pytest.raises(TransientError) as caught:
        KachingClient(settings("http://127.0.0.1:9/")).import_stock("nw", "A-1", 7)
    chained = [caught.value, caught.value.__cause__, caught.value.__cause__.__context__]
    assert not any(API_KEY in str(exc) for exc in chained if exc is not None)


def test_an_unlisted_warehouse_is_refused_before_sending():
    with pytest.raises(PermanentError, match="KACHING_LOCATIONS"):
        KachingClient(settings()).import_stock("xx", "A-1", 7)


def test_against_the_sandbox_over_loopback():
    api = KachingApi(account="acme", integration="wms", api_key=API_KEY)
    with serving(api) as (base_url, control):
        client = KachingClient(settings(base_url))
        assert "credentials accepted" in client.check()
        client.import_stock("nw", "A-1", 10)
        client.import_stock("nw", "A-1", -3, adjustment=True)
        assert control.state()["stock"] == {"shop-1": {"A-1": 7}}
        bad = KachingClient(settings(base_url).replace(kaching_api_key="wrong-key-123"))
        with pytest.raises(PermanentError) as caught:
            bad.import_stock("nw", "A-1", 1)
        assert caught.value.status == 401
        client.import_stock("nw", "P-100", 5, variant_id="P-100-M")
        assert control.state()["variant_stock"] == {"shop-1": {"P-100": {"P-100-M": 5}}}
        unknown = KachingClient(settings(base_url).replace(
            kaching_locations=Locations.parse("L", "nw=UNKNOWN-1")))
        # ka-ching initiates it (200, the value counted): the relay cannot tell; only ka-ching's logs can
        assert unknown.import_stock("nw", "A-1", 1).status == 200
        state = control.state()
        assert state["stock"] == {"shop-1": {"A-1": 7}}
        assert [(f["location"], f["product"]) for f in state["failed"]] == [("UNKNOWN-1", "A-1")]
        control.set_faults(initiated_fewer=1)
        with pytest.raises(UnconfirmedError, match="initiated 1 of the 2"):
            client.post_import({"shop-1": {"A-1": 8, "B-1": 2}})
