"""Every request the StockTrim client builds is one StockTrim's own OpenAPI document knows, and every body
it sends is one of that document's models — checked with the field's own package,
``stocktrim-openapi-client`` (its generated models and the OpenAPI document it ships): a
``SetInventoryRequest`` (with its ``Inventory`` items) round-trips through the generated model's
``from_dict``/``to_dict`` to the very JSON sent (an unknown or misspelt name would be dropped), and
validates against the document's own schema (types, ``additionalProperties: false``).  So does a sales
order (``SalesOrderWithLineItemsRequestDto`` with ``SalesOrderRequestDto`` lines), whole or only its
missing lines after a read-back; and the sandbox StockTrim's answers parse with the matching response
models (``SalesOrderResponseDto``, ``ProductsResponseDto``) to the same JSON."""
from __future__ import annotations

from pathlib import Path

import pytest
import requests
import stocktrim_public_api_client as stocktrim_package
import yaml
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from stocktrim_public_api_client.generated.models import (
    ProductsRequestDto, ProductsResponseDto, SalesOrderResponseDto, SalesOrderWithLineItemsRequestDto,
    SetInventoryRequest)

from tests.contracts.captured import batch, capture, counts
from worker.destinations.stocktrim.client import StockTrimClient
from tests.worker.sandbox.loopback import serving
from worker.destinations.shipments import FinalDispatch, ShippedLine
from worker.destinations.stocktrim.operations import DESTINATION as STOCKTRIM
from worker.sandbox.stocktrim.api import StockTrimApi
from worker.settings import Locations, Settings
from worker.store.catalog import CatalogRow

BASE = "https://stocktrim.example/"
SPEC = yaml.safe_load((Path(stocktrim_package.__file__).parent / "stocktrim-openapi.yaml").read_text())
BODIES = {("POST", "api/Inventory"): "SetInventoryRequest",
          ("POST", "api/SalesOrdersBulk"): "SalesOrderWithLineItemsRequestDto",
          ("POST", "api/Products"): "ProductsRequestDto"}
MODELS = {"SetInventoryRequest": SetInventoryRequest,
          "SalesOrderWithLineItemsRequestDto": SalesOrderWithLineItemsRequestDto,
          "ProductsRequestDto": ProductsRequestDto}


def client() -> StockTrimClient:
    return StockTrimClient(Settings(stocktrim_base_url=BASE, stocktrim_auth_id="tenant-1",
                                    stocktrim_auth_signature="sig-1",
                                    stocktrim_locations=Locations.parse("L", "nw=NW,se=SE")))


def shipped(*, read_back_first=False) -> FinalDispatch:
    return FinalDispatch("TX-1", "se", "2024-05-14T07:12:45.000000Z", (
        ShippedLine("TX-1:1000", 1000, "4711-M", 12, CatalogRow("4711-M", "P-100", "P-100-M")),
        ShippedLine("TX-1:2000", 2000, "9", 1.5, CatalogRow.identity("9"))), read_back_first)


def sales_order(c, **kwargs):
    row = STOCKTRIM.row("dispatch.create")
    return row.send(c, {}, shipped(**kwargs))


# What GET api/SalesOrders answers in the read-back case: line 1000 is there, line 2000 is not.
READ_BACK = {"api/SalesOrders": [{"id": 1, "productId": "P-100-M", "externalReferenceId": "TX-1:1000",
                                  "orderDate": "2024-05-14T07:12:45.000000Z", "quantity": 12}]}

CASES = {
    "one count": lambda c: c.set_stock_on_hand("nw", "123-45", 77),
    "a zero count": lambda c: c.set_stock_on_hand("se", "P-100-M", 0),
    "a batch": lambda c: batch(STOCKTRIM, c, "level", counts(("nw", "A", 1), ("se", "B", 2), ("nw", "C", 0))),
    "a batch with catalog rows": lambda c: batch(STOCKTRIM, c, "level", counts(
        ("nw", CatalogRow("4711-M", "P-100", "P-100-M"), 1), ("se", CatalogRow("9", "CHAIR"), 2))),
    "a sales order": sales_order,
    "a sales order read back first": lambda c: sales_order(c, read_back_first=True),
    "a product from a catalog row": lambda c: c.set_product(
        STOCKTRIM.product(CatalogRow("4711-M", "P-100", "P-100-M", "Shirt, blue"))),
    "a product from a row without a title": lambda c: c.set_product(
        STOCKTRIM.product(CatalogRow.identity("9"))),
    "the forecast run": lambda c: c.run_forecast(),
    "the check": lambda c: c.check(),
}


