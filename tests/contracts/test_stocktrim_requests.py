"""Every request the StockTrim client builds is one StockTrim's own OpenAPI document knows, and every body
it sends is one of that document's models — checked with the field's own package,
``stocktrim-openapi-client`` (its generated models and the OpenAPI document it ships): a
``SetInventoryRequest`` (with its ``Inventory`` items) round-trips through the generated model's
``from_dict``/``to_dict`` to the very JSON sent (an unknown or misspelt name would be dropped), and
validates against the document's own schema (types, ``additionalProperties: false``)."""
from __future__ import annotations

from pathlib import Path

import pytest
import stocktrim_public_api_client as stocktrim_package
import yaml
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from stocktrim_public_api_client.generated.models import SetInventoryRequest

from tests.contracts.captured import batch, capture, counts
from worker.destinations.stocktrim.client import StockTrimClient
from worker.destinations.stocktrim.operations import DESTINATION as STOCKTRIM
from worker.settings import Locations, Settings
from worker.store.catalog import CatalogRow

BASE = "https://stocktrim.example/"
SPEC = yaml.safe_load((Path(stocktrim_package.__file__).parent / "stocktrim-openapi.yaml").read_text())
BODIES = {("POST", "api/Inventory"): "SetInventoryRequest"}


def client() -> StockTrimClient:
    return StockTrimClient(Settings(stocktrim_base_url=BASE, stocktrim_auth_id="tenant-1",
                                    stocktrim_auth_signature="sig-1",
                                    stocktrim_locations=Locations.parse("L", "nw=NW,se=SE")))


CASES = {
    "one count": lambda c: c.set_stock_on_hand("nw", "123-45", 77),
    "a zero count": lambda c: c.set_stock_on_hand("se", "P-100-M", 0),
    "a batch": lambda c: batch(STOCKTRIM, c, "level", counts(("nw", "A", 1), ("se", "B", 2), ("nw", "C", 0))),
    "a batch with catalog rows": lambda c: batch(STOCKTRIM, c, "level", counts(
        ("nw", CatalogRow("4711-M", "P-100", "P-100-M"), 1), ("se", CatalogRow("9", "CHAIR"), 2))),
    "the forecast run": lambda c: c.run_forecast(),
    "the check": lambda c: c.check(),
}


def spec_validator(model: str) -> OAS30Validator:
    registry = Registry().with_resource("urn:stocktrim-openapi", Resource.opaque(SPEC))
    return OAS30Validator({"$ref": f"urn:stocktrim-openapi#/components/schemas/{model}"}, registry=registry)


@pytest.mark.parametrize("case", CASES)
def test_each_request_is_in_stocktrims_openapi_document_and_each_body_is_its_model(case):
    stocktrim = client()
    sent = capture(BASE, {"api/ProcessingStatus": {"isProcessing": False}}, lambda: CASES[case](stocktrim))
    assert sent
    for request in sent:
        operation = SPEC["paths"].get("/" + request.path, {}).get(request.method.lower())
        assert operation is not None, f"{request.method} /{request.path} is not in StockTrim's document"
        model = BODIES.get((request.method, request.path))
        if model is None:
            assert request.body is None, f"{request.method} /{request.path} sends a body no model describes"
            continue
        assert model in str(operation["requestBody"])
        assert SetInventoryRequest.from_dict(request.body).to_dict() == request.body
        assert list(spec_validator(model).iter_errors(request.body)) == []


def test_the_model_check_catches_a_misspelt_name_and_a_wrong_type():
    """The checks above can fail: a name the model lacks is dropped by the round trip, a text count is
    refused by the document's schema."""
    misspelt = {"inventory": [{"productID": "A", "locationCode": "NW", "stockOnHand": 1}],
                "updateOverallAllOnHandToBeSumOfLocation": True}
    assert SetInventoryRequest.from_dict(misspelt).to_dict() != misspelt
    wrong_type = {"inventory": [{"productId": "A", "locationCode": "NW", "stockOnHand": "1"}]}
    assert list(spec_validator("SetInventoryRequest").iter_errors(wrong_type))
