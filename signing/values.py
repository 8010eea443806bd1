"""Step 2: render a leaf value as PHP's ``(string)`` cast would, after ``json_decode($body, true)``.

Trademax decodes the JSON body with PHP and casts every leaf to a string before it signs, so the text we
sign must be what PHP makes of the value *after* a JSON round trip:

====================  ==========================  =====================================================
Python value          PHP value after json_decode  ``(string)``
====================  ==========================  =====================================================
``str``               string                       unchanged
``True`` / ``False``  bool                         ``"1"`` / ``""``
``None``              null                         ``""`` (the key stays, with an empty value)
``int`` in int64      int                          decimal
``int`` outside int64 float (PHP's JSON parser)    as a float below
``float``             float                        14 significant digits, PHP's own exponent form
====================  ==========================  =====================================================

Floats follow ``zend_gcvt(value, precision=14, '.', 'E')``: the value rounded to 14 significant digits,
trailing zeros dropped; fixed notation when the decimal exponent is in [-4, 14], otherwise ``d.dddE+x`` with
at least one digit after the point (``1.0E+20``, ``1.0E-7``). So ``0.30000000000000004`` → ``0.3``,
``100.0`` → ``100``, ``1e14`` → ``1.0E+14``, ``-0.0`` → ``-0``. NaN and ±inf have no JSON form.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import UnsignableValue

#: PHP's JSON parser keeps integers in [INT64_MIN, INT64_MAX] as ints and turns the rest into floats.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

#: PHP's ``precision`` ini setting (default 14), the digits ``(string)$float`` keeps.
PHP_PRECISION = 14


def php_float(value: float, path: str = "") -> str:
    """``(string)$value`` for a PHP float (``precision`` = 14)."""
    text = repr(value)  # the shortest text that reads back as the same float
    if len(text) <= 15 and "e" not in text and -1e14 < value < 1e14:
        # At most 14 significant digits in fixed notation: rounding to 14 digits changes nothing (the
        # float is within half an ulp of this text, far inside half a 14th digit), and PHP prints fixed
        # notation here too. Only a zero fraction differs: PHP writes 100.0 as "100" (and -0.0 as "-0").
        return text[:-2] if text.endswith(".0") else text
    return php_float_by_digits(value, path)


def php_float_by_digits(value: float, path: str = "") -> str:
    """The general case of :func:`php_float`: zend_gcvt's rules applied to 14 correctly rounded digits."""
    if not math.isfinite(value):
        raise UnsignableValue(path, "NaN and infinity have no JSON form")
    if value == 0.0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    # format(..., ".13e") is correctly rounded to 14 significant digits, as zend_dtoa mode 2 is.
    mantissa, exponent = format(value, f".{PHP_PRECISION - 1}e").split("e")
    sign = ""
    if mantissa[0] == "-":
        sign, mantissa = "-", mantissa[1:]
    digits = (mantissa[0] + mantissa[2:]).rstrip("0")
    point = int(exponent) + 1  # zend_dtoa's decpt: value = 0.DIGITS × 10**point
    if point < -3 or point > PHP_PRECISION:
        power = point - 1
        return f"{sign}{digits[0]}.{digits[1:] or '0'}E{'-' if power < 0 else '+'}{abs(power)}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if len(digits) <= point:
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def php_int(value: int, path: str = "") -> str:
    """``(string)`` of what PHP's JSON parser makes of an integer: itself in int64, else a float."""
    if INT64_MIN <= value <= INT64_MAX:
        return int.__repr__(value)
    try:
        as_float = float(value)
    except OverflowError:
        as_float = math.inf
    if math.isinf(as_float):
        raise UnsignableValue(path, "integer too large: PHP would read it as INF")
    return php_float(as_float, path)


def php_string(value: Any, path: str = "") -> str:
    """Render one leaf value as PHP's ``(string)`` cast; ``path`` names it in errors.

    Containers are not leaves: :mod:`signing.flatten` walks them. Anything JSON cannot carry (bytes, sets,
    arbitrary objects) raises :class:`UnsignableValue`, naming the type but never the value.
    """
    if value is True:
        return "1"
    if value is False or value is None:
        return ""
    if isinstance(value, str):
        return str.__str__(value)  # a str subclass (StrEnum …) as json.dumps writes it: its text
    if isinstance(value, int):  # bool was handled above
        return php_int(value, path)
    if isinstance(value, float):
        return php_float(float(value), path)
    raise UnsignableValue(path, f"a {type(value).__name__} has no JSON form (use str, int, float, bool, "
                                "None, list, tuple or dict)")
