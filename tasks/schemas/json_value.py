"""Reduce an arbitrary Python value to a plain JSON value before any schema sees it.

Events arrive as decoded JSON from Celery, from ``wms-relay enqueue`` or from Python callers that
may hand over anything: bytes, sets, tuples, NaN, objects, a dict with integer keys, a structure
nested ten thousand levels deep.  This pass walks the value once (to a bounded depth and size),
copies it into exact builtin types (``dict`` with ``str`` keys, ``list``, ``str``, ``int``,
``float``, ``bool``, ``None``) and names every part that is not JSON.  The schemas then only ever see
JSON, so they cannot be surprised by a subclass with odd behaviour, and whatever they accept
serializes back to the same JSON.
"""
from __future__ import annotations

import math

# An event is at most five levels deep (event -> packages -> package -> products -> product).
MAX_DEPTH = 16
# Ample for the largest valid event (1,000 packages, 5,000 product lines); bounds memory and time.
MAX_NODES = 500_000
# Stop collecting after this many problems: the first few say enough.
MAX_PROBLEMS = 20


def path_segment(key: object) -> str:
    """How a mapping key appears in a field path: a string as itself, anything else as its repr."""
    if isinstance(key, str):
        return str.__str__(key)
    try:
        text = repr(key)
    except Exception:  # an object whose repr fails is named by its type
        text = f"<{type(key).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: object) -> str:
    return type(value).__name__


class _Walk:
    def __init__(self):
        self.nodes = 0
        self.problems: dict[str, list[str]] = {}

    def problem(self, path: tuple[str, ...], message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.setdefault(".".join(path) or "_schema", []).append(message)

    def copy(self, value: object, parent: tuple[str, ...], segment: str | None = None) -> object:
        """``value``, found at ``parent`` + ``segment`` (the path is built only where it is needed: for
        a problem, or for the children of an object or array)."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if self.nodes == MAX_NODES + 1:
                self.problem((), f"Too large: more than {MAX_NODES} values.")
            return None
        kind = type(value)
        # The plain case first: an exact str, int or bool (or None) is its own plain copy.
        if kind in _EXACT:
            return value
        path = parent if segment is None else parent + (segment,)
        # Exact-type and base-class calls throughout: a subclass's overridden methods never run.
        if issubclass(kind, str):
            return str.__str__(value)
        if issubclass(kind, int):
            return int.__int__(value)
        if issubclass(kind, float):
            number = float.__float__(value)
            if not math.isfinite(number):
                self.problem(path, "Not a finite number (JSON has no NaN or Infinity).")
            return number
        if issubclass(kind, (dict, list)):
            if len(path) >= MAX_DEPTH:
                self.problem(path, f"Nested too deeply (more than {MAX_DEPTH} levels).")
                return None
            if issubclass(kind, list):
                items = []
                for index, item in enumerate(list.__iter__(value)):
                    if self.nodes > MAX_NODES:
                        break
                    if type(item) in _EXACT and self.nodes < MAX_NODES:  # what copy() would do, inline
                        self.nodes += 1
                        items.append(item)
                    else:
                        items.append(self.copy(item, path, str(index)))
                return items
            result = {}
            for key, item in dict.items(value):
                if self.nodes > MAX_NODES:
                    break
                segment = path_segment(key)
                if not isinstance(key, str):
                    self.problem(path + (segment,), f"Keys must be strings, not {_kind(key)}.")
                if type(item) in _EXACT and self.nodes < MAX_NODES:  # what copy() would do, inline
                    self.nodes += 1
                    result[segment] = item
                else:
                    result[segment] = self.copy(item, path, segment)
            return result
        self.problem(path, f"Not a JSON value ({_kind(value)}).")
        return None


# Values that are their own plain copy: exact str, int and bool, and None (a subclass is copied).
_EXACT = frozenset({str, int, bool, type(None)})


def plain_json(payload: object) -> tuple[object, dict[str, list[str]]]:
    """Return ``(copy, problems)``: a plain JSON copy of ``payload`` and, by field path, what is not JSON.

    When ``problems`` is empty the copy is exactly equal to what ``json.loads(json.dumps(payload))``
    would give.  Paths join keys and list indexes with dots (``packages.0.weight``); ``_schema``
    names the payload itself.
    """
    walk = _Walk()
    try:
        copy = walk.copy(payload, ())
    except Exception as exc:  # an object whose very inspection fails is no JSON value either
        walk.problem((), f"Not a JSON value ({type(exc).__name__} while reading it).")
        copy = None
    return copy, walk.problems
