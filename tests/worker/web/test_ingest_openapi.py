"""The published contract is the validation: /openapi.json is a valid OpenAPI 3.1 document (checked by
openapi-spec-validator), generated from the marshmallow schemas — every example in examples/ validates
against it, the invalid one fails on the same fields marshmallow names, a changed limit in a schema
changes the document, and the door's real answers match the answer schemas it publishes.  It names its
servers and tags, shows each operation's example file and the door's real answers to it, and documents
exactly the statuses each route answers (each driven out of the app)."""
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


# -- servers, tags, examples ----------------------------------------------------------------------------

def test_the_document_names_its_servers_and_tags_every_route(document):
    assert document["servers"][0]["url"] == "/"  # the door that served it
    assert any(s["url"].startswith("http://127.0.0.1:") for s in document["servers"])
    tags = {tag["name"] for tag in document["tags"]}
    used = {tag for item in document["paths"].values() for op in item.values() for tag in op["tags"]}
    assert used == tags


def test_each_operation_shows_its_example_file_and_what_the_door_answers_for_it(document, tmp_path):
    from tests.worker.web.conftest import Door

    for name in OPERATIONS:
        post = document["paths"][f"/v1/events/{name}"]["post"]
        body = post["requestBody"]["content"]["application/json"]
        assert body["examples"]["example"]["value"] == example(name)
        shown = {status: post["responses"][status]["content"]["application/json"]["example"]
                 for status in ("200", "202")}
        door = Door(tmp_path / name)  # a fresh store: a new key, as the documented answers assume
        dry = door.client.post(f"/v1/events/{name}?dry_run=true", json=example(name))
        assert dry.get_json() == shown["200"]
        assert door.post(name, example(name)).get_json() == shown["202"]
    receipt = document["paths"]["/v1/events/receipt.create"]["post"]
    invalid = json.loads((EXAMPLES / "invalid-receipt.json").read_text())
    assert receipt["requestBody"]["content"]["application/json"]["examples"]["invalid"]["value"] == invalid
    answered = Door(tmp_path / "invalid").post("receipt.create", invalid).get_json()
    assert receipt["responses"]["422"]["content"]["application/json"]["example"] == answered


def test_the_examples_come_from_the_package_which_links_examples(document):
    """One copy: tasks/example_events is a link to examples/, and pyproject.toml ships its files with the
    package (tests/integration/test_packaging.py builds the wheel and looks)."""
    from pathlib import Path

    from worker.web.ingest.openapi import example_events

    root = Path(__file__).resolve().parents[3]
    link = root / "tasks" / "example_events"
    assert link.is_symlink() and link.resolve() == (root / "examples").resolve()
    assert '"tasks" = ["example_events/*.json", ' in (root / "pyproject.toml").read_text()
    assert set(example_events()) == {path.stem for path in EXAMPLES.glob("*.json")}


# -- every status each route documents, and no other ------------------------------------------------------

def _door(tmp_path, name: str, **settings):
    from tests.worker.web.conftest import Door

    return Door(tmp_path / name, **settings)


def _guarded(tmp_path, name: str):
    from tests.worker.web.conftest import Door
    from worker.web.ingest.tokens import add_token

    tmp_path.mkdir(parents=True, exist_ok=True)
    tokens = tmp_path / f"{name}-tokens"
    token = add_token(tokens, "stock-only", ["stock.adjust"])
    return Door(tmp_path / name, ingest_tokens_file=tokens), token


def _corrupt(door, key: str) -> None:
    """A ledger record of the wrong Redis type: the store answers an error the door did not expect."""
    door.store.set(f"wms:event:stock.adjust:{key}", "not a hash")


def _post_answers(tmp_path) -> dict[int, int]:
    """Documented status -> what the door answered when driven to it."""
    post = "/v1/events/stock.adjust"
    answers = {}
    door = _door(tmp_path, "post")
    answers[200] = door.client.post(post + "?dry_run=true", json=example("stock.adjust")).status_code
    answers[202] = door.post("stock.adjust", example("stock.adjust")).status_code
    answers[409] = door.post("stock.adjust", example("stock.adjust", quantity=78)).status_code
    answers[422] = door.post("stock.adjust", {"nope": 1}).status_code
    answers[207] = door.post("stock.adjust", [example("stock.adjust", event_id="n"), {"nope": 1}]).status_code
    answers[400] = door.post("stock.adjust", "{not json").status_code
    answers[415] = door.post("stock.adjust", "a=b", content_type="application/x-www-form-urlencoded") \
        .status_code
    small = _door(tmp_path, "small", ingest_max_body_bytes=1024)
    answers[413] = small.post("stock.adjust", [example("stock.adjust")] * 20).status_code
    guarded, token = _guarded(tmp_path, "guarded-post")
    answers[401] = guarded.post("stock.adjust", example("stock.adjust")).status_code
    answers[403] = guarded.post("receipt.create", example("receipt.create"),
                                headers={"Authorization": f"Bearer {token}"}).status_code
    broken = _door(tmp_path, "broken-post")
    _corrupt(broken, "nw-stock-count-123-20240514-0600")
    answers[500] = broken.post("stock.adjust", example("stock.adjust")).status_code
    down = _door(tmp_path, "down-post")
    down.server.connected = False
    answers[503] = down.post("stock.adjust", example("stock.adjust")).status_code
    return answers


def _get_answers(tmp_path) -> dict[int, int]:
    url = "/v1/events/stock.adjust/"
    door = _door(tmp_path, "get")
    door.post("stock.adjust", example("stock.adjust", event_id="known"))
    answers = {200: door.client.get(url + "known").status_code,
               404: door.client.get(url + "nope").status_code}
    guarded, token = _guarded(tmp_path, "guarded-get")
    answers[401] = guarded.client.get(url + "known").status_code
    answers[403] = guarded.client.get("/v1/events/receipt.create/x",
                                      headers={"Authorization": f"Bearer {token}"}).status_code
    _corrupt(door, "broken")
    answers[500] = door.client.get(url + "broken").status_code
    door.server.connected = False
    answers[503] = door.client.get(url + "known").status_code
    return answers


def _service_answers(tmp_path) -> dict[str, dict[int, int]]:
    door = _door(tmp_path, "service")
    health = {200: door.client.get("/healthz").status_code}
    document_answer = {200: door.client.get("/openapi.json").status_code}
    door.server.connected = False
    health[503] = door.client.get("/healthz").status_code
    return {"/healthz": health, "/openapi.json": document_answer}


def test_every_route_documents_exactly_the_statuses_the_door_answers(document, tmp_path):
    def documented(path: str, method: str) -> set[int]:
        return {int(status) for status in document["paths"][path][method]["responses"]}

    posts = _post_answers(tmp_path / "posts")  # every operation's POST is one route of the door
    assert {status: answer for status, answer in posts.items() if status != answer} == {}
    for name in OPERATIONS:
        assert documented(f"/v1/events/{name}", "post") == set(posts), name
    gets = _get_answers(tmp_path / "gets")
    assert {status: answer for status, answer in gets.items() if status != answer} == {}
    assert documented("/v1/events/{operation}/{key}", "get") == set(gets)
    for path, answers in _service_answers(tmp_path / "service").items():
        assert {status: answer for status, answer in answers.items() if status != answer} == {}
        assert documented(path, "get") == set(answers), path
    assert set(document["paths"]) == {*(f"/v1/events/{name}" for name in OPERATIONS),
                                      "/v1/events/{operation}/{key}", "/healthz", "/openapi.json"}
