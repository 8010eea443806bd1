"""The StockTrim client puts exactly the documented inventory request on the wire (both auth headers,
productId/locationCode/stockOnHand, overall = sum of locations), reads ProblemDetails refusals into
permanent errors naming the field, keeps the signature out of error texts, and against the sandbox
StockTrim over loopback sets stock on hand; the forecast run is triggered by the scheduler at most once
per period and only after inventory changed."""
from __future__ import annotations

import json

import fakeredis
import pytest
import responses

from tests.fixtures.clock import Clock
from tests.worker.sandbox.loopback import serving
from worker.destinations.stocktrim.client import StockTrimClient
from worker.destinations.stocktrim.forecast import ForecastRuns
from worker.errors import PermanentError, TransientError
from worker.sandbox.stocktrim.api import StockTrimApi
from worker.settings import Locations, Settings

SIGNATURE = "Tenant Signature 99"
BASE = "https://stocktrim.example/"


def settings(base_url: str = BASE) -> Settings:
    return Settings(stocktrim_base_url=base_url, stocktrim_auth_id="tenant-1",
                    stocktrim_auth_signature=SIGNATURE,
                    stocktrim_locations=Locations.parse("L", "nw=NW,se=SE"), read_timeout=5,
                    stocktrim_forecast_every_minutes=60)


@responses.activate
def test_stock_on_hand_per_location_on_the_wire():
    responses.add(responses.POST, BASE + "api/Inventory", status=200, json={"id": 0, "message": "ok"})
    reply = StockTrimClient(settings()).set_stock_on_hand("se", "A-1", 12)
    (call,) = responses.calls
    assert json.loads(call.request.body) == {
        "inventory": [{"productId": "A-1", "locationCode": "SE", "stockOnHand": 12}],
        "updateOverallAllOnHandToBeSumOfLocation": True}
    assert call.request.headers["api-auth-id"] == "tenant-1"
    assert call.request.headers["api-auth-signature"] == SIGNATURE
    assert reply.ledger_result() == {"items": 1, "status": 200}


@responses.activate
def test_a_validation_problem_is_permanent_and_names_the_field():
    responses.add(responses.POST, BASE + "api/Inventory", status=400, json={
        "type": "about:blank", "title": "One or more validation errors occurred.", "status": 400,
        "errors": {"inventory[0].productId": ["unknown product"]}})
    with pytest.raises(PermanentError, match=r"inventory\[0\].productId: unknown product"):
        StockTrimClient(settings()).set_stock_on_hand("nw", "UNKNOWN-1", 1)


@responses.activate
def test_bad_auth_is_permanent_and_a_5xx_transient_without_the_signature():
    responses.add(responses.POST, BASE + "api/Inventory", status=401,
                  json={"title": "Unauthorized", "detail": f"Invalid auth Id or signature {SIGNATURE}"})
    responses.add(responses.POST, BASE + "api/Inventory", status=502, body="bad gateway")
    client = StockTrimClient(settings())
    with pytest.raises(PermanentError) as refused:
        client.set_stock_on_hand("nw", "A", 1)
    with pytest.raises(TransientError):
        client.set_stock_on_hand("nw", "A", 1)
    assert SIGNATURE not in str(refused.value) and "Invalid auth Id" in str(refused.value)


def test_forecast_runs_at_most_once_per_period_and_only_after_a_change():
    api, clock = StockTrimApi(auth_id="tenant-1", auth_signature=SIGNATURE), Clock()
    store = fakeredis.FakeRedis()
    with serving(api) as (base_url, control):
        client = StockTrimClient(settings(base_url), redis=store, clock=clock)
        runs = ForecastRuns.from_settings(settings(base_url), redis=store, clock=clock)
        assert runs.run_if_due() is False  # nothing changed yet
        client.set_stock_on_hand("nw", "A-1", 5)
        client.set_stock_on_hand("se", "A-1", 2)
        assert runs.run_if_due() is True and runs.run_if_due() is False
        assert control.state()["overall_stock_on_hand"] == {"A-1": 7}
        clock.now += 3600  # a period later, but nothing changed since: no run
        assert runs.run_if_due() is False
        client.set_stock_on_hand("nw", "A-1", 6)
        clock.now += 1
        assert runs.run_if_due() is True
        assert control.state()["forecast_runs"]["count"] == 2
        assert "credentials accepted" in client.check()


@responses.activate
def test_a_failed_forecast_trigger_is_tried_again_a_minute_later():
    responses.add(responses.POST, BASE + "api/Inventory", status=200, json={})
    responses.add(responses.POST, BASE + "api/RunForecastCalculations", status=503, json={})
    responses.add(responses.POST, BASE + "api/RunForecastCalculations", status=201, body="")
    clock, store = Clock(), fakeredis.FakeRedis()
    StockTrimClient(settings(), redis=store, clock=clock).set_stock_on_hand("nw", "A", 1)
    runs = ForecastRuns.from_settings(settings(), redis=store, clock=clock)
    assert runs.run_if_due() is False
    clock.now += 30
    assert runs.run_if_due() is False  # not on every tick
    clock.now += 31
    assert runs.run_if_due() is True
    assert [c.request.url for c in responses.calls].count(BASE + "api/RunForecastCalculations") == 2


def test_a_sales_orders_ledger_summary_stays_small():
    from worker.destinations.stocktrim.sales_orders import (
        KEPT_REFERENCES, SalesLine, SalesOrder, order_body, summary)

    order = SalesOrder("NW", "2024-05-14T07:12:45+00:00",
                       tuple(SalesLine(f"T:{n}", "A", "A", 1) for n in range(5000)))
    kept = summary(order, order.lines[:3], read_back=True)
    assert (kept["lines"], kept["sent"], kept["found"]) == (5000, 3, 4997)
    assert kept["references"] == [f"T:{n}" for n in range(KEPT_REFERENCES)]
    assert len(order_body(order)["saleOrderLineItems"]) == 5000  # the request carries every line
