"""Fuzzing validate_event with Hypothesis: whatever it is given, only a DeliveryEvent or an InvalidEvent
comes out; every message names a field path of the input; every DeliveryEvent is JSON and re-validates
to itself.

The generated events start from the valid examples and are mutated (wrong types, missing and extra
fields, huge and unicode strings, negative and enormous numbers, non-JSON values, deep nesting), so a
good share stays valid and the rest fails in many different places.  A second test feeds arbitrary
values and operation names.

What the strategies build is bounded (:data:`MAX_WEIGHT`): a list is multiplied (×1001, ×5001) only while
the whole event stays under it, counting every occurrence of a shared value.  Unbounded, four such
multiplications on top of 200,000-character strings and 3,000-deep nesting built events of billions of
nodes, and the pytest process grew past 20 GB (``--hypothesis-seed=21``).  The validator's own bounds
(5,000,000 products are refused in 0.3 s) are tested in test_schemas.py, not here.
"""
from __future__ import annotations

import copy
import decimal
import json
import math
import pickle
from datetime import datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.events import OPERATIONS, DeliveryEvent, InvalidEvent, validate_event
from tasks.schemas.json_value import MAX_DEPTH, path_segment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE = {op: json.loads((EXAMPLES / f"{op}.json").read_text()) for op in OPERATIONS}

# Example counts: 2,500 mutated events + 500 arbitrary ones.  No deadline: machines are noisy.
FUZZ = settings(max_examples=2500, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ARBITRARY = settings(max_examples=500, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Opaque:
    """An object that is no JSON value, and whose repr fails."""

    def __repr__(self):
        raise RuntimeError("no repr")


def _nested(depth: int, inner: str) -> object:
    value: object = []
    for level in range(depth):
        value = [value] if level % 2 else {inner: value}
    return value


text = st.text(alphabet=st.characters(exclude_categories=()), max_size=80) | st.sampled_from(
    ["", " ", "nw", "FO123456", "123-45", "\ud800", "a\udfffb", "\x00", "line\nbreak", "٣", "-7", "+7", "0",
     "007", "1.5", "1e3", "true", "null", "2024-02-30", "2024-05-14", "2024-05-14T09:12:45Z",
     "2024-05-14T09:12:45", "1999-12-31T23:59:59Z", "absolute", "relative", "SO", "PO", "TO", "PRO", "SRO",
     "Åsa Öberg", "😀" * 70])
huge_text = st.builds(lambda char, count: char * count, st.sampled_from(["x", "9", "é", "😀", " "]),
                      st.integers(60, 200_000))
numbers = (st.integers() | st.integers(-(2**31) - 2, 2**31 + 2)
           | st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, -(2**31), 10**40, -(10**40), 10**400])
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([0.0, -0.0, 0.4, 1.5, 12.0, 1e6, 1e6 + 1, 1e308, float("nan"), float("inf")]))
json_leaf = st.none() | st.booleans() | numbers | text | huge_text
not_json = st.builds(Opaque) | st.sampled_from([
    b"7", bytearray(b"x"), {1, 2}, frozenset(), (1, 2), (), 1j, decimal.Decimal("1.5"), datetime(2024, 5, 14),
    object(), range(3), print])
keys = text | st.sampled_from([
    "event_id", "occurred_at", "dispatch_id", "draft", "quantity", "reason", "volume", "height", "width",
    "length", "line_no", "_schema", "products", "packages"])
odd_keys = st.integers(-3, 3) | st.none() | st.just((1, 2)) | st.builds(Opaque)
values = st.recursive(
    json_leaf | not_json | st.builds(_nested, st.integers(1, 3000), st.sampled_from(["a", "products"])),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4)
    | st.dictionaries(odd_keys, children, min_size=1, max_size=2),
    max_leaves=12,
)


# Nodes plus string characters, every occurrence counted: ~a few MB of JSON at most.
MAX_WEIGHT = 2_000_000


