"""Malformed broker messages become dead letters: what the Redis channel does with a message that
:func:`tasks.raw_messages.screen` turned away.

The letter has reason ``malformed_message``; its operation is the one the message's ``headers.task``
named, if it named one of ours, else ``unknown``; its destination the one whose queue the message came
from (a message on ``kaching.stock`` is ka-ching's: ``dead list --destination kaching``); its key is
``(raw message <sha256 prefix>)``; its event is the evidence (queue, size, the message cut to 8 KiB with
its base64 body decoded, secret-looking keys blanked and ``signature=``/``"secret": ...`` text scrubbed);
its detail the one-sentence problem.
``wms-relay dead list`` shows it, ``dead show`` shows the evidence, and ``dead retry`` refuses it — it is
no event wms-relay could send — saying so (``worker.support.actions``).

If the store cannot take the letter (Redis went away between the pop and the write), the message is
logged at ERROR with the same evidence: the one trace left, as kombu itself leaves none for a message
lost in that window.
"""
from __future__ import annotations

import json
import logging
from typing import Any

import redis

from worker.destinations.table import delivery_ref
from worker.store.dead_letters import DeadLetters
from worker.encoding import utf8_safe
from worker.redaction import Scrubber
from tasks.raw_messages import REASON, Malformed

log = logging.getLogger("wms_relay.malformed")
_SCRUBBER = Scrubber(())  # no secret values here: the patterns (signature=..., "secret": "...") still apply


def _scrubbed(value: Any) -> Any:
    return _SCRUBBER.scrub(utf8_safe(value))


def record(client: redis.Redis, malformed: Malformed, queue: str) -> str | None:
    """Write the dead letter; return its id (None if the store could not take it: logged instead)."""
    operation = malformed.operation or "unknown"
    kept = _scrubbed(malformed.evidence)
    detail = f"from queue {queue}: {malformed.problem}"
    try:
        letters = DeadLetters(client, delivery_ref=delivery_ref)
        letter_id = letters.add(operation, malformed.key, kept, REASON, messages=[malformed.problem],
                                attempts_log=[], detail=detail, destination=malformed.destination)
    except redis.RedisError as exc:
        log.error("malformed message from queue %s could not be kept as a dead letter (%s: %s): %s; "
                  "the message was: %s", queue, type(exc).__name__, exc, malformed.problem,
                  json.dumps(kept, ensure_ascii=True)[:4000])
        return None
    log.error("malformed message from queue %s is dead letter %s: %s (wms-relay dead show %s)",
              queue, letter_id, malformed.problem, letter_id)
    return letter_id
