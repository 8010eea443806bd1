"""Leaf values render as PHP's ``(string)`` cast of what ``json_decode($body, true)`` gives."""

from __future__ import annotations

import enum
import math
import pickle

import pytest

from signing import SigningError, UnsignableValue
from signing.values import php_float, php_float_by_digits, php_int, php_string


@pytest.mark.parametrize(("value", "expected"), [
    (0.30000000000000004, "0.3"),
    (0.1 + 0.2, "0.3"),
    (1e20, "1.0E+20"),
    (100.0, "100"),
    (-0.0, "-0"),
    (0.0, "0"),
    (1e-7, "1.0E-7"),
    (1.5e-7, "1.5E-7"),
    (1e15, "1.0E+15"),
    (1e14, "1.0E+14"),          # exponent form from 15 digits before the point
    (1e13, "10000000000000"),
    (99999999999999.0, "99999999999999"),
    (0.0001, "0.0001"),
    (0.00001, "1.0E-5"),        # exponent form below 1e-4
    (1.5e300, "1.5E+300"),
    (-2.5, "-2.5"),
    (2.1, "2.1"),
    (123456789012345.67, "1.2345678901235E+14"),
    (0.1234567890123456, "0.12345678901235"),
    (1 / 3, "0.33333333333333"),
    (2 / 3, "0.66666666666667"),
    (9.999999999999999e22, "1.0E+23"),
    (5e-324, "4.9406564584125E-324"),
    (1.7976931348623157e308, "1.7976931348623E+308"),
    (-1e100, "-1.0E+100"),
    (123.456, "123.456"),
    (99999999999999.99, "1.0E+14"),   # rounds up to 15 digits before the point
])
def test_floats_render_with_14_significant_digits_in_phps_form(value, expected):
    assert php_float(value) == expected
    assert php_float_by_digits(value) == expected
    assert php_string(value) == expected


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused_with_the_key_path(value):
    with pytest.raises(UnsignableValue, match=r"packages\[3\]\[weight\]"):
        php_string(value, "packages[3][weight]")


@pytest.mark.parametrize(("value", "expected"), [
    (0, "0"),
    (-7, "-7"),
    (2**63 - 1, "9223372036854775807"),
    (-(2**63), "-9223372036854775808"),
    (2**63, "9.2233720368548E+18"),            # past int64 PHP's JSON parser makes a float
    (-(2**63) - 1, "-9.2233720368548E+18"),
    (12345678901234567890, "1.2345678901235E+19"),
    (10**30, "1.0E+30"),
])
def test_ints_render_in_decimal_inside_int64_and_as_php_floats_outside(value, expected):
    assert php_int(value) == expected
    assert php_string(value) == expected


def test_an_int_too_large_even_for_a_float_is_refused():
    with pytest.raises(UnsignableValue, match="INF"):
        php_string(10**400, "quantity")


@pytest.mark.parametrize(("value", "expected"), [
    (True, "1"), (False, ""), (None, ""), ("", ""), ("åäö & =", "åäö & ="),
])
def test_bools_none_and_strings(value, expected):
    assert php_string(value) == expected


class Zone(str, enum.Enum):
    HIGH = "H"


class Count(enum.IntEnum):
    TWO = 2


def test_str_and_int_subclasses_render_as_json_dumps_writes_them():
    assert php_string(Zone.HIGH) == "H"
    assert php_string(Count.TWO) == "2"


@pytest.mark.parametrize("value", [b"bytes", bytearray(b"x"), {1, 2}, frozenset(), object(), 1j])
def test_values_json_cannot_carry_are_refused_naming_the_type_not_the_value(value):
    with pytest.raises(UnsignableValue) as caught:
        php_string(value, "products[0][artno]")
    message = str(caught.value)
    assert "products[0][artno]" in message
    assert type(value).__name__ in message
    assert "bytes'" not in message and repr(value) not in message
    assert isinstance(caught.value, SigningError) and isinstance(caught.value, ValueError)


def test_errors_pickle_with_their_path():
    error = UnsignableValue("packages[3][weight]", "NaN and infinity have no JSON form")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is UnsignableValue
    assert (copy.path, copy.detail, str(copy)) == (error.path, error.detail, str(error))
