"""The fake StockTrim's sales orders and products, strict where StockTrim's documents are silent: every
line of SalesOrdersBulk is stored — a repeated externalReferenceId too, as a second sale — and
``/_sandbox/state`` lists such duplicates; GET SalesOrders answers per product; a bad line refuses the
whole order (400 naming the line's field), nothing stored; DELETE SalesOrders/Range removes a range;
Products upserts by productId (201 new, 200 known)."""
from __future__ import annotations

import json

import pytest

from worker.sandbox.exchange import Request
from worker.sandbox.stocktrim.api import StockTrimApi

HEADERS = {"api-auth-id": "tenant-42", "api-auth-signature": "Acme Tenant"}
AT = "2024-05-14T07:12:45+00:00"


@pytest.fixture
def api() -> StockTrimApi:
    return StockTrimApi(auth_id="tenant-42", auth_signature="Acme Tenant")


def call(api, method, path, body=None, query=""):
    raw = b"" if body is None else json.dumps(body).encode()
    return api.answer(Request(method=method, path=path, query=query, body=raw, headers=dict(HEADERS)))


def order(*lines, location="NW"):
    return {"orderDate": AT, "locationCode": location, "saleOrderLineItems": [
        {"productId": p, "orderDate": AT, "quantity": q, "externalReferenceId": ref} for ref, p, q in lines]}


def test_every_line_is_stored_and_a_repeated_reference_is_a_second_sale(api):
    first = call(api, "POST", "/api/SalesOrdersBulk", order(("T:1", "A", 2), ("T:2", "B", 1)))
    assert first.status == 201 and first.data["externalReferenceId"] == "T:1"
    assert call(api, "POST", "/api/SalesOrdersBulk", order(("T:1", "A", 2))).status == 201
    state = api.snapshot()
    assert state["sales"] == {"NW": {"A": 4, "B": 1}}
    assert state["duplicated_references"] == {"T:1": 2}
    assert state["sales_order_posts"] == 2
    listed = call(api, "GET", "/api/SalesOrders", query="productId=A").data
    assert [(line["externalReferenceId"], line["quantity"]) for line in listed] == [("T:1", 2), ("T:1", 2)]
    assert len(call(api, "GET", "/api/SalesOrders").data) == 3


@pytest.mark.parametrize("line, field", [
    ({"orderDate": AT, "quantity": 1}, "saleOrderLineItems[0].productId"),
    ({"productId": "A", "orderDate": AT, "quantity": -1}, "saleOrderLineItems[0].quantity"),
    ({"productId": "A", "orderDate": AT, "quantity": "1"}, "saleOrderLineItems[0].quantity"),
    ({"productId": "A", "orderDate": "yesterday", "quantity": 1}, "saleOrderLineItems[0].orderDate"),
    ({"productId": "UNKNOWN-1", "orderDate": AT, "quantity": 1}, "saleOrderLineItems[0].productId"),
])
def test_a_bad_line_refuses_the_whole_order_naming_its_field(api, line, field):
    body = {"orderDate": AT, "saleOrderLineItems": [line]}
    answer = call(api, "POST", "/api/SalesOrdersBulk", body)
    assert answer.status == 400 and field in answer.data["errors"]
    assert api.snapshot()["sales_lines"] == []


def test_a_range_is_deleted_and_products_are_upserted_by_product_id(api):
    call(api, "POST", "/api/SalesOrdersBulk", order(("T:1", "A", 2), ("T:2", "B", 1)))
    gone = call(api, "DELETE", "/api/SalesOrders/Range",
                query="fromDate=2024-05-01T00:00:00Z&toDate=2024-06-01T00:00:00Z&productId=A")
    assert gone.status == 200 and api.snapshot()["sales"] == {"NW": {"B": 1}}
    assert call(api, "DELETE", "/api/SalesOrders/Range", query="fromDate=x").status == 400
    assert call(api, "POST", "/api/Products", {"productId": "A", "name": "Chair"}).status == 201
    again = call(api, "POST", "/api/Products", {"productId": "A", "name": "Oak chair"})
    assert again.status == 200 and again.data["name"] == "Oak chair"
    assert list(api.snapshot()["products"]) == ["A"]
    assert call(api, "POST", "/api/Products", {"name": "no id"}).status == 400
