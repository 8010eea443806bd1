"""The short, secret-free summary of a task's argument that Flower and logs show.

Celery puts ``argsrepr`` — by default the repr of every argument, i.e. the whole WMS event — into the
message headers, the ``task-sent``/``task-received`` events Flower displays, and its own log lines.  We
replace it with this summary: the destination, the operation, the event's key and what it is about
(order_no, artno, warehouse), never the rest of the payload: ``(kaching stock.adjust key=E-1 artno=123
warehouse_id=nw type=absolute)``.  Our publishers pass it (``tasks.publishing.celery_publisher``)
and the worker recomputes it for every message it receives (``tasks.base.SummarizedRequest``), so a
message published by any WMS is shown the same way.

Pure: no I/O, nothing from Celery.  The operation table comes from ``worker.destinations.table`` (pure as
well).
"""
from __future__ import annotations

from typing import Any

from worker.destinations.table import OPERATIONS, TASKS

# Shown after the key, in this order, when present (the key's own field is not repeated).
_SHOWN = ("transaction_id", "order_no", "artno", "warehouse_id", "type")
_MAX_VALUE = 40


def _shown_value(value: Any) -> str | None:
    """A field value fit for a one-line summary: text or a whole number, printable, at most 40 chars."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = "".join(ch if ch.isprintable() and not ch.isspace() else "?" for ch in str(value))
    return text if len(text) <= _MAX_VALUE else text[:_MAX_VALUE] + "…"


def _key_field(operation: str) -> str:
    spec = OPERATIONS.get(operation)
    return spec.key_field if spec is not None else "event_id"


def argument_summary(operation: str, event: Any, destination: str | None = None) -> str:
    """``(receipt.create key=R-1 warehouse_id=nw)`` for one event of ``operation``; with ``destination``,
    ``(trademax receipt.create key=R-1 ...)``."""
    named = f"{destination} {operation}" if destination else operation
    if not isinstance(event, dict):
        return f"({named}: not a JSON object)"
    key_field = _key_field(operation)
    parts = [named]
    key = _shown_value(event.get(key_field))
    parts.append(f"key={key}" if key is not None else f"key=(no {key_field})")
    for name in _SHOWN:
        if name == key_field:
            continue
        value = _shown_value(event.get(name))
        if value is not None:
            parts.append(f"{name}={value}")
    return "(" + " ".join(parts) + ")"


def task_argument_summary(task_name: Any, args: Any, kwargs: Any) -> str:
    """The summary of a whole task call as Celery sees it: ``args``, ``kwargs`` of task ``task_name``.

    A delivery task takes exactly one JSON object; anything else is summarised by its shape only."""
    name = task_name if isinstance(task_name, str) else "?"
    row = TASKS.get(name)
    operation = row.name if row is not None else name
    destination = row.destination if row is not None else None
    if isinstance(args, (list, tuple)) and len(args) == 1 and not kwargs:
        return argument_summary(operation, args[0], destination)
    count = len(args) if isinstance(args, (list, tuple)) else "?"
    named = len(kwargs) if isinstance(kwargs, dict) else "?"
    shown = f"{destination} {operation}" if destination else operation
    return f"({shown}: {count} positional and {named} keyword arguments — not one JSON object)"
