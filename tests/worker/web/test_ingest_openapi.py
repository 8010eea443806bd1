"""The published contract is the validation: /openapi.json is a valid OpenAPI 3.1 document (checked by
openapi-spec-validator), generated from the marshmallow schemas — every example in examples/ validates
against it, the invalid one fails on the same fields marshmallow names, a changed limit in a schema
changes the document, and the door's real answers match the answer schemas it publishes."""
from __future__ import annotations

import json

import pytest
import referencing
import referencing.jsonschema
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from tasks.events import OPERATIONS, InvalidEvent, validate_event
from tests.worker.web.conftest import EXAMPLES, example

DOC = "urn:wms-relay:ingest-openapi"


def validator_for(document: dict, component: str) -> Draft202012Validator:
    resource = referencing.Resource.from_contents(document,
                                                  default_specification=referencing.jsonschema.DRAFT202012)
    registry = referencing.Registry().with_resource(DOC, resource)
    return Draft202012Validator({"$ref": f"{DOC}#/components/schemas/{component}"}, registry=registry,
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def document(tmp_path_factory) -> dict:
    from tests.worker.web.conftest import Door

    answer = Door(tmp_path_factory.mktemp("openapi")).client.get("/openapi.json")
    assert answer.status_code == 200
    return answer.get_json()


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_operation_has_its_path_and_schema(document):
    assert set(OPERATIONS) <= set(document["components"]["schemas"])
    assert {f"/v1/events/{name}" for name in OPERATIONS} <= set(document["paths"])
    assert "/v1/events/{operation}/{key}" in document["paths"] and "/healthz" in document["paths"]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.*.json")), ids=lambda p: p.name)
def test_every_example_validates_against_the_document(document, path):
    operation = path.name[: -len(".json")]
    errors = [e.message for e in validator_for(document, operation).iter_errors(json.loads(path.read_text()))]
    assert errors == []


def test_the_invalid_example_fails_on_the_fields_marshmallow_names(document):
    event = json.loads((EXAMPLES / "invalid-receipt.json").read_text())
    with pytest.raises(InvalidEvent) as caught:
        validate_event("receipt.create", event)
    flagged = set()
    for error in validator_for(document, "receipt.create").iter_errors(event):
        path = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "required":  # reported at the object: name the missing field
            path = ".".join(filter(None, [path, error.message.split("'")[1]]))
        if error.validator == "additionalProperties":
            path = ".".join(filter(None, [path, error.message.split("'")[1]]))
        flagged.add(path)
    assert flagged == set(caught.value.messages)


def test_the_schemas_limits_are_read_from_the_fields(document):
    from tasks.schemas.common import MAX_INT
    from tasks.schemas.dispatch import MAX_PACKAGES

    create = document["components"]["schemas"]["dispatch.create"]["properties"]
    assert create["packages"]["maxItems"] == MAX_PACKAGES
    assert create["transaction_id"]["maxLength"] == 128
    assert create["order_type"]["enum"] == ["SO", "PRO", "TO"]
    assert create["external_reference"]["type"] == ["string", "null"]
    update = document["components"]["schemas"]["dispatch.update"]
    assert update["properties"]["dispatch_id"]["not"] == {} and update["additionalProperties"] is False
    stock = document["components"]["schemas"]["stock.adjust"]["properties"]
    assert stock["quantity"]["minimum"] == -MAX_INT and stock["type"]["enum"] == ["absolute", "relative"]


def test_a_field_the_schema_forbids_fails_both_ways(document):
    event = example("dispatch.update", dispatch_id=17)
    with pytest.raises(InvalidEvent):
        validate_event("dispatch.update", event)
    assert list(validator_for(document, "dispatch.update").iter_errors(event))


def test_the_doors_answers_match_the_published_answer_schemas(document, door):
    valid = door.post("stock.adjust", example("stock.adjust")).get_json()
    mixed = door.post("stock.adjust", [example("stock.adjust", event_id="x"), {"nope": 1}]).get_json()
    problem = door.post("stock.adjust", "{not json").get_json()
    view = door.client.get("/v1/events/stock.adjust/x").get_json()
    health = door.client.get("/healthz").get_json()
    for component, body in [("BatchAnswer", valid), ("BatchAnswer", mixed), ("Problem", problem),
                            ("EventView", view), ("Health", health)]:
        assert [e.message for e in validator_for(document, component).iter_errors(body)] == [], component
