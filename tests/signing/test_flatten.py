"""Flattening nested params to bracket keys as PHP's reference signer does; refusing what PHP cannot read."""

from __future__ import annotations

import enum
import pickle
from collections import OrderedDict
from typing import NamedTuple

import pytest

from signing import (MAX_DEPTH, NestingTooDeep, SigningError, UnsignableKey, UnsignableValue,
                     canonical_string, flatten, sign)


def test_lists_and_dicts_flatten_to_bracket_keys_in_iteration_order():
    params = {"order_no": "IS1", "packages": [{"weight": 55, "picking_zones": ["H", "K"]}], "draft": True}
    assert flatten(params) == [
        ("order_no", "IS1"),
        ("packages[0][weight]", "55"),
        ("packages[0][picking_zones][0]", "H"),
        ("packages[0][picking_zones][1]", "K"),
        ("draft", "1"),
    ]


def test_empty_containers_yield_no_pair_but_none_keeps_its_key():
    assert flatten({"a": [], "b": {}, "c": None, "d": [[], {}], "e": False}) == [("c", ""), ("e", "")]


def test_tuples_are_lists_and_int_keys_render_in_decimal():
    assert flatten({"a": ("x", "y"), "b": {0: "zero", -3: "neg", 10**20: "big"}, 7: "top"}) == [
        ("a[0]", "x"), ("a[1]", "y"),
        ("b[0]", "zero"), ("b[-3]", "neg"), ("b[100000000000000000000]", "big"),
        ("7", "top"),
    ]


def test_nothing_is_url_encoded():
    value = "a&b=c d+e%20/ö?"
    assert flatten({"k y&": value}) == [("k y&", value)]
    assert canonical_string({"k y&": value}) == f"k y&={value}"


class Point(NamedTuple):
    x: int
    y: int


class Zone(str, enum.Enum):
    HIGH = "H"


class Line(enum.IntEnum):
    FIRST = 1000


def test_container_and_scalar_subclasses_flatten_as_json_dumps_writes_them():
    params = {"o": OrderedDict([("b", 1), ("a", 2)]), "p": Point(3, 4), "z": Zone.HIGH, "l": Line.FIRST,
              Zone.HIGH: "enum key", Line.FIRST: "int enum key"}
    assert flatten(params) == [("o[b]", "1"), ("o[a]", "2"), ("p[0]", "3"), ("p[1]", "4"), ("z", "H"),
                               ("l", "1000"), ("H", "enum key"), ("1000", "int enum key")]


def test_keys_that_collide_after_flattening_collapse_like_a_php_array():
    # PHP's flatten writes $out["a[0]"] twice: one entry, at the first position, with the last value.
    assert flatten({"a": ["list"], "b": "B", "a[0]": "literal"}) == [("a[0]", "literal"), ("b", "B")]
    assert flatten({"a[0]": "literal", "b": "B", "a": ["list"]}) == [("a[0]", "list"), ("b", "B")]
    assert flatten({1: "int", "1": "str"}) == [("1", "str")]


def test_keys_that_are_one_json_key_merge_before_flattening_as_json_decode_merges_them():
    # {2: …, "2": …} is one JSON key "2": PHP keeps the first position and the last value, container or not.
    assert flatten({2: None, "b": "B", "2": {"x": 1}}) == [("2[x]", "1"), ("b", "B")]
    assert flatten({"2": {"x": 1}, "b": "B", 2: None}) == [("2", ""), ("b", "B")]
    assert flatten({"o": [{0: "a", "0": ["b", "c"]}]}) == [("o[0][0][0]", "b"), ("o[0][0][1]", "c")]


@pytest.mark.parametrize(("params", "path", "type_name"), [
    ({"packages": [{}, {}, {}, {"weight": b"55"}]}, "packages[3][weight]", "bytes"),
    ({"packages": [{}, {}, {}, {"weight": {5.5}}]}, "packages[3][weight]", "set"),
    ({"packages": [{}, {}, {}, {"weight": object()}]}, "packages[3][weight]", "object"),
    ({"weight": frozenset()}, "weight", "frozenset"),
])
def test_values_json_cannot_carry_are_refused_with_their_key_path(params, path, type_name):
    with pytest.raises(UnsignableValue) as caught:
        flatten(params)
    assert caught.value.path == path
    assert path in str(caught.value) and type_name in str(caught.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_infinity_are_refused_with_their_key_path(value):
    with pytest.raises(UnsignableValue, match=r"packages\[3\]\[weight\]"):
        sign({"packages": [{}, {}, {}, {"weight": value}]}, "secret")


@pytest.mark.parametrize(("params", "path"), [
    ({True: "x"}, ""),
    ({"packages": [{"products": {False: 1}}]}, "packages[0][products][…]"),
    ({"a": {None: 1}}, "a[…]"),
    ({"a": {(1, 2): 1}}, "a[…]"),
    ({"a": {1.5: 1}}, "a[…]"),
])
def test_keys_other_than_str_and_int_are_refused_bools_included(params, path):
    with pytest.raises(UnsignableKey) as caught:
        flatten(params)
    assert caught.value.path == path


def test_a_lone_surrogate_is_refused_in_values_and_keys_by_every_entry_point():
    bad_value = {"order_no": "IS\ud800"}
    bad_key = {"lines": [{"art\udfffno": "1"}]}
    for function in (flatten, canonical_string, lambda p: sign(p, "secret")):
        with pytest.raises(UnsignableValue, match="order_no"):
            function(bad_value)
        with pytest.raises(UnsignableKey) as caught:
            function(bad_key)
        assert caught.value.path == "lines[0][art\\udfffno]"  # printable, not a lone surrogate
        str(caught.value).encode("utf-8")


def nested(depth: int) -> dict:
    """A dict whose deepest key has ``depth`` segments: a[a][a]…."""
    value: object = "leaf"
    for _ in range(depth - 1):
        value = {"a": value}
    return {"a": value}


def test_nesting_up_to_the_bound_is_fine_and_deeper_is_refused_with_the_path():
    (key, value), = flatten(nested(MAX_DEPTH))
    assert key.count("[") == MAX_DEPTH - 1 and value == "leaf"
    with pytest.raises(NestingTooDeep) as caught:
        flatten(nested(MAX_DEPTH + 1))
    assert caught.value.path == "a" + "[a]" * (MAX_DEPTH - 1)


def test_a_list_that_contains_itself_is_a_nesting_error_not_a_recursion_error():
    loop: list = ["x"]
    loop.append(loop)
    with pytest.raises(NestingTooDeep):
        sign({"loop": loop}, "secret")


@pytest.mark.parametrize("params", [["a"], "a=b", None, 5, (("a", 1),)])
def test_params_must_be_a_dict(params):
    with pytest.raises(UnsignableValue, match="params must be a dict"):
        flatten(params)


def test_errors_are_signing_errors_and_value_errors_never_type_errors_and_they_pickle():
    for params in ({"a": b"x"}, {True: 1}, nested(MAX_DEPTH + 2), {"a": [1, {2}]}):
        with pytest.raises(SigningError) as caught:
            sign(params, "secret")
        assert isinstance(caught.value, ValueError) and not isinstance(caught.value, TypeError)
        copy = pickle.loads(pickle.dumps(caught.value))
        assert type(copy) is type(caught.value) and str(copy) == str(caught.value)
