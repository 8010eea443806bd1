"""The canonical string, the signature and its verification (key rotation, constant time, no secret leaks)."""

from __future__ import annotations

import ast
import hashlib
import hmac
import inspect

import pytest

import signing
from signing import SigningError, canonical_string, sign, signed_pairs, verify
from signing.layout import MAX_REMEMBERED_SHAPES, MAX_REMEMBERED_SHAPE_KEYS, cache_sizes

SECRET = "s3cr3t-for-tests-only"
REQUEST = {"warehouse_id": "nw", "products": [{"artno": "998", "quantity": 2}],
           "api_key": "pub", "timestamp": 1700000000, "method": "POST", "url": "http://x.test/api/receipt"}
CANONICAL = ("api_key=pub&method=POST&products[0][artno]=998&products[0][quantity]=2&timestamp=1700000000"
             "&url=http://x.test/api/receipt&warehouse_id=nw")


def test_canonical_string_joins_pairs_in_natural_order_without_encoding():
    assert canonical_string(REQUEST) == CANONICAL
    assert signed_pairs(REQUEST)[:3] == [("api_key", "pub"), ("method", "POST"),
                                         ("products[0][artno]", "998")]


def test_the_signature_is_lowercase_hex_hmac_sha256_of_the_canonical_string():
    expected = hmac.new(SECRET.encode(), CANONICAL.encode(), hashlib.sha256).hexdigest()
    assert sign(REQUEST, SECRET) == expected
    assert len(expected) == 64 and expected == expected.lower()


def test_utf8_text_is_signed_as_its_utf8_bytes():
    params = {"name": "Soffa Åre – grå", "api_key": "k"}
    text = "api_key=k&name=Soffa Åre – grå"
    assert canonical_string(params) == text
    expected = hmac.new("nyckel-ö".encode(), text.encode(), hashlib.sha256).hexdigest()
    assert sign(params, "nyckel-ö") == expected


def test_a_top_level_signature_is_left_out_but_a_nested_one_is_data():
    signed = {**REQUEST, "signature": "anything"}
    assert canonical_string(signed) == CANONICAL
    assert sign(signed, SECRET) == sign(REQUEST, SECRET)
    nested = {"a": {"signature": "kept"}}
    assert canonical_string(nested) == "a[signature]=kept"


def test_the_same_shape_with_other_values_signs_the_new_values():
    # The layout of a shape is remembered; the values must never be.
    first = {"b": "1", "a": ["x", "y"], "c10": 5, "c9": 6}
    second = {"b": "2", "a": ["p", "q"], "c10": 7, "c9": 8}
    assert canonical_string(first) == "a[0]=x&a[1]=y&b=1&c9=6&c10=5"
    assert canonical_string(second) == "a[0]=p&a[1]=q&b=2&c9=8&c10=7"
    assert canonical_string(first) == "a[0]=x&a[1]=y&b=1&c9=6&c10=5"


def test_colliding_keys_sign_once_with_the_last_value_as_php_does():
    assert canonical_string({"a": ["list"], "a[0]": "literal", "b": "B"}) == "a[0]=literal&b=B"
    assert canonical_string({"a[0]": "literal", "a": ["list"], "b": "B"}) == "a[0]=list&b=B"
    assert signed_pairs({"z": "1", "a": {"b": "x"}, "a[b]": "y"}) == [("a[b]", "y"), ("z", "1")]


def test_tiny_and_empty_requests():
    assert canonical_string({}) == ""
    assert canonical_string({"a": []}) == ""
    assert canonical_string({"only": None}) == "only="
    assert sign({}, SECRET) == hmac.new(SECRET.encode(), b"", hashlib.sha256).hexdigest()


def test_verify_accepts_the_right_signature_under_any_rotated_secret():
    signature = sign(REQUEST, SECRET)
    signed = {**REQUEST, "signature": signature}
    assert verify(signed, SECRET)
    assert verify(signed, ["new-secret", SECRET])
    assert verify(signed, (SECRET, "old-secret"))
    assert not verify(signed, "wrong")
    assert not verify(signed, ["wrong", "also-wrong"])