def _weight(node, limit: int = MAX_WEIGHT) -> int:
    """The size of ``node`` (containers, leaves and string characters, each occurrence counted), walked
    only until it passes ``limit`` (a shared list multiplied 5001 times is never walked in full)."""
    total, pending = 0, [node]
    while pending and total <= limit:
        item = pending.pop()
        total += 1
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
    return total


def _containers(node, path=()):
    """Every (path, container) of a payload down to where events end, to pick a place to mutate."""
    if len(path) > 6:
        return
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _containers(value, path + (key,))
    elif isinstance(node, list):
        yield path, node
        for index, value in enumerate(node):
            yield from _containers(value, path + (index,))


def _factor(draw, payload, items) -> int:
    """How many times to repeat a list: drawn, then cut to what keeps the event under MAX_WEIGHT."""
    wanted = draw(st.sampled_from([2, 3, 1001, 5001]))
    weight = _weight(payload) + _weight(items)
    fitting = [f for f in (5001, 1001, 3, 2) if f <= wanted and weight * f <= MAX_WEIGHT]
    return fitting[0] if fitting else 1


def _mutate(draw, payload):
    places = list(_containers(payload))
    path, node = draw(st.sampled_from(places))
    kind = draw(st.sampled_from(["alike"] * 4 + ["replace"] * 3 + ["delete", "add", "duplicate", "retype"]))
    if isinstance(node, dict):
        if kind == "add" or not node:
            node[draw(keys | odd_keys)] = draw(values)
            return
        key = draw(st.sampled_from(sorted(node, key=path_segment)))
        if kind == "alike":
            node[key] = draw(_alike(node[key]))
        elif kind == "delete":
            del node[key]
        elif kind == "retype":
            node[key] = _retyped(node[key])
        elif kind == "duplicate" and isinstance(node[key], list):
            node[key] = node[key] * _factor(draw, payload, node[key])
        else:
            node[key] = draw(values)
    else:
        if not node or kind == "add":
            node.append(draw(values))
            return
        index = draw(st.integers(0, len(node) - 1))
        if kind == "alike":
            node[index] = draw(_alike(node[index]))
        elif kind == "delete":
            del node[index]
        elif kind == "duplicate":
            if _weight(payload) + _weight(node[index]) <= MAX_WEIGHT:
                node.append(node[index])  # the same object twice: the validator must not care
        elif kind == "retype":
            node[index] = _retyped(node[index])
        else:
            node[index] = draw(values)


def _alike(value) -> st.SearchStrategy:
    """Another value of the same JSON type, usually still valid: plain words and small numbers."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(0, 5000)
    if isinstance(value, float):
        return st.floats(0, 5000)
    if isinstance(value, str):
        return st.text(alphabet="abcXYZ0123456789-_", min_size=1, max_size=40)
    return st.just(value)


def _retyped(value):
    """The same value in a neighbouring type: the mistakes a WMS serializer makes."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        if abs(value) >= 2**53:
            return [value]
        return str(value) if value % 2 else float(value)
    if isinstance(value, float):
        return str(value)
    if isinstance(value, str):
        return int(value) if value.isdigit() and len(value) < 20 else [value]
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):
        return [value]
    return None


@st.composite
def mutated_events(draw):
    operation = draw(st.sampled_from(sorted(OPERATIONS)))
    source = draw(st.sampled_from([operation] * 5 + sorted(OPERATIONS)))  # now and then another op's event
    payload = copy.deepcopy(BASE[source])
    for _ in range(draw(st.integers(0, 4))):
        _mutate(draw, payload)
    return operation, payload


def _existing_paths(payload) -> set[str]:
    """Every field path of the input, named as InvalidEvent names them (segments joined by dots)."""
    found: set[str] = set()

    def walk(node, path):
        if len(path) > MAX_DEPTH + 1:
            return
        if isinstance(node, dict):
            items = [(path_segment(k), v) for k, v in dict.items(node)]
        elif isinstance(node, list):
            items = [(str(i), v) for i, v in enumerate(node)]
        else:
            return
        for segment, value in items:
            found.add(".".join(path + (segment,)))
            walk(value, path + (segment,))

    walk(payload, ())
    return found