def spec_validator(model: str) -> OAS30Validator:
    registry = Registry().with_resource("urn:stocktrim-openapi", Resource.opaque(SPEC))
    return OAS30Validator({"$ref": f"urn:stocktrim-openapi#/components/schemas/{model}"}, registry=registry)


@pytest.mark.parametrize("case", CASES)
def test_each_request_is_in_stocktrims_openapi_document_and_each_body_is_its_model(case):
    stocktrim = client()
    sent = capture(BASE, {"api/ProcessingStatus": {"isProcessing": False}, **READ_BACK},
                   lambda: CASES[case](stocktrim))
    assert sent
    for request in sent:
        operation = SPEC["paths"].get("/" + request.path, {}).get(request.method.lower())
        assert operation is not None, f"{request.method} /{request.path} is not in StockTrim's document"
        model = BODIES.get((request.method, request.path))
        if model is None:
            assert request.body is None, f"{request.method} /{request.path} sends a body no model describes"
            continue
        assert model in str(operation["requestBody"])
        assert MODELS[model].from_dict(request.body).to_dict() == request.body
        assert list(spec_validator(model).iter_errors(request.body)) == []


def test_the_model_check_catches_a_misspelt_name_and_a_wrong_type():
    """The checks above can fail: a name the model lacks is dropped by the round trip, a text count is
    refused by the document's schema."""
    misspelt = {"inventory": [{"productID": "A", "locationCode": "NW", "stockOnHand": 1}],
                "updateOverallAllOnHandToBeSumOfLocation": True}
    assert SetInventoryRequest.from_dict(misspelt).to_dict() != misspelt
    wrong_type = {"inventory": [{"productId": "A", "locationCode": "NW", "stockOnHand": "1"}]}
    assert list(spec_validator("SetInventoryRequest").iter_errors(wrong_type))


def test_a_sales_order_read_back_sends_only_the_missing_line():
    sent = capture(BASE, READ_BACK, lambda: sales_order(client(), read_back_first=True))
    assert [(r.method, r.path, r.query) for r in sent] == [
        ("GET", "api/SalesOrders", {"productId": "P-100-M"}), ("GET", "api/SalesOrders", {"productId": "9"}),
        ("POST", "api/SalesOrdersBulk", {})]
    at = "2024-05-14T07:12:45+00:00"
    assert sent[-1].body == {"orderDate": at, "locationCode": "SE", "saleOrderLineItems": [
        {"productId": "9", "orderDate": at, "quantity": 1.5, "externalReferenceId": "TX-1:2000",
         "locationCode": "SE"}]}


def test_the_sandboxes_answers_parse_with_the_response_models():
    """The sandbox StockTrim answers as StockTrim's document says: each answer of SalesOrdersBulk, GET
    SalesOrders and Products round-trips through its generated response model and validates against the
    document's schema."""
    with serving(StockTrimApi(auth_id="tenant-1", auth_signature="sig-1")) as (base_url, _):
        settings = Settings(stocktrim_base_url=base_url, stocktrim_auth_id="tenant-1",
                            stocktrim_auth_signature="sig-1",
                            stocktrim_locations=Locations.parse("L", "nw=NW,se=SE"))
        stocktrim = StockTrimClient(settings)
        at = "2024-05-14T07:12:45+00:00"
        posted = stocktrim.create_sales_order({"orderDate": at, "locationCode": "SE", "saleOrderLineItems": [
            {"productId": "A", "quantity": 2, "orderDate": at, "externalReferenceId": "T:1"}]})
        listed = stocktrim.sales_orders_of("A").data
        body = {"productId": "A", "productCodeReadable": "A", "name": "Chair"}
        assert ProductsRequestDto.from_dict(body).to_dict() == body
        assert stocktrim.set_product(body).status == 201
        assert stocktrim.set_product({**body, "name": "Chair, oak"}).status == 200  # upserted by productId
        products = requests.get(base_url + "api/Products", timeout=5,
                                headers={"api-auth-id": "tenant-1", "api-auth-signature": "sig-1"}).json()
    assert posted.status == 201 and len(listed) == 1 and [p["name"] for p in products] == ["Chair, oak"]
    for model, answer in [(SalesOrderResponseDto, posted.data), (SalesOrderResponseDto, listed[0]),
                          (ProductsResponseDto, products[0])]:
        wanted = {k: v for k, v in answer.items() if v is not None}
        assert {k: v for k, v in model.from_dict(answer).to_dict().items() if v is not None} == wanted
        assert list(spec_validator(model.__name__).iter_errors(answer)) == []
