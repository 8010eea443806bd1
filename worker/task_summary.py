"""The short, secret-free summary of a task's argument that Flower and logs show.

Flower displays a task's ``argsrepr``; by default that is the repr of the whole event.  We publish with
this summary instead (operation, key, order_no/artno/warehouse) and the worker reports it too, so the
full payload never reaches Flower."""
from __future__ import annotations

from typing import Any

_SHOWN = ("transaction_id", "event_id", "order_no", "artno", "warehouse_id", "type")


def argument_summary(operation: str, event: Any) -> str:
    if not isinstance(event, dict):
        return f"({operation}: not a JSON object)"
    parts = [operation]
    for name in _SHOWN:
        value = event.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            text = str(value)
            parts.append(f"{name}={text[:40]}{'…' if len(text) > 40 else ''}")
    return "(" + " ".join(parts) + ")"