def test_verify_refuses_tampered_params_and_odd_signatures():
    signature = sign(REQUEST, SECRET)
    assert not verify({**REQUEST, "warehouse_id": "sw", "signature": signature}, SECRET)
    assert not verify({**REQUEST, "timestamp": 1700000001, "signature": signature}, SECRET)
    assert not verify({**REQUEST, "signature": signature.upper()}, SECRET)
    assert not verify({**REQUEST, "signature": signature[:-1]}, SECRET)
    assert not verify({**REQUEST, "signature": signature + "0"}, SECRET)
    assert not verify({**REQUEST, "signature": "é" * 64}, SECRET)  # non-ASCII: False, not a TypeError
    assert not verify({**REQUEST, "signature": ""}, SECRET)


@pytest.mark.parametrize("odd", [None, 123, ["abc"], {"a": 1}, b"abc"])
def test_a_missing_or_non_string_signature_is_false(odd):
    assert not verify(REQUEST, SECRET)
    assert not verify({**REQUEST, "signature": odd}, SECRET)
    assert not verify("not a dict", SECRET)


def test_verify_compares_in_constant_time():
    source = inspect.getsource(signing.canonical.verify)
    calls = {node.func.attr for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
    assert "compare_digest" in calls
    compares = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Compare)
                and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops)]
    assert not compares, "verify must not compare signatures with == or !="


@pytest.mark.parametrize("secrets", [[], (), None, 5, b"bytes-secret", [SECRET, None], [""], ""])
def test_bad_secrets_are_refused_plainly(secrets):
    with pytest.raises(SigningError, match="secret"):
        verify({**REQUEST, "signature": "0" * 64}, secrets)


@pytest.mark.parametrize("secret", [None, 5, b"bytes", ""])
def test_sign_needs_a_non_empty_str_secret(secret):
    with pytest.raises(SigningError, match="secret"):
        sign(REQUEST, secret)


def test_the_secret_never_appears_in_an_error_or_its_chain():
    secret = "TOPSECRET-\ud800-VALUE"
    with pytest.raises(SigningError) as caught:
        sign(REQUEST, secret)
    assert "TOPSECRET" not in str(caught.value) and "TOPSECRET" not in repr(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None  # nothing chained holds it
    for bad in ({"a": b"x"}, {"a": float("nan")}, {True: 1}, {"a": "\udc00"}):
        with pytest.raises(SigningError) as caught:
            sign(bad, "TOPSECRET-VALUE")
        assert "TOPSECRET" not in str(caught.value) and "TOPSECRET" not in repr(caught.value.args)


def test_the_caches_remember_keys_only_never_values_or_secrets():
    sign(REQUEST, "CACHE-PROBE-SECRET")
    from signing import layout, natural_order
    remembered = repr([(shape, found.keys, found._text) for shape, found in layout._layouts._values.items()])
    remembered += repr(natural_order._sort_keys._values)
    assert "products[0][artno]" in remembered
    assert "CACHE-PROBE-SECRET" not in remembered
    assert "1700000000" not in remembered and "nw" not in remembered


def test_the_layout_memo_stays_bounded_in_shapes_and_keys():
    for number in range(MAX_REMEMBERED_SHAPES + 300):
        sign({f"field{number}": "x", "api_key": "k"}, SECRET)
    sizes = cache_sizes()
    assert sizes["shapes"] <= MAX_REMEMBERED_SHAPES
    assert sizes["shape_keys"] <= MAX_REMEMBERED_SHAPE_KEYS
    big = {"lines": [{"artno": str(n), "quantity": n} for n in range(2000)]}
    for offset in range(80):  # 80 distinct shapes of 4,000+ keys: more keys than the budget
        sign({**big, f"extra{offset}": 1}, SECRET)
        assert cache_sizes()["shape_keys"] <= MAX_REMEMBERED_SHAPE_KEYS
