"""Validation messages as support staff read them: one flat ``field path -> [messages]`` mapping and
one readable line.

marshmallow reports nested problems as nested dicts (``{"products": {0: {"quantity": [...]}}}``);
a dead letter, a log line and ``wms-relay dead show`` want ``products.0.quantity: Not a valid
integer.`` instead.
"""
from __future__ import annotations

SCHEMA = "_schema"
# A summary lists this many fields; the rest are counted (a bad 5,000-line receipt stays one line).
SUMMARY_FIELDS = 10
_SEGMENT_CHARS = 60


def flatten(messages: object, prefix: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Flatten marshmallow's nested messages to dotted paths, sorted (list indexes numerically).

    A nested ``_schema`` entry (a problem with a whole object, such as "Must be a JSON object.")
    is reported at that object's own path; only a problem with the whole event stays ``_schema``.
    """
    flat: dict[str, list[str]] = {}
    _collect(messages, prefix, flat)
    return {path: flat[path] for path in sorted(flat, key=_path_order)}


def _collect(messages: object, prefix: tuple[str, ...], flat: dict[str, list[str]]) -> None:
    if isinstance(messages, dict):
        for key, value in messages.items():
            segment = str(key)
            _collect(value, prefix if segment == SCHEMA else prefix + (segment,), flat)
        return
    items = messages if isinstance(messages, list) else [messages]
    for item in items:
        if isinstance(item, (dict, list)):
            _collect(item, prefix, flat)
        else:
            flat.setdefault(".".join(prefix) or SCHEMA, []).append(str(item))


def _path_order(path: str) -> tuple:
    if path == SCHEMA:
        return ((0, 0, ""),)
    return tuple((1, int(part), "") if part.isdigit() and part.isascii() else (2, 0, part)
                 for part in path.split("."))


def readable_path(path: str) -> str:
    """The path as it appears in a summary: printable and short, whatever keys the input had."""
    if path.isprintable() and len(path) <= 3 * _SEGMENT_CHARS:
        return path
    text = repr(path)[1:-1]
    return text if len(text) <= 3 * _SEGMENT_CHARS else text[: 3 * _SEGMENT_CHARS - 3] + "..."


def summarize(operation: str, messages: dict[str, list[str]]) -> str:
    """One line: ``receipt.create: products.0.quantity: Not a valid integer.; received_date: Must be ...``."""
    shown = list(messages.items())[:SUMMARY_FIELDS]
    parts = [f"{readable_path(path)}: {' '.join(texts)}" for path, texts in shown]
    hidden = len(messages) - SUMMARY_FIELDS
    if hidden > 0:
        parts.append(f"... and {hidden} more field(s)")
    return f"{readable_path(operation)}: {'; '.join(parts) or 'invalid event.'}"
