"""Events turned away at the door, never sent: invalid (the schema's messages name the fields) and
conflicting (an event key reused for a different payload).  Each becomes a dead letter a person can
read, whatever the event held — even text the store cannot take as it is (:func:`utf8_safe`).
"""
from __future__ import annotations

import json
import re
from typing import Any

from tasks.events import DeliveryEvent, InvalidEvent
from worker.relay import Relay

_SURROGATE = re.compile(r"[\ud800-\udfff]")


def reject_invalid(relay: Relay, operation: str, message: Any, exc: InvalidEvent) -> str:
    key = best_key(message)
    kept = utf8_safe(message) if jsonable(message) else repr(message)[:2000]
    letter_id = relay.dead_letters.add(operation, key, kept, "invalid", messages=utf8_safe(exc.messages),
                                       attempts_log=[], detail=str(exc))
    relay.observer.invalid(operation, key, str(exc), letter_id=letter_id)
    return "dead"


def reject_conflict(relay: Relay, event: DeliveryEvent, accepted: Any) -> str:
    detail = (f"key {event.key} was already used for a different {event.operation} event "
              f"(fingerprint {accepted.existing_fingerprint[:12]} != {accepted.fingerprint[:12]}); not sent")
    letter_id = relay.dead_letters.add(
        event.operation, event.key, event.to_message(), "conflict", messages=[detail], attempts_log=[],
        detail=detail, fingerprints=[accepted.existing_fingerprint, accepted.fingerprint])
    relay.observer.parked(event, "dead", detail, letter_id=letter_id)
    return "dead"


def best_key(message: Any) -> str:
    if isinstance(message, dict):
        for name in ("transaction_id", "event_id"):
            value = message.get(name)
            if isinstance(value, str) and 0 < len(value) <= 128:
                return utf8_safe(value)
    return "(no key)"


def utf8_safe(value: Any) -> Any:
    """``value`` (JSON) with every string and key UTF-8 can encode: a lone surrogate, which JSON's
    ``\\udc80`` escape can carry, becomes that escape as text.  The store takes UTF-8 only; without this an
    invalid event holding one made its dead letter fail — the fuzz run found it — and the event vanished.
    Done on the JSON text, so any nesting depth the JSON decoder took is fine here too."""
    text = json.dumps(value, ensure_ascii=False)
    if not _SURROGATE.search(text):
        return value
    return json.loads(_SURROGATE.sub(lambda m: f"\\\\u{ord(m.group()):04x}", text))


def jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True
