"""The Stock2Shop client logs in once, queues exactly the document's minimum product plus the count — from
the artno's catalog row: the product code, its active flag and title, the variant's code and sku (the
product's code when the row names no variant), the count as the variant's qty and in its qty_availability
under the warehouse's Stock2Shop location — with ``?token=&source_id=`` (a row without a title is never
sent), and when its token expires logs in again — once for every worker, through Redis — and resends; the
token and the password never reach an error text; against the sandbox over loopback."""
from __future__ import annotations

import json
import threading
from urllib.parse import parse_qs, urlsplit

import fakeredis
import pytest
import responses

from tests.fixtures.clock import Clock
from tests.worker.sandbox.loopback import serving
from worker.destinations.stock2shop.client import Stock2ShopClient
from worker.destinations.stock2shop.tokens import TOKEN_KEY
from worker.errors import PermanentError, TransientError
from worker.sandbox.stock2shop.api import Stock2ShopApi
from worker.settings import Locations, Settings
from worker.store.catalog import CatalogRow

PASSWORD = "s2s-password-321"
BASE = "https://s2s.example/"


def settings(base_url: str = BASE) -> Settings:
    return Settings(stock2shop_base_url=base_url, stock2shop_username="relay", stock2shop_password=PASSWORD,
                    stock2shop_source_id="57", stock2shop_locations=Locations.parse("L", "nw=Main,se=South"),
                    read_timeout=5)


SHIRT_M = CatalogRow("4711-M", "P-100", "P-100-M", "Shirt", "true")
A_1 = CatalogRow("A-1", "A-1", "", "Chair")


def login_answer(token: str) -> dict:
    return {"system_user": {"id": 1, "token": token}}


@responses.activate
def test_login_then_queue_exactly_the_documented_product():
    responses.add(responses.POST, BASE + "v1/users/authenticate", json=login_answer("tok-secret-1"))
    responses.add(responses.POST, BASE + "v1/products/queue", json={"system_products": {"sync_product": 1}})
    client = Stock2ShopClient(settings(), redis=fakeredis.FakeRedis())
    reply = client.queue_stock_level("se", SHIRT_M, 4)
    client.queue_stock_level("nw", CatalogRow("A-1", "A-1", "", "Chair", "false"), 0)
    login, queue, single = (call.request for call in responses.calls)
    assert json.loads(login.body) == {"system_user_auth": {"username": "relay", "password": PASSWORD}}
    assert parse_qs(urlsplit(queue.url).query) == {"token": ["tok-secret-1"], "source_id": ["57"]}
    assert json.loads(queue.body) == {"system_products": [{
        "source": {"source_id": "57", "source_product_code": "P-100", "product_active": "true",
                   "sync_token": "0", "fetch_token": "0"},
        "product": {"title": "Shirt",
                    "variants": {"source_variant_code": "P-100-M", "sku": "P-100-M", "qty": 4,
                                 "qty_availability": [{"description": "South", "qty": 4}]}}}]}
    assert json.loads(single.body)["system_products"][0] == {
        "source": {"source_id": "57", "source_product_code": "A-1", "product_active": "false",
                   "sync_token": "0", "fetch_token": "0"},
        "product": {"title": "Chair", "variants": {"source_variant_code": "A-1", "sku": "A-1", "qty": 0,
                                                   "qty_availability": [{"description": "Main", "qty": 0}]}}}
    assert reply.ledger_result() == {"sync_product": 1, "status": 200}
    assert "tok-secret-1" not in json.dumps(reply.ledger_result())


@responses.activate
def test_a_refused_token_means_one_login_and_one_resend():
    responses.add(responses.POST, BASE + "v1/users/authenticate", json=login_answer("tok-2"))
    responses.add(responses.POST, BASE + "v1/products/queue", status=401, json={"errors": ["token expired"]})
    responses.add(responses.POST, BASE + "v1/products/queue", json={"system_products": {"sync_product": 1}})
    store = fakeredis.FakeRedis()
    store.set(TOKEN_KEY, "tok-1")  # another worker's login, now expired
    Stock2ShopClient(settings(), redis=store).queue_stock_level("nw", A_1, 4)
    tokens = [parse_qs(urlsplit(c.request.url).query).get("token") for c in responses.calls]
    assert tokens == [["tok-1"], None, ["tok-2"]] and store.get(TOKEN_KEY) == b"tok-2"


@responses.activate
def test_a_fresh_token_refused_too_is_transient_and_bad_credentials_permanent():
    responses.add(responses.POST, BASE + "v1/users/authenticate", json=login_answer("tok-new-77"))
    responses.add(responses.POST, BASE + "v1/products/queue", status=401, json={"errors": ["invalid token"]})
    store = fakeredis.FakeRedis()
    with pytest.raises(TransientError) as caught:
        Stock2ShopClient(settings(), redis=store).queue_stock_level("nw", A_1, 4)
    assert "tok-new-77" not in str(caught.value)
    responses.replace(responses.POST, BASE + "v1/users/authenticate", status=401,
                      json={"errors": [f"invalid username or password {PASSWORD}"]})
    store.delete(TOKEN_KEY)
    with pytest.raises(PermanentError) as refused:
        Stock2ShopClient(settings(), redis=store).queue_stock_level("nw", A_1, 4)
    assert refused.value.status == 401 and PASSWORD not in str(refused.value)


def test_an_expired_token_costs_one_login_for_many_threads_and_processes():
    clock = Clock()
    api = Stock2ShopApi(username="relay", password=PASSWORD, source_id="57", token_ttl=60, max_rps=0,
                        clock=clock)
    store = fakeredis.FakeRedis()
    with serving(api) as (base_url, control):
        api.products.process([{"source": {"source_product_code": f"P{i}"}, "product": {
            "title": f"P{i}", "variants": {"source_variant_code": f"P{i}", "sku": f"P{i}"}}}
            for i in range(16)])
        # Two "processes" (clients) sharing one store, eight threads each.
        clients = [Stock2ShopClient(settings(base_url), redis=store) for _ in range(2)]
        assert "source 57 listed" in clients[0].check()
        clock.now += 61  # the token expired
        errors = []

        def send(i):
            try:
                clients[i % 2].queue_stock_level("nw", CatalogRow(f"P{i}", f"P{i}", "", f"P{i}"), i)
            except Exception as exc:  # noqa: BLE001 — collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        state = control.state()
    assert errors == []
    assert len(state["authentications"]) == 2  # the check's login, then ONE after the expiry
    assert state["stock"]["Main"] == {f"P{i}": i for i in range(16)}


def test_a_row_without_a_title_is_never_sent():
    with responses.RequestsMock() as nothing_sent:
        with pytest.raises(PermanentError, match="no title"):
            Stock2ShopClient(settings(), redis=fakeredis.FakeRedis()).queue_stock_level(
                "nw", CatalogRow("A-1", "A-1"), 4)
        assert len(nothing_sent.calls) == 0
