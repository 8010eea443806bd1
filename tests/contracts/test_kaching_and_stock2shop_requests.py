"""Every body the ka-ching and Stock2Shop clients build conforms to the JSON Schemas written from their
documents (tests/contracts/kaching-stock-import.schema.json, stock2shop.schema.json): ka-ching's stock
import (one count, a variant's count, an adjustment, batches — the variants of one product sharing its
object —, the empty check import) with its query; Stock2Shop's login and its products queue (one count,
a batch, each product the document's minimum with the count as the variant's qty and in its
qty_availability) with its query."""
from __future__ import annotations

import pytest

from tests.contracts.captured import batch, capture, counts
from tests.contracts.schemas import problems
from worker.destinations.kaching.client import KachingClient, values_in
from worker.destinations.kaching.operations import DESTINATION as KACHING
from worker.destinations.stock2shop.client import Stock2ShopClient
from worker.destinations.stock2shop.operations import DESTINATION as STOCK2SHOP
from worker.settings import Locations, Settings
from worker.store.catalog import CatalogRow

KACHING_BASE = "https://kaching.example/"
S2S_BASE = "https://s2s.example/"
SHIRT = [CatalogRow(f"4711-{size}", "P-100", f"P-100-{size}", "Shirt") for size in "SML"]


def kaching() -> KachingClient:
    return KachingClient(Settings(kaching_base_url=KACHING_BASE, kaching_account="acme",
                                  kaching_integration="wms", kaching_api_key="ka-key",
                                  kaching_locations=Locations.parse("L", "nw=shop-1,se=shop-2,xx=shop-1")))


def stock2shop() -> Stock2ShopClient:
    return Stock2ShopClient(Settings(stock2shop_base_url=S2S_BASE, stock2shop_username="relay",
                                     stock2shop_password="s2s-password", stock2shop_source_id="57",
                                     stock2shop_locations=Locations.parse("L", "nw=Main,se=South")))


KACHING_ANSWERS = {"imports/stock": lambda body: {
    "status": "OK", "message": f"Import of {values_in(body)} stock value(s) initiated"}}
KACHING_CASES = {
    "a count": lambda c: c.import_stock("nw", "123-45", 77),
    "a variant's count": lambda c: c.import_stock("nw", "P-100", 7, variant_id="P-100-M"),
    "an adjustment": lambda c: c.import_stock("se", "123-45", -7, adjustment=True),
    "a zero count": lambda c: c.import_stock("nw", "P-100-M", 0),
    "a batch of counts": lambda c: batch(KACHING, c, "level",
                                         counts(("nw", "A", 1), ("se", "B", 2), ("xx", "C", 3))),
    "a batch of adjustments": lambda c: batch(KACHING, c, "add", counts(("nw", "A", 1), ("xx", "A", -2))),
    "a batch of variants": lambda c: batch(KACHING, c, "level", counts(
        ("nw", SHIRT[0], 1), ("nw", "A", 4), ("nw", SHIRT[1], 2), ("se", SHIRT[2], 3))),
    "the check": lambda c: c.check(),
}


@pytest.mark.parametrize("case", KACHING_CASES)
def test_kaching_stock_imports_conform_to_the_document(case):
    client = kaching()
    (sent,) = capture(KACHING_BASE, KACHING_ANSWERS, lambda: KACHING_CASES[case](client))
    assert (sent.method, sent.path) == ("POST", "imports/stock")
    assert problems("kaching-stock-import#body", sent.body) == []
    assert problems("kaching-stock-import#query", sent.query) == []
    with_variants = problems("kaching-stock-import#variant_body", sent.body) == []
    assert with_variants == ("variant" in case)


def test_the_variants_of_one_product_share_its_object_in_a_batch():
    client = kaching()
    (sent,) = capture(KACHING_BASE, KACHING_ANSWERS, lambda: KACHING_CASES["a batch of variants"](client))
    assert sent.body == {"shop-1": {"P-100": {"P-100-S": 1, "P-100-M": 2}, "A": 4},
                         "shop-2": {"P-100": {"P-100-L": 3}}}


S2S_ANSWERS = {"v1/users/authenticate": {"system_user": {"id": 1, "token": "tok-1"}},
               "v1/products/queue": {"system_products": {"sync_product": 1}}}


def _queued(case) -> list:
    client = stock2shop()
    sent = capture(S2S_BASE, S2S_ANSWERS, lambda: case(client))
    login, *queued = sent
    assert (login.path, problems("stock2shop#authenticate", login.body)) == ("v1/users/authenticate", [])
    assert [q.path for q in queued] == ["v1/products/queue"]
    assert problems("stock2shop#queue_query", queued[0].query) == []
    return queued


S2S_CASES = {
    "a count": lambda c: c.queue_stock_level("nw", SHIRT[1], 7),
    "a count of a product without variants": lambda c: c.queue_stock_level(
        "se", CatalogRow("123", "123", "", "Chair", "false"), 0),
    "a batch of counts": lambda c: batch(STOCK2SHOP, c, "level", counts(
        ("nw", SHIRT[0], 1), ("se", SHIRT[1], 0), ("nw", CatalogRow("B", "B", "", "Table"), 5))),
}


@pytest.mark.parametrize("case", S2S_CASES)
def test_stock2shop_login_and_queue_query_conform_to_the_document(case):
    _queued(S2S_CASES[case])


@pytest.mark.parametrize("case", S2S_CASES)
def test_stock2shop_queued_products_are_the_documents_minimum_with_the_count(case):
    (queued,) = _queued(S2S_CASES[case])
    assert problems("stock2shop#queue", queued.body) == []
    assert problems("stock2shop#stock_levels", queued.body) == []
    for product in queued.body["system_products"]:
        variant = product["product"]["variants"]
        assert variant["qty"] == variant["qty_availability"][0]["qty"]
