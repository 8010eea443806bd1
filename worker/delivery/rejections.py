"""Events turned away at the door, never sent: invalid (the schema's messages name the fields) and
conflicting (an event key reused for a different payload).  Each becomes a dead letter a person can
read, whatever the event held — even text the store cannot take as it is (:func:`utf8_safe`).
"""
from __future__ import annotations

import json
from typing import Any

from tasks.events import Delivery, InvalidEvent
from worker.encoding import utf8_safe
from worker.redaction import redacted
from worker.delivery.relay import Relay


def reject_invalid(relay: Relay, operation: str, message: Any, exc: InvalidEvent, *,
                   destination: str) -> str:
    key = best_key(message)
    kept = utf8_safe(message) if jsonable(message) else _evidence(message)
    letter_id = relay.dead_letters.add(operation, key, kept, "invalid", messages=utf8_safe(exc.messages),
                                       attempts_log=[], detail=str(exc), destination=destination)
    relay.observer.invalid(operation, key, str(exc), letter_id=letter_id)
    return "dead"


def reject_conflict(relay: Relay, delivery: Delivery, accepted: Any) -> str:
    detail = (f"key {delivery.key} was already used for a different {delivery.operation} event "
              f"(fingerprint {accepted.existing_fingerprint[:12]} != {accepted.fingerprint[:12]}); not sent")
    letter_id = relay.dead_letters.add(
        delivery.operation, delivery.key, delivery.to_message(), "conflict", messages=[detail],
        attempts_log=[], detail=detail, fingerprints=[accepted.existing_fingerprint, accepted.fingerprint],
        destination=delivery.destination)
    relay.observer.parked(delivery, "dead", detail, letter_id=letter_id, kind="conflict")
    return "dead"


def best_key(message: Any) -> str:
    if isinstance(message, dict):
        for name in ("transaction_id", "event_id"):
            value = message.get(name)
            if isinstance(value, str) and 0 < len(value) <= 128:
                return utf8_safe(value)
    return "(no key)"


def _evidence(message: Any) -> str:
    """What JSON cannot keep (NaN, bytes, objects), as text for the dead letter — secret-looking keys
    redacted first: the store's own redaction works on keys, which a repr no longer has."""
    try:
        return repr(redacted(message))[:2000]
    except RecursionError:
        return f"(a {type(message).__name__} nested too deeply to keep)"


def jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True
