"""A StockTrim catalog import sends its new and changed rows as StockTrim products (POST /api/Products:
productId, productCodeReadable = the artno, name = the title), through StockTrim's gate, from each
worker's flow keeper (worker.delivery.product_sync): the real client against the sandbox StockTrim over
loopback, the store on fakeredis.  An unchanged row is not sent again; a product answered "later" stays
queued and is sent next round; a refused one is kept with StockTrim's message for a person."""
from __future__ import annotations

import pytest
import responses

from tests.fixtures.every_destination import every_destination_relay, every_destination_settings
from tests.worker.sandbox.loopback import serving
from worker.delivery.flow_keeper import DestinationKeeper
from worker.delivery.product_sync import ProductSender, sync_of
from worker.destinations.stocktrim.client import StockTrimClient
from worker.sandbox.faults import FaultPlan
from worker.sandbox.stocktrim.api import StockTrimApi
from worker.store.audit_log import AuditLog
from worker.support.catalog import import_catalog

HEADER = "artno,product_code,variant_code,title,active\n"
AUTH = {"stocktrim_auth_id": "tenant-1", "stocktrim_auth_signature": "sig-1"}


def make_relay(base_url):
    settings = every_destination_settings(stocktrim_base_url=base_url, read_timeout=2, **AUTH)
    relay = every_destination_relay(settings=settings)
    relay.clients["stocktrim"] = StockTrimClient(settings, redis=relay.redis, clock=relay.clock)
    return relay


def load(relay, text):
    return import_catalog(relay, AuditLog(relay.redis, relay.clock), "stocktrim", (HEADER + text).encode(),
                          source="c.csv", replace=False, actor="ann")


@pytest.fixture
def sandbox():
    with serving(StockTrimApi(auth_id="tenant-1", auth_signature="sig-1"), FaultPlan()) as running:
        yield running


def test_an_import_sends_its_new_and_changed_rows_as_products_once(sandbox):
    base_url, control = sandbox
    relay = make_relay(base_url)
    done = load(relay, "A-1,P-1,P-1-M,Shirt,\nB-2,P-2,,Chair,\n")
    assert done.products_queued == 2 and "2 product(s) queued for StockTrim" in done.message
    assert control.state()["products"] == {}  # sent by the flow keeper, not by the import
    DestinationKeeper(relay, "stocktrim").step()
    products = control.state()["products"]
    assert {pid: (p["productCodeReadable"], p["name"]) for pid, p in products.items()} == {
        "P-1-M": ("A-1", "Shirt"), "P-2": ("B-2", "Chair")}
    assert sync_of(relay, "stocktrim").counts() == {"pending": 0, "refused": 0}
    assert load(relay, "A-1,P-1,P-1-M,Shirt,\n").products_queued == 0  # unchanged: nothing to send
    assert load(relay, "A-1,P-1,P-1-M,Oak shirt,\n").products_queued == 1
    ProductSender(relay, "stocktrim").send_once()
    assert control.state()["products"]["P-1-M"]["name"] == "Oak shirt"
    posts = [r for r in control.requests() if r["path"].lower() == "/api/products"]
    assert len(posts) == 3


def test_a_product_answered_later_stays_queued_and_is_sent_next_round(sandbox):
    base_url, control = sandbox
    relay = make_relay(base_url)
    load(relay, "A-1,P-1,,Shirt,\n")
    control.set_faults(fail_rate=1.0)
    assert ProductSender(relay, "stocktrim").send_once() == 0
    assert sync_of(relay, "stocktrim").counts() == {"pending": 1, "refused": 0}
    control.set_faults(fail_rate=0.0)
    assert ProductSender(relay, "stocktrim").send_once() == 1
    assert list(control.state()["products"]) == ["P-1"]


@responses.activate
def test_a_refused_product_is_kept_with_stocktrims_message():
    base = "https://stocktrim.example/"
    responses.add(responses.POST, base + "api/Products", status=400, json={
        "title": "One or more validation errors occurred.", "status": 400,
        "errors": {"name": ["The field name must be a string with a maximum length of 100."]}})
    relay = make_relay(base)
    load(relay, "A-1,P-1,,Shirt,\n")
    assert ProductSender(relay, "stocktrim").send_once() == 0
    sync = sync_of(relay, "stocktrim")
    assert sync.counts() == {"pending": 0, "refused": 1}
    assert "maximum length of 100" in sync.refusals()["P-1"]["why"]
    load(relay, "A-1,P-1,,Short,\n")  # a newer import of the row queues it again
    assert sync.counts() == {"pending": 1, "refused": 0}
