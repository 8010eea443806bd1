"""The example events in ``examples/`` and the publishing guide in ``docs/events.md`` agree with the code."""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from tasks.events import OPERATIONS, InvalidEvent, validate_event

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GUIDE = ROOT / "docs" / "events.md"
SHIPMENT = "8723GYSFD52F32T"


def load(name: str):
    return json.loads((EXAMPLES / name).read_text())


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_every_operation_has_a_valid_example(operation):
    event = validate_event(operation, load(f"{operation}.json"))
    assert event.operation == operation
    assert json.loads(json.dumps(event.fields, allow_nan=False)) == event.fields
    assert event.occurred_at.endswith("Z")
    assert validate_event(operation, event.to_message()) == event


def test_example_events_are_one_per_operation_plus_the_invalid_receipt():
    # Event examples are named OPERATION.json (a dot inside the stem); other files here serve other tools.
    events = sorted(path.name for path in EXAMPLES.glob("*.*.json"))
    assert events == sorted(f"{operation}.json" for operation in OPERATIONS)
    assert (EXAMPLES / "invalid-receipt.json").is_file()


@pytest.mark.parametrize("operation", ["dispatch.update", "dispatch.publish", "dispatch.delete"])
def test_dispatch_changes_name_the_shipment_of_the_create_example(operation):
    assert load("dispatch.create.json")["transaction_id"] == SHIPMENT
    event = validate_event(operation, load(f"{operation}.json"))
    assert event.fields["transaction_id"] == SHIPMENT
    assert "dispatch_id" not in event.fields


def test_examples_use_trademax_document_values():
    create = validate_event("dispatch.create", load("dispatch.create.json")).fields
    assert (create["warehouse_id"], create["order_no"], create["order_type"]) == ("nw", "FO123456", "SO")
    receipt = validate_event("receipt.create", load("receipt.create.json")).fields
    assert [p["artno"] for p in receipt["products"]] == ["113-11", "44572", "4456-77"]


def test_event_ids_of_the_examples_are_distinct():
    ids = [load(f"{op}.json").get("event_id") for op in OPERATIONS]
    present = [i for i in ids if i is not None]
    assert len(present) == len(set(present)) == len(OPERATIONS) - 2  # the two creates go by transaction_id


def test_the_invalid_receipt_is_refused_naming_each_bad_field():
    with pytest.raises(InvalidEvent) as caught:
        validate_event("receipt.create", load("invalid-receipt.json"))
    messages = caught.value.messages
    assert set(messages) == {"order_type", "received_date", "transaction_id", "products.0.quantity",
                             "products.1.colour"}
    assert messages["received_date"] == ["Must be YYYY-MM-DD."]
    assert messages["products.0.quantity"] == ["Not a valid integer."]
    assert messages["products.1.colour"] == ["Unknown field."]


def test_the_guide_quotes_the_invalid_receipt_summary_verbatim():
    with pytest.raises(InvalidEvent) as caught:
        validate_event("receipt.create", load("invalid-receipt.json"))
    assert str(caught.value) in GUIDE.read_text()


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_the_guide_documents_every_operation(operation):
    guide = GUIDE.read_text()
    spec = OPERATIONS[operation]
    assert f"## {operation}\n" in guide
    row = next(line for line in guide.splitlines() if line.startswith(f"| `{operation}` |"))
    assert f"`{spec.task_name}`" in row and f"`{spec.queue}`" in row
    assert f"`examples/{operation}.json`" in row
    assert f"`{spec.key_field}`" in row
    section = guide.split(f"## {operation}\n", 1)[1].split("\n## ", 1)[0]
    assert f"examples/{operation}.json" in section
    assert "Resend after unknown outcome" in section


def _json_blocks(text: str) -> list:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]


def test_the_guides_celery_message_decodes_to_a_valid_event_on_the_right_queue():
    guide = GUIDE.read_text()
    message = next(block for block in _json_blocks(guide) if isinstance(block, dict) and "headers" in block)
    body_b64 = re.search(r"^body = (\S+)$", guide, re.M).group(1)
    body = json.loads(base64.b64decode(body_b64, validate=True))
    assert body in _json_blocks(guide)  # the decoded body is the one the guide shows
    (event,), kwargs, embed = body
    assert kwargs == {} and embed == {"callbacks": None, "errbacks": None, "chain": None, "chord": None}

    headers, properties = message["headers"], message["properties"]
    operation = headers["task"].removeprefix("trademax.")
    validate_event(operation, event)
    assert headers["lang"] == "py"
    assert headers["id"] == headers["root_id"] == properties["correlation_id"] == properties["delivery_tag"]
    assert headers["eta"] is None and headers["expires"] is None and properties["priority"] == 0
    assert (message["content-type"], message["content-encoding"]) == ("application/json", "utf-8")
    assert properties["body_encoding"] == "base64"
    assert properties["delivery_info"] == {"exchange": "", "routing_key": OPERATIONS[operation].queue}


def test_the_guides_redis_cli_recipe_pushes_onto_the_operations_queue():
    recipe = re.findall(r"```sh\n(.*?)```", GUIDE.read_text(), re.S)[-1]
    example = re.search(r"examples/([\w.]+)\.json", recipe).group(1)
    spec = OPERATIONS[example]
    assert f'task: "{spec.task_name}"' in recipe
    assert f'routing_key: "{spec.queue}"' in recipe
    assert re.search(rf'LPUSH {re.escape(spec.queue)} "\$MESSAGE"', recipe)
    assert '"callbacks": null, "errbacks": null, "chain": null, "chord": null' in recipe


def test_the_guide_names_every_queue_and_the_enqueue_command():
    guide = GUIDE.read_text()
    for queue in {spec.queue for spec in OPERATIONS.values()}:
        assert f"`{queue}`" in guide
    assert "wms-relay enqueue" in guide


def test_queues_agree_with_the_celery_routes():
    from worker.destinations import table
    for spec in OPERATIONS.values():
        assert table.queue_for(spec.task_name) == spec.queue


def readme_task_table() -> str:
    """The README's task table, generated from the operation table (one row per WMS operation, in its
    order): the test below keeps the README's copy equal to it."""
    lines = ["| task name | queue | key | example |", "|---|---|---|---|"]
    lines += [f"| `{spec.task_name}` | `{spec.queue}` | `{spec.key_field}` | `examples/{name}.json` |"
              for name, spec in OPERATIONS.items()]
    return "\n".join(lines) + "\n"


def test_the_readme_task_table_is_the_operation_tables():
    readme = (ROOT / "README.md").read_text()
    header = readme_task_table().split("\n", 1)[0]
    assert readme.count(header) == 1
    shown = readme.split(header, 1)[1].split("\n\n", 1)[0]
    assert header + shown + "\n" == readme_task_table(), (
        f"README.md's task table differs from the operation table; it should read:\n\n{readme_task_table()}")
