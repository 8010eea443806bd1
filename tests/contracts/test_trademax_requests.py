"""Every request the Trademax client builds conforms to the JSON Schemas written from Trademax's API
document (the trademax-*.schema.json files of tests/contracts/): each WMS operation's request — built by
the operation's own sender from the WMS's example events and their variants — and the reads the relay
makes (the read-back, the credentials check).  The requests are the ones on the wire (``responses``), auth
params and signature included: what the server reads, body or query."""
from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses

from tasks.events import validate_event
from tests.contracts.schemas import problems
from worker.destinations.trademax.client import TrademaxClient
from worker.destinations.trademax.operations import OPERATIONS, check
from worker.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE = "http://dashboard.trademax.test/api/"
OK = {"error": {"error_code": 0, "error_messages": []}, "data": {"dispatch_id": 4711, "draft": True}}
ROWS = {row.name: row for row in OPERATIONS}


def example(name: str, **changes) -> dict:
    return {**json.loads((EXAMPLES / f"{name}.json").read_text()), **changes}


def without(event: dict, *names: str) -> dict:
    return {k: v for k, v in event.items() if k not in names}


# operation, a WMS event, the schema definition its request must conform to
EVENTS = [
    ("dispatch.create", example("dispatch.create"), "trademax-dispatch#create"),
    ("dispatch.create", without(example("dispatch.create"), "draft", "external_reference"),
     "trademax-dispatch#create"),
    ("dispatch.update", example("dispatch.update"), "trademax-dispatch#update"),
    ("dispatch.update", without(example("dispatch.update"), "draft"), "trademax-dispatch#update"),
    ("dispatch.update", example("dispatch.update", draft=False), "trademax-dispatch#update"),
    ("dispatch.update", without(example("dispatch.update", external_reference=None), "packages", "products",
                                "order_no", "order_type"), "trademax-dispatch#update"),
    ("dispatch.publish", example("dispatch.publish"), "trademax-dispatch#publish"),
    ("dispatch.publish", {**example("dispatch.publish"),
                          **without(example("dispatch.update"), "event_id", "occurred_at", "draft")},
     "trademax-dispatch#publish"),
    ("dispatch.delete", example("dispatch.delete"), "trademax-other#by_id"),
    ("vendor_dispatch.create", example("vendor_dispatch.create"), "trademax-other#vendor_dispatch"),
    ("receipt.create", example("receipt.create"), "trademax-other#receipt"),
    ("stock.adjust", example("stock.adjust"), "trademax-other#stock_adjustment"),
    ("stock.adjust", without(example("stock.adjust"), "reason"), "trademax-other#stock_adjustment"),
    ("stock.adjust", example("stock.adjust", type="relative", quantity=-7, reason=2),
     "trademax-other#stock_adjustment"),
    ("stock.adjust", example("stock.adjust", type="relative", quantity="-7", reason=2),
     "trademax-other#stock_adjustment"),
    ("inventory.update_packages", example("inventory.update_packages"), "trademax-other#package_data"),
    ("order.lock_lines", example("order.lock_lines"), "trademax-other#order_lines"),
]

# The reads the relay makes besides: the read-back of a refused one-way change, the credentials check.
READS = [
    ("get_dispatch", lambda client: client.get_dispatch(4711), "trademax-other#by_id"),
    ("get_receipt", lambda client: client.get_receipt(12), "trademax-other#by_id"),
    ("get_stock", lambda client: client.get_stock("123", "nw"), "trademax-other#in_warehouse"),
    ("get_package_data", lambda client: client.get_package_data("123", "nw"), "trademax-other#in_warehouse"),
    ("check", check, "trademax-other#in_warehouse"),
]


def sent(build) -> list[dict]:
    """The params of every request ``build(client)`` sends: the JSON body, or the query for GET/DELETE."""
    client = TrademaxClient(Settings(trademax_base_url=BASE, trademax_api_key="public-key",
                                     trademax_secret="secret"), clock=lambda: 1_700_000_000.0)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in ("GET", "POST", "PATCH", "DELETE"):
            mock.add(method, re.compile(re.escape(BASE) + ".*"), json=OK)
        build(client)
        return [json.loads(call.request.body) if call.request.method in ("POST", "PATCH")
                else dict(parse_qsl(urlsplit(call.request.url).query, keep_blank_values=True))
                for call in mock.calls]


def test_every_operation_is_among_the_cases():
    assert {operation for operation, _, _ in EVENTS} == set(ROWS)


@pytest.mark.parametrize("operation, event, schema", EVENTS,
                         ids=[f"{op}-{i}" for i, (op, _, _) in enumerate(EVENTS)])
def test_the_request_of_each_operation_conforms_to_the_document(operation, event, schema):
    fields = validate_event(operation, event).fields
    (params,) = sent(lambda client: ROWS[operation].send(client, fields, 4711))
    assert problems(schema, params) == []


@pytest.mark.parametrize("name, build, schema", READS, ids=[name for name, _, _ in READS])
def test_the_reads_conform_to_the_document(name, build, schema):
    (params,) = sent(build)
    assert problems(schema, params) == []
