"""Minimal field checks for the fake Trademax: enough to provoke the documented permanent errors.

A missing required field answers 400 / error_code 450, a malformed one 400 / 451; the message names the
field (``packages[0].package_id``) the way a person would look for it in the event.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from worker.sandbox.trademax.answers import PARAM_INVALID, REQUIRED_PARAM_MISSING, reject

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def present(fields: Mapping[str, Any], name: str) -> bool:
    return fields.get(name) not in (None, "")


def required(fields: Mapping[str, Any], name: str, where: str = "") -> Any:
    if not present(fields, name):
        raise reject(400, REQUIRED_PARAM_MISSING, f"required param {where}{name} not specified")
    return fields[name]


def invalid(name: str, why: str) -> Exception:
    return reject(400, PARAM_INVALID, f"param {name} is invalid: {why}")


def one_of(fields: Mapping[str, Any], name: str, allowed: Iterable[str], where: str = "") -> str:
    value = required(fields, name, where)
    allowed = tuple(allowed)
    if value not in allowed:
        raise invalid(where + name, f"expected one of {', '.join(allowed)}, got {value!r}")
    return value


def integer(fields: Mapping[str, Any], name: str, where: str = "") -> int:
    """An int, or a string holding one (the document sends ``"quantity": "-7"``)."""
    value = required(fields, name, where)
    if isinstance(value, bool):
        raise invalid(where + name, f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        return int(value)
    raise invalid(where + name, f"expected an integer, got {value!r}")


def number(fields: Mapping[str, Any], name: str, where: str = "") -> float:
    value = required(fields, name, where)
    if isinstance(value, bool):
        raise invalid(where + name, f"expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise invalid(where + name, f"expected a number, got {value!r}") from None


def boolean(fields: Mapping[str, Any], name: str, default: bool) -> bool:
    value = fields.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1", ""):
        return value in (1, "1")
    raise invalid(name, f"expected a boolean, got {value!r}")


def date(fields: Mapping[str, Any], name: str) -> str:
    value = required(fields, name)
    if not isinstance(value, str) or not _DATE.match(value):
        raise invalid(name, f"expected YYYY-MM-DD, got {value!r}")
    return value


def records(fields: Mapping[str, Any], name: str, where: str = "") -> list[dict]:
    """A non-empty list of objects."""
    value = required(fields, name, where)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise invalid(where + name, "expected a list of objects")
    if not value:
        raise reject(400, REQUIRED_PARAM_MISSING, f"required param {where}{name} not specified (empty list)")
    return value
