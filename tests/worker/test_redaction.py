"""Secret-bearing keys are refused or blanked at any depth — including an event nested as deeply as the
JSON decoder accepts, which must not take the process down with a RecursionError (the fuzz run found
``enqueue`` dying while it wrote such an event's dead letter) — and a structure that contains itself is
refused, not walked forever."""
from __future__ import annotations

import json

import pytest

from worker.redaction import REDACTED, SecretKeyError, redacted, screened


def nested(depth: int, leaf: dict) -> object:
    value: object = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


def test_secret_keys_are_blanked_or_refused_at_any_depth():
    event = {"order_no": "IO-1", "lines": [{"api_key": "k", "sku": "A"}, ({"Signature": "s"},)]}
    assert redacted(event) == {"order_no": "IO-1", "lines": [{"api_key": REDACTED, "sku": "A"},
                                                             [{"Signature": REDACTED}]]}
    assert event["lines"][0]["api_key"] == "k"  # a copy: the input is left as it was
    with pytest.raises(SecretKeyError, match="the ledger must not carry 'api_key'"):
        screened(event, where="the ledger", redact=False)
    with pytest.raises(SecretKeyError, match="'Signature'"):
        screened({"lines": [[{"sku": "A"}], ({"Signature": "s"},)]}, where="the ledger", redact=False)


def test_an_event_nested_as_deeply_as_json_allows_is_screened():
    depth = 900  # about what json.loads takes at the default recursion limit
    event = json.loads(json.dumps(nested(depth, {"secret": "s", "kept": 1})))
    kept = redacted(event)
    for level in reversed(range(depth)):
        kept = kept[0] if level % 2 else kept["a"]
    assert kept == {"secret": REDACTED, "kept": 1}


def test_a_structure_that_contains_itself_is_refused():
    loop: list = []
    loop.append(loop)
    with pytest.raises(RecursionError):
        redacted(loop)


def test_any_mapping_is_walked_not_only_a_plain_dict():
    """screened asks the exact type first (a dict, a list, text: issue 21) — a Mapping of another kind, a
    str subclass as a key, a dict subclass, are screened all the same."""
    from collections import OrderedDict
    from types import MappingProxyType

    class Name(str):
        pass

    class Record(dict):
        pass

    event = {"a": MappingProxyType({"Password": "p", "b": (OrderedDict(token="t"),)}),
             "c": [Record({Name("X-WMS-Signature"): "s", "d": 1})], 3: "kept"}
    assert redacted(event) == {"a": {"Password": REDACTED, "b": [{"token": REDACTED}]},
                               "c": [{"X-WMS-Signature": REDACTED, "d": 1}], 3: "kept"}
    for inner in (MappingProxyType({"secret": 1}), OrderedDict(secret=1), Record(secret=1)):
        with pytest.raises(SecretKeyError):
            screened({"x": [inner]}, where="the ledger", redact=False)