def _check(operation, payload, outcomes):
    try:
        event = validate_event(operation, payload)
    except InvalidEvent as error:
        outcomes["invalid"] += 1
        _check_invalid(operation, payload, error)
    else:
        outcomes["valid"] += 1
        _check_valid(operation, event)


def _check_invalid(operation, payload, error: InvalidEvent):
    assert error.messages and all(isinstance(p, str) for p in error.messages)
    assert all(texts and all(isinstance(t, str) and t for t in texts) for texts in error.messages.values())
    existing = _existing_paths(payload)
    for path in error.messages:
        if path in ("_schema", "operation") or path in existing:
            continue
        parent = path.rsplit(".", 1)[0] if "." in path else ""
        # A missing field is named at its own path, under an object that is in the input.
        assert parent == "" or parent in existing, (path, sorted(existing)[:20])
    summary = str(error)
    assert "\n" not in summary and len(summary) < 5000
    assert summary.startswith(f"{error.operation}: ") or error.operation not in OPERATIONS
    again = pickle.loads(pickle.dumps(error))
    assert (again.operation, again.messages) == (error.operation, error.messages)


def _check_valid(operation, event: DeliveryEvent):
    assert event.operation == operation
    encoded = json.dumps(event.fields, allow_nan=False, ensure_ascii=False).encode("utf-8")
    assert json.loads(encoded) == event.fields
    assert not {"event_id", "occurred_at"} & set(event.fields)
    assert isinstance(event.key, str) and event.key
    assert validate_event(operation, event.to_message()) == event
    assert validate_event(operation, json.loads(json.dumps(event.to_message()))) == event


def test_mutated_examples_give_an_event_or_a_readable_refusal():
    outcomes = {"valid": 0, "invalid": 0}

    @FUZZ
    @given(mutated_events())
    def run(case):
        operation, payload = case
        _check(operation, payload, outcomes)

    run()
    total = outcomes["valid"] + outcomes["invalid"]
    assert total >= 2000
    print(f"mutated examples: {outcomes}")
    # Both branches were exercised in earnest, not just one.
    assert outcomes["valid"] >= total // 20 and outcomes["invalid"] >= total // 4, outcomes


# Past MAX_WEIGHT only by what "add"/"replace" put on top after the last multiplication: at most four
# drawn values of up to 12 leaves (200,000-character strings, 3,000-deep nesting) each.
GENERATED_BOUND = MAX_WEIGHT + 4 * 12 * (200_000 + 2 * 3_000 + 2)


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_events())
def test_what_the_strategies_build_stays_bounded(case):
    _, payload = case
    assert _weight(payload, limit=GENERATED_BOUND) <= GENERATED_BOUND


def test_a_list_is_multiplied_only_while_the_event_stays_small():
    small, big = ["x"], ["x" * 500]
    assert _weight(["x"] * 5001) == 1 + 5001 * 2
    assert _weight([big] * 5001, limit=10_000) <= 10_000 + 502  # the walk stops past the limit
    assert _factor(lambda _: 5001, {"a": small}, small) == 5001
    assert _factor(lambda _: 5001, {"a": big}, big) == 1001
    assert _factor(lambda _: 2, {"a": ["x" * 1_500_000]}, ["x" * 1_500_000]) == 1


def test_arbitrary_values_and_operation_names_give_an_event_or_a_refusal():
    outcomes = {"valid": 0, "invalid": 0}
    operations = st.sampled_from(sorted(OPERATIONS)) | text | st.none() | st.integers() | st.builds(Opaque)

    @ARBITRARY
    @given(operations, values | st.dictionaries(keys, values, max_size=8))
    def run(operation, payload):
        _check(operation, payload, outcomes)

    run()
    assert outcomes["invalid"] >= 400


def test_non_finite_numbers_anywhere_are_refused():
    for operation, payload in BASE.items():
        for bad in (math.nan, math.inf, -math.inf):
            try:
                validate_event(operation, {**payload, "occurred_at": bad})
            except InvalidEvent as error:
                assert "occurred_at" in error.messages
            else:
                raise AssertionError(f"{operation} accepted {bad}")
