"""Table tests of the event schemas: one row per rule of the Trademax document (and of the envelope).

Each row starts from the operation's valid example in ``examples/``, changes one thing, and states
either the message the change must produce (at which field path) or the normalized value it must give.
"""
from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.events import (
    OPERATIONS,
    DeliveryEvent,
    InvalidEvent,
    validate_event,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DELETE = object()  # a change that removes the field


def example(operation: str) -> dict:
    return json.loads((EXAMPLES / f"{operation}.json").read_text())


def changed(operation: str, changes: dict) -> dict:
    """The example with ``{"dotted.path": new value or DELETE}`` applied."""
    payload = example(operation)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = payload
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is DELETE:
            del node[last]
        else:
            node[last] = value
    return payload


def invalid(operation: str, payload) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        validate_event(operation, payload)
    return caught.value


# (operation, changes, field path that must be named, fragment of its message)
REJECTED = [
    # --- envelope -------------------------------------------------------------------------------
    ("receipt.create", {"occurred_at": DELETE}, "occurred_at", "Missing data"),
    ("receipt.create", {"occurred_at": "2024-05-13T15:47:10"}, "occurred_at", "timezone"),
    ("receipt.create", {"occurred_at": "2024-05-13"}, "occurred_at", "timezone"),
    ("receipt.create", {"occurred_at": "13/05/2024 15:47 +02:00"}, "occurred_at", "ISO-8601"),
    ("receipt.create", {"occurred_at": 1715600000}, "occurred_at", "ISO-8601"),
    ("receipt.create", {"occurred_at": "2024-13-13T15:47:10Z"}, "occurred_at", "ISO-8601"),
    ("receipt.create", {"occurred_at": "2024-05-13T15:47:10+25:00"}, "occurred_at", "ISO-8601"),
    ("receipt.create", {"occurred_at": "1999-12-31T23:59:59Z"}, "occurred_at", "2000 and 2099"),
    ("receipt.create", {"occurred_at": "2100-01-01T00:00:00Z"}, "occurred_at", "2000 and 2099"),
    ("receipt.create", {"event_id": "e" * 129}, "event_id", "Longer than 128"),
    ("receipt.create", {"event_id": 17}, "event_id", "Not a valid string"),
    ("dispatch.update", {"event_id": DELETE}, "event_id", "Missing data"),
    ("dispatch.publish", {"event_id": DELETE}, "event_id", "Missing data"),
    ("dispatch.delete", {"event_id": DELETE}, "event_id", "Missing data"),
    ("vendor_dispatch.create", {"event_id": DELETE}, "event_id", "Missing data"),
    ("stock.adjust", {"event_id": DELETE}, "event_id", "Missing data"),
    ("inventory.update_packages", {"event_id": DELETE}, "event_id", "Missing data"),
    ("order.lock_lines", {"event_id": DELETE}, "event_id", "Missing data"),
    ("stock.adjust", {"event_id": None}, "event_id", "may not be null"),
    # --- dispatch.create --------------------------------------------------------------------------
    ("dispatch.create", {"order_type": "PO"}, "order_type", "SO, PRO, TO"),
    ("dispatch.create", {"order_type": "so"}, "order_type", "SO, PRO, TO"),
    ("dispatch.create", {"draft": "true"}, "draft", "boolean"),
    ("dispatch.create", {"draft": 1}, "draft", "boolean"),
    ("dispatch.create", {"transaction_id": DELETE}, "transaction_id", "Missing data"),
    ("dispatch.create", {"transaction_id": "T" * 129}, "transaction_id", "Longer than 128"),
    ("dispatch.create", {"transaction_id": ""}, "transaction_id", "empty"),
    ("dispatch.create", {"warehouse_id": "w" * 65}, "warehouse_id", "Longer than 64"),
    ("dispatch.create", {"warehouse_id": DELETE}, "warehouse_id", "Missing data"),
    ("dispatch.create", {"order_no": DELETE}, "order_no", "Missing data"),
    ("dispatch.create", {"order_no": " FO123456"}, "order_no", "whitespace"),
    ("dispatch.create", {"external_reference": "r" * 256}, "external_reference", "Longer than 255"),
    ("dispatch.create", {"external_reference": 5}, "external_reference", "Not a valid string"),
    ("dispatch.create", {"packages": DELETE}, "packages", "Missing data"),
    ("dispatch.create", {"packages": []}, "packages", "between 1 and 1000"),
    ("dispatch.create", {"packages": {"package_id": 1}}, "packages", "Not a valid list"),
    ("dispatch.create", {"products": []}, "products", "between 1 and 5000"),
    ("dispatch.create", {"products": DELETE}, "products", "Missing data"),
    ("dispatch.create", {"packages.0": "box"}, "packages.0", "Must be a JSON object"),
    ("dispatch.create", {"packages.0.weight": DELETE}, "packages.0.weight", "Missing data"),
    ("dispatch.create", {"packages.0.volume": DELETE}, "packages.0.volume", "Missing data"),
    ("dispatch.create", {"packages.0.height": 1}, "packages.0.height", "Unknown field"),
    ("dispatch.create", {"packages.0.weight": -1}, "packages.0.weight", "between 0 and"),
    ("dispatch.create", {"packages.0.weight": 2_000_000}, "packages.0.weight", "between 0 and"),
    ("dispatch.create", {"packages.0.weight": "34"}, "packages.0.weight", "Not a valid number"),
    ("dispatch.create", {"packages.0.weight": True}, "packages.0.weight", "Not a valid number"),
    ("dispatch.create", {"packages.0.volume": float("inf")}, "packages.0.volume", "finite"),
    ("dispatch.create", {"packages.0.package_id": 0}, "packages.0.package_id", "between 1 and"),
    ("dispatch.create", {"packages.0.package_id": "1"}, "packages.0.package_id", "Not a valid integer"),
    ("dispatch.create", {"packages.0.package_id": DELETE}, "packages.0.package_id", "Missing data"),
    ("dispatch.create", {"packages.0.external_package_id": -5}, "packages.0.external_package_id", "between"),
    ("dispatch.create", {"packages.0.external_package_id": 1.5}, "packages.0.external_package_id", "string"),
    ("dispatch.create", {"packages.0.picking_zones": "A"}, "packages.0.picking_zones", "Not a valid list"),
    ("dispatch.create", {"packages.0.picking_zones": ["A", 7]}, "packages.0.picking_zones.1", "valid string"),
    ("dispatch.create", {"packages.0.products": []}, "packages.0.products", "between 1 and"),
    ("dispatch.create", {"packages.0.products.0.line_no": "10a"}, "packages.0.products.0.line_no", "integer"),
    ("dispatch.create", {"packages.0.products.0.artno": DELETE}, "packages.0.products.0.artno", "Missing"),
    ("dispatch.create", {"packages.0.products.0.label": 701203}, "packages.0.products.0.label", "string"),
    ("dispatch.create", {"packages.0.products.0.qty": 1}, "packages.0.products.0.qty", "Unknown field"),
    ("dispatch.create", {"products.0.quantity": 1.5}, "products.0.quantity", "Not a valid integer"),
    ("dispatch.create", {"products.0.quantity": 12.0}, "products.0.quantity", "Not a valid integer"),
    ("dispatch.create", {"products.0.quantity": "1.5"}, "products.0.quantity", "Not a valid integer"),
    ("dispatch.create", {"products.0.quantity": True}, "products.0.quantity", "Not a valid integer"),
    ("dispatch.create", {"products.0.quantity": -1}, "products.0.quantity", "between 0 and"),
    ("dispatch.create", {"products.0.quantity": DELETE}, "products.0.quantity", "Missing data"),
    ("dispatch.create", {"products.0.line_no": None}, "products.0.line_no", "may not be null"),
    ("dispatch.create", {"products.0.artno": "a" * 65}, "products.0.artno", "Longer than 64"),
    ("dispatch.create", {"products.0.artno": "123\n45"}, "products.0.artno", "control characters"),
    ("dispatch.create", {"products.0.colour": "red"}, "products.0.colour", "Unknown field"),
    ("dispatch.create", {"dispatch_id": 123}, "dispatch_id", "Unknown field"),
    # --- dispatch.update / publish / delete --------------------------------------------------------
    ("dispatch.update", {"dispatch_id": 123}, "dispatch_id", "transaction_id"),
    ("dispatch.update", {"dispatch_id": None}, "dispatch_id", "transaction_id"),
    ("dispatch.update", {"transaction_id": DELETE}, "transaction_id", "Missing data"),
    ("dispatch.update", {"order_type": "PO"}, "order_type", "SO, PRO, TO"),
    ("dispatch.update", {"packages": []}, "packages", "between 1 and"),
    ("dispatch.update", {"packages.0.weight": DELETE}, "packages.0.weight", "Missing data"),
    ("dispatch.publish", {"draft": False}, "draft", "draft=false"),
    ("dispatch.publish", {"dispatch_id": "390333"}, "dispatch_id", "transaction_id"),
    ("dispatch.publish", {"transaction_id": DELETE}, "transaction_id", "Missing data"),
    ("dispatch.delete", {"dispatch_id": 123}, "dispatch_id", "transaction_id"),
    ("dispatch.delete", {"transaction_id": DELETE}, "transaction_id", "Missing data"),
    ("dispatch.delete", {"order_no": "FO123456"}, "order_no", "Unknown field"),
    # --- vendor_dispatch.create -------------------------------------------------------------------
    ("vendor_dispatch.create", {"labels_quantity": 0}, "labels_quantity", "between 1 and"),
    ("vendor_dispatch.create", {"labels_quantity": "2"}, "labels_quantity", "Not a valid integer"),
    ("vendor_dispatch.create", {"labels_quantity": DELETE}, "labels_quantity", "Missing data"),
    ("vendor_dispatch.create", {"order_no": DELETE}, "order_no", "Missing data"),
    ("vendor_dispatch.create", {"transaction_id": "X1"}, "transaction_id", "Unknown field"),
    # --- receipt.create ---------------------------------------------------------------------------
    ("receipt.create", {"order_type": "SO"}, "order_type", "PO, SRO, TO"),
    ("receipt.create", {"received_date": "13/05/2024"}, "received_date", "YYYY-MM-DD"),
    ("receipt.create", {"received_date": "2024-5-13"}, "received_date", "YYYY-MM-DD"),
    ("receipt.create", {"received_date": "2024-05-13T00:00:00Z"}, "received_date", "YYYY-MM-DD"),
    ("receipt.create", {"received_date": 20240513}, "received_date", "YYYY-MM-DD"),
    ("receipt.create", {"received_date": "2023-02-29"}, "received_date", "real date"),
    ("receipt.create", {"received_date": "2024-04-31"}, "received_date", "real date"),
    ("receipt.create", {"received_date": DELETE}, "received_date", "Missing data"),
    ("receipt.create", {"transaction_id": DELETE}, "transaction_id", "Missing data"),
    ("receipt.create", {"products": []}, "products", "between 1 and 5000"),
    ("receipt.create", {"products.1": "44572"}, "products.1", "Must be a JSON object"),
    ("receipt.create", {"products.0.line_no": "1000"}, "products.0.line_no", "Not a valid integer"),
    ("receipt.create", {"products.0.quantity": 1.5}, "products.0.quantity", "Not a valid integer"),
    ("receipt.create", {"products.0.quantity": -3}, "products.0.quantity", "between 0 and"),
    ("receipt.create", {"products.0.vendor_shipment_no": "v" * 65}, "products.0.vendor_shipment_no", "64"),
    ("receipt.create", {"products.0.vendor_shipment_no": None}, "products.0.vendor_shipment_no", "null"),
    ("receipt.create", {"products.2.unit": "pcs"}, "products.2.unit", "Unknown field"),
    # --- stock.adjust -----------------------------------------------------------------------------
    ("stock.adjust", {"type": "delta"}, "type", "absolute, relative"),
    ("stock.adjust", {"type": DELETE}, "type", "Missing data"),
    ("stock.adjust", {"type": "relative", "reason": DELETE}, "reason", "Required when type is relative"),
    ("stock.adjust", {"type": "relative", "quantity": 0}, "quantity", "must not be zero"),
    ("stock.adjust", {"type": "relative", "quantity": "-0"}, "quantity", "must not be zero"),
    ("stock.adjust", {"quantity": -1}, "quantity", "must not be negative"),
    ("stock.adjust", {"quantity": "-7"}, "quantity", "must not be negative"),
    ("stock.adjust", {"quantity": 77.0}, "quantity", "Not a valid integer"),
    ("stock.adjust", {"quantity": " 77"}, "quantity", "Not a valid integer"),
    ("stock.adjust", {"quantity": "77\n"}, "quantity", "Not a valid integer"),
    ("stock.adjust", {"quantity": "٧٧"}, "quantity", "Not a valid integer"),
    ("stock.adjust", {"quantity": "1e3"}, "quantity", "Not a valid integer"),
    ("stock.adjust", {"quantity": 2**31}, "quantity", "between"),
    ("stock.adjust", {"quantity": 10**40}, "quantity", "between"),
    ("stock.adjust", {"quantity": "9" * 5000}, "quantity", "Not a valid integer"),
    ("stock.adjust", {"reason": "2"}, "reason", "Not a valid integer"),
    ("stock.adjust", {"reason": False}, "reason", "Not a valid integer"),
    ("stock.adjust", {"artno": ""}, "artno", "empty"),
    ("stock.adjust", {"artno": DELETE}, "artno", "Missing data"),
    ("stock.adjust", {"artno": "12\x003"}, "artno", "control characters"),
    ("stock.adjust", {"artno": "12\ud8003"}, "artno", "surrogate"),
    ("stock.adjust", {"warehouse_id": DELETE}, "warehouse_id", "Missing data"),
    # --- inventory.update_packages ----------------------------------------------------------------
    ("inventory.update_packages", {"packages.0.volume": DELETE}, "packages.0.volume",
     "unless height, width and length"),
    ("inventory.update_packages", {"packages.1.width": DELETE}, "packages.1.volume", "missing: width"),
    ("inventory.update_packages", {"packages.0.weight": DELETE}, "packages.0.weight", "Missing data"),
    ("inventory.update_packages", {"packages.0.quantity": 0}, "packages.0.quantity", "between 1 and"),
    ("inventory.update_packages", {"packages.0.number": DELETE}, "packages.0.number", "Missing data"),
    ("inventory.update_packages", {"packages.1.number": 1}, "packages.1.number", "unique"),
    ("inventory.update_packages", {"packages": []}, "packages", "between 1 and 1000"),
    ("inventory.update_packages", {"packages.0": False}, "packages.0", "Must be a JSON object"),
    ("inventory.update_packages", {"packages.0": ["volume"]}, "packages.0", "Must be a JSON object"),
    ("inventory.update_packages", {"packages.0.colour": "red"}, "packages.0.colour", "Unknown field"),
    # --- order.lock_lines -------------------------------------------------------------------------
    ("order.lock_lines", {"lines.0.processing": 2}, "lines.0.processing", "between 0 and 1"),
    ("order.lock_lines", {"lines.0.processing": True}, "lines.0.processing", "Not a valid integer"),
    ("order.lock_lines", {"lines.0.processing": "1"}, "lines.0.processing", "Not a valid integer"),
    ("order.lock_lines", {"lines.0.processing": DELETE}, "lines.0.processing", "Missing data"),
    ("order.lock_lines", {"lines.0.line_no": "1000"}, "lines.0.line_no", "Not a valid integer"),
    ("order.lock_lines", {"lines.1.line_no": 1000}, "lines.1.line_no", "unique"),
    ("order.lock_lines", {"lines": []}, "lines", "between 1 and 5000"),
    ("order.lock_lines", {"lines.0": 1000}, "lines.0", "Must be a JSON object"),
    ("order.lock_lines", {"order_no": DELETE}, "order_no", "Missing data"),
    ("order.lock_lines", {"warehouse_id": DELETE}, "warehouse_id", "Missing data"),
]


@pytest.mark.parametrize(
    "operation, changes, path, fragment", REJECTED,
    ids=[f"{op}:{','.join(changes)}={path}" for op, changes, path, _ in REJECTED],
)
def test_rule_rejects(operation, changes, path, fragment):
    error = invalid(operation, changed(operation, changes))
    assert path in error.messages, error.messages
    assert any(fragment in text for text in error.messages[path]), error.messages[path]
    assert error.operation == operation
    assert f"{path}: " in str(error)


# (operation, changes, field path in the normalized fields, expected value there)
ACCEPTED = [
    ("dispatch.create", {"products.0.quantity": "12"}, "products.0.quantity", 12),
    ("dispatch.create", {"products.0.line_no": "1000"}, "products.0.line_no", 1000),
    ("dispatch.create", {"packages.0.products.0.line_no": "20000"}, "packages.0.products.0.line_no", 20000),
    ("dispatch.create", {"packages.0.external_package_id": 123}, "packages.0.external_package_id", "123"),
    ("dispatch.create", {"packages.0.external_package_id": "00373400306205750407"},
     "packages.0.external_package_id", "00373400306205750407"),
    ("dispatch.create", {"packages.0.weight": 34}, "packages.0.weight", 34),
    ("dispatch.create", {"packages.0.volume": 0.4}, "packages.0.volume", 0.4),
    ("dispatch.create", {"packages.0.volume": -0.0}, "packages.0.volume", 0.0),
    ("dispatch.create", {"packages.0.picking_zones": DELETE}, "packages.0", {
        "package_id": 1, "external_package_id": "7499999", "weight": 34, "volume": 2,
        "products": [{"line_no": 1000, "artno": "123-45", "label": "701203"}]}),
    ("dispatch.create", {"packages.0.products.0.label": DELETE}, "packages.0.products.0",
     {"line_no": 1000, "artno": "123-45"}),
    ("dispatch.create", {"external_reference": ""}, "external_reference", ""),
    ("dispatch.create", {"external_reference": "Kund: Åsa Öberg"}, "external_reference", "Kund: Åsa Öberg"),
    ("dispatch.create", {"draft": False}, "draft", False),
    ("dispatch.create", {"transaction_id": "T" * 128}, "transaction_id", "T" * 128),
    ("dispatch.update", {"draft": True}, "draft", True),
    ("receipt.create", {"received_date": "2024-02-29"}, "received_date", "2024-02-29"),
    ("receipt.create", {"products.0.quantity": "3"}, "products.0.quantity", 3),
    ("receipt.create", {"products.0.vendor_shipment_no": DELETE}, "products.0",
     {"line_no": 1000, "artno": "113-11", "quantity": 3}),
    ("stock.adjust", {"type": "relative", "quantity": "-7"}, "quantity", -7),
    ("stock.adjust", {"type": "relative", "quantity": "+7"}, "quantity", 7),
    ("stock.adjust", {"type": "relative", "quantity": -2147483647}, "quantity", -2147483647),
    ("stock.adjust", {"quantity": "0077"}, "quantity", 77),
    ("stock.adjust", {"quantity": 0}, "quantity", 0),
    ("stock.adjust", {"reason": DELETE}, "reason", None),  # absolute needs no reason: absent, not null
    ("stock.adjust", {"artno": "12/3"}, "artno", "12/3"),
    ("inventory.update_packages", {"packages.1.height": 0.35}, "packages.1.height", 0.35),
    ("order.lock_lines", {"lines.0.processing": 0}, "lines.0.processing", 0),
]


def _at(tree, path: str):
    node = tree
    for part in path.split("."):
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node.get(part)
    return node


@pytest.mark.parametrize(
    "operation, changes, path, expected", ACCEPTED,
    ids=[f"{op}:{','.join(changes)}" for op, changes, _, _ in ACCEPTED],
)
def test_rule_accepts_and_normalizes(operation, changes, path, expected):
    event = validate_event(operation, changed(operation, changes))
    value = _at(event.fields, path)
    assert value == expected
    assert type(value) is type(expected)
    assert json.loads(json.dumps(event.fields, allow_nan=False)) == event.fields


def test_absent_optional_fields_stay_absent():
    fields = validate_event("stock.adjust", changed("stock.adjust", {"reason": DELETE})).fields
    assert "reason" not in fields
    fields = validate_event("dispatch.create", changed("dispatch.create", {"draft": DELETE})).fields
    assert "draft" not in fields and fields["external_reference"] is None


@pytest.mark.parametrize("given, normalized", [
    ("2024-05-14T09:12:45+02:00", "2024-05-14T07:12:45.000000Z"),
    ("2024-05-14T07:12:45Z", "2024-05-14T07:12:45.000000Z"),
    ("2024-05-14T07:12:45.250Z", "2024-05-14T07:12:45.250000Z"),
    ("2024-05-14T07:12:45.123456789Z", "2024-05-14T07:12:45.123456Z"),
    ("2024-05-14T12:42:45+0530", "2024-05-14T07:12:45.000000Z"),
    ("2024-05-14T07:12Z", "2024-05-14T07:12:00.000000Z"),
    ("2024-05-13T23:30:00-08:00", "2024-05-14T07:30:00.000000Z"),
])
def test_occurred_at_is_normalized_to_sortable_utc(given, normalized):
    event = validate_event("stock.adjust", changed("stock.adjust", {"occurred_at": given}))
    assert event.occurred_at == normalized
    assert "occurred_at" not in event.fields


def test_normalized_times_sort_in_time_order():
    given = ["2024-05-14T09:00:00+02:00", "2024-05-14T06:59:59.999999Z", "2024-05-14T02:00:00.5-05:00"]
    events = [validate_event("stock.adjust", changed("stock.adjust", {"occurred_at": g})) for g in given]
    assert sorted(e.occurred_at for e in events) == [events[1].occurred_at, events[0].occurred_at,
                                                     events[2].occurred_at]


@pytest.mark.parametrize("operation, changes, key", [
    ("dispatch.create", {}, "8723GYSFD52F32T"),
    ("dispatch.create", {"event_id": "nw-dispatch-1"}, "8723GYSFD52F32T"),  # the transaction_id wins
    ("receipt.create", {}, "8723GYSFD52F32T123"),
    ("dispatch.update", {}, "nw-dispatch-8723GYSFD52F32T-0002"),
    ("vendor_dispatch.create", {}, "nw-vendor-dispatch-FO123456-0001"),
    ("stock.adjust", {}, "nw-stock-count-123-20240514-0600"),
])
def test_the_key_is_the_transaction_id_for_creates_else_the_event_id(operation, changes, key):
    event = validate_event(operation, changed(operation, changes))
    assert event.key == key
    assert "event_id" not in event.fields


def test_creates_may_carry_an_event_id():
    event = validate_event("receipt.create", changed("receipt.create", {"event_id": "nw-rcpt-77"}))
    assert event.event_id == "nw-rcpt-77"
    assert validate_event("receipt.create", example("receipt.create")).event_id is None
    assert validate_event("receipt.create", changed("receipt.create", {"event_id": None})).event_id is None


# --- dispatch.update / publish ------------------------------------------------------------------------

def test_an_update_must_change_something():
    payload = {"event_id": "e-1", "occurred_at": "2024-05-14T09:40:03Z", "transaction_id": "8723GYSFD52F32T"}
    error = invalid("dispatch.update", payload)
    assert "at least one" in " ".join(error.messages["_schema"])
    event = validate_event("dispatch.update", {**payload, "order_type": "TO"})
    assert event.fields == {"transaction_id": "8723GYSFD52F32T", "order_type": "TO"}


def test_a_publish_may_carry_only_the_transaction_id():
    payload = {"event_id": "e-2", "occurred_at": "2024-05-14T10:02:17Z", "transaction_id": "8723GYSFD52F32T"}
    event = validate_event("dispatch.publish", payload)
    assert event.fields == {"transaction_id": "8723GYSFD52F32T"}
    # A publish may also complete the draft with whatever it still lacks.
    with_packages = {**payload, "packages": example("dispatch.update")["packages"]}
    assert validate_event("dispatch.publish", with_packages).fields["packages"][0]["package_id"] == 2


def test_package_ids_are_unique_within_a_dispatch():
    payload = example("dispatch.update")
    payload["packages"].append(copy.deepcopy(payload["packages"][0]))
    error = invalid("dispatch.update", payload)
    assert "unique" in error.messages["packages.1.package_id"][0]
    assert "packages.0.package_id" not in error.messages


def test_a_repeat_is_named_at_its_own_index_even_after_a_broken_entry():
    # marshmallow drops a failed entry from the loaded list; the message must still name index 2.
    payload = changed("order.lock_lines", {"lines": [
        "not a line", {"line_no": 1000, "processing": 1}, {"line_no": 1000, "processing": 0}]})
    error = invalid("order.lock_lines", payload)
    assert set(error.messages) == {"lines.0", "lines.2.line_no"}
    assert error.messages["lines.2.line_no"] == ["Repeats the line_no of entry 1; each must be unique."]


# --- the contract of validate_event -------------------------------------------------------------------

def test_an_unknown_operation_is_named_with_the_valid_ones():
    error = invalid("dispatch.cancel", example("dispatch.create"))
    assert error.operation == "dispatch.cancel"
    text = str(error)
    assert "dispatch.cancel" in text
    for name in OPERATIONS:
        assert name in text
    assert invalid(None, {}).messages["operation"]
    assert invalid(["stock.adjust"], {}).messages["operation"]


@pytest.mark.parametrize("payload", [None, [], "{}", b"{}", 7, 1.5, True, {"a", "b"}, ("x",), object()])
def test_a_payload_that_is_not_a_json_object_is_invalid(payload):
    error = invalid("stock.adjust", payload)
    assert list(error.messages) == ["_schema"]


def test_messages_read_as_one_line_naming_each_field():
    payload = changed("receipt.create", {"products.0.quantity": 1.5, "received_date": "13/05/2024"})
    error = invalid("receipt.create", payload)
    assert str(error) == ("receipt.create: products.0.quantity: Not a valid integer.; "
                          "received_date: Must be YYYY-MM-DD.")
    assert error.summary == str(error)
    assert error.messages == {"products.0.quantity": ["Not a valid integer."],
                              "received_date": ["Must be YYYY-MM-DD."]}


def test_list_indexes_sort_numerically_in_messages():
    payload = changed("receipt.create", {"products": [
        {"line_no": n, "artno": "44572", "quantity": "x"} for n in range(12)]})
    paths = list(invalid("receipt.create", payload).messages)
    assert paths == [f"products.{n}.quantity" for n in range(12)]


def test_a_huge_invalid_event_stays_one_short_line():
    products = [{"line_no": n, "artno": "44572", "quantity": 0.5} for n in range(5000)]
    error = invalid("receipt.create", changed("receipt.create", {"products": products}))
    assert len(error.messages) == 5000
    text = str(error)
    assert "\n" not in text and len(text) < 1000
    assert "and 4990 more" in text


def test_unprintable_and_huge_field_names_are_escaped_in_the_summary():
    payload = example("stock.adjust")
    payload["bad\nname"] = 1
    payload["x" * 100_000] = 2
    error = invalid("stock.adjust", payload)
    assert "bad\nname" in error.messages and "x" * 100_000 in error.messages  # exact paths kept
    text = str(error)
    assert "\n" not in text and len(text) < 1000
    assert "bad\\nname: Unknown field." in text


@pytest.mark.parametrize("payload, path, fragment", [
    ({"quantity": float("nan")}, "quantity", "finite"),
    ({"quantity": b"7"}, "quantity", "bytes"),
    ({"quantity": {7}}, "quantity", "set"),
    ({"quantity": (7,)}, "quantity", "tuple"),
    ({7: "seven"}, "7", "Keys must be strings"),
])
def test_values_that_are_not_json_are_named(payload, path, fragment):
    error = invalid("stock.adjust", {**example("stock.adjust"), **payload})
    assert any(fragment in text for text in error.messages[path]), error.messages


def test_deep_nesting_is_refused_without_recursing():
    deep: list = []
    node = deep
    for _ in range(100_000):
        node.append([])
        node = node[0]
    error = invalid("stock.adjust", {**example("stock.adjust"), "note": deep})
    (path,) = error.messages
    assert path.startswith("note.0.0") and "Nested too deeply" in error.messages[path][0]


def test_subclasses_of_json_types_are_read_as_their_base_type():
    class Shouting(str):
        def __str__(self):
            raise RuntimeError("never called")

    class Counting(dict):
        def items(self):
            raise RuntimeError("never called")

    payload = Counting(example("stock.adjust"))
    payload["artno"] = Shouting("123")
    event = validate_event("stock.adjust", payload)
    assert type(event.fields["artno"]) is str and event.fields["artno"] == "123"


def test_invalid_event_survives_pickling():
    error = invalid("receipt.create", json.loads((EXAMPLES / "invalid-receipt.json").read_text()))
    copy_ = pickle.loads(pickle.dumps(error))
    assert type(copy_) is InvalidEvent
    assert (copy_.operation, copy_.messages, str(copy_)) == (error.operation, error.messages, str(error))


def test_to_message_round_trips_and_is_a_copy():
    event = validate_event("dispatch.update", example("dispatch.update"))
    message = event.to_message()
    assert message["event_id"] == event.event_id and message["occurred_at"] == event.occurred_at
    assert validate_event("dispatch.update", message) == event
    message["packages"][0]["weight"] = 99
    assert event.fields["packages"][0]["weight"] == 16
    assert isinstance(event, DeliveryEvent)


# --- the operation table ------------------------------------------------------------------------------

@pytest.mark.parametrize("operation, changes, safe", [
    ("dispatch.create", {}, True),
    ("receipt.create", {}, True),
    ("stock.adjust", {}, True),  # absolute
    ("stock.adjust", {"type": "relative", "quantity": "-7"}, False),
    ("inventory.update_packages", {}, True),
    ("order.lock_lines", {}, True),
    ("dispatch.update", {}, True),
    ("dispatch.publish", {}, True),
    ("dispatch.delete", {}, True),  # resent; a refusal is read back (worker.destinations.trademax.read_back)
    ("vendor_dispatch.create", {}, False),
])
def test_safe_to_resend_on_unknown_outcome(operation, changes, safe):
    event = validate_event(operation, changed(operation, changes))
    assert OPERATIONS[operation].safe_to_resend(event) is safe


@pytest.mark.parametrize("operation, queue, needs_dispatch_id", [
    ("dispatch.create", "trademax.dispatch", False),
    ("dispatch.update", "trademax.dispatch", True),
    ("dispatch.publish", "trademax.dispatch", True),
    ("dispatch.delete", "trademax.dispatch", True),
    ("vendor_dispatch.create", "trademax.dispatch", False),
    ("receipt.create", "trademax.receipt", False),
    ("stock.adjust", "trademax.stock", False),
    ("inventory.update_packages", "trademax.inventory", False),
    ("order.lock_lines", "trademax.orders", False),
])
def test_operation_table(operation, queue, needs_dispatch_id):
    spec = OPERATIONS[operation]
    assert spec.task_name == "trademax." + operation
    assert (spec.queue, spec.needs_dispatch_id) == (queue, needs_dispatch_id)
    creates = ("dispatch.create", "receipt.create")
    assert spec.key_field == ("transaction_id" if operation in creates else "event_id")


def test_the_table_holds_exactly_the_nine_operations():
    assert sorted(OPERATIONS) == sorted([
        "dispatch.create", "dispatch.update", "dispatch.publish", "dispatch.delete", "vendor_dispatch.create",
        "receipt.create", "stock.adjust", "inventory.update_packages", "order.lock_lines"])


def test_importing_the_schemas_imports_no_celery_redis_or_http():
    code = ("import sys, tasks.events, tasks.schemas; "
            "from tasks.events import validate_event; "
            "print(sorted(m for m in ('celery', 'kombu', 'redis', 'requests', 'urllib3') "
            "if m in sys.modules))")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("operation, field", [("stock.adjust", "artno"), ("order.lock_lines", "order_no"),
                                              ("inventory.update_packages", "artno")])
@pytest.mark.parametrize("dots", [".", ".."])
def test_dot_segments_are_refused_where_the_value_goes_into_the_url_path(operation, field, dots):
    """urllib3 removes '.' and '..' from a path: the request would reach another route than the one signed."""
    from tasks.events import InvalidEvent, validate_event

    event = json.loads((Path(__file__).resolve().parents[2] / "examples" / f"{operation}.json").read_text())
    event[field] = dots
    with pytest.raises(InvalidEvent) as caught:
        validate_event(operation, event)
    assert list(caught.value.messages) == [field]
