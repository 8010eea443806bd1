"""The broker's side of the store, read-only: how many task messages wait on each queue, and how many a
worker holds unacknowledged.  kombu's Redis transport writes these keys; we only count them.

    trademax.dispatch, trademax.receipt, ...   lists: the queues' messages (one list per queue)
    <queue>\\x06\\x163, ...\\x06\\x166, \\x06\\x169  lists: the same queue's messages sent with a priority
    unacked                                    hash: delivery tag -> message, while a worker holds it

Each message our publishers put on a queue (the door, the scheduler, the fan-out, support actions) carries
its publish time in header ``published_at`` (Unix seconds, the publisher's clock) — a WMS's own messages
need not.  A queue is a FIFO list (LPUSH in, BRPOP out), so the publish time of the oldest message still
queued tells the stranded-event sweep (``worker.scheduling.stranded``) which messages have certainly left
it; and the unacknowledged set says which messages workers hold.  :func:`broker_snapshot` reads both at
one instant.

The queues to count are handed in (``worker.destinations.table.QUEUES``, or one destination's): the store
sits below the destinations and knows no table.
"""
from __future__ import annotations

import base64
import json
from typing import Any, Iterable

from redis.client import NEVER_DECODE

from worker.encoding import text

_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
UNACKED_HASH = "unacked"
PUBLISHED_AT = "published_at"  # the header of a message's publish time (Unix seconds)
# How many of a queue's oldest messages are looked at for one with a publish time (a WMS's own messages,
# which have none, may be the oldest few).
LOOK_AT_OLDEST = 50
# Messages are read as bytes whatever the client decodes: a raw message that is not UTF-8 (malformed input
# on the broker's door) must not make the read fail — the stranded sweep would see nothing while it sits
# there.  (redis-py's own option for a reply never to be decoded, as its DUMP uses.)
_AS_BYTES = {NEVER_DECODE: []}


def queue_depths(redis_client, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting on each of ``queues`` (every priority list of it), in one round trip."""
    queues = list(queues)
    pipe = redis_client.pipeline(transaction=False)
    for queue in queues:
        for suffix in _PRIORITY_SUFFIXES:
            pipe.llen(queue + suffix)
    counts = pipe.execute()
    step = len(_PRIORITY_SUFFIXES)
    return {queue: sum(counts[i * step:(i + 1) * step]) for i, queue in enumerate(queues)}


def unacked(redis_client) -> int:
    """Messages workers hold right now (taken, not yet acknowledged)."""
    return int(redis_client.hlen(UNACKED_HASH))


def broker_snapshot(redis_client, queues: Iterable[str], now: float) -> tuple[dict[str, float | None], list]:
    """What the stranded sweep reads of the broker, in one ``MULTI``/``EXEC``:

    - for each queue, a time before which every message published to it has left it: ``now`` when it is
      empty; else the publish time of its oldest message that has one (messages ahead of that one are a
      WMS's own); None when none of its ``LOOK_AT_OLDEST`` oldest messages says (a queue full of messages
      from a WMS, or from an earlier version: nothing can be said until it moves on).  Only priority 0's
      list counts: our publishers send no priority;
    - the messages workers hold right now, each as (task name, positional arguments); one that cannot be
      read so is left out (the screen dead-letters such a message when it is restored).

    Read together, a message kombu's restore moves from the unacknowledged set back onto its queue (one
    transaction of its own) is seen in one or the other, never in neither — read one after the other, the
    stranded sweep once took four restored messages for lost (``make chaos``)."""
    queues = list(queues)
    # MULTI and EXEC sent as commands of a plain pipeline (one connection, in order): redis-py's own
    # transaction decodes EXEC's reply whatever each command asked, and a message need not be UTF-8.
    pipe = redis_client.pipeline(transaction=False)
    pipe.execute_command("MULTI")
    _read_oldest(pipe, queues)
    pipe.execute_command("HVALS", UNACKED_HASH, **_AS_BYTES)
    pipe.execute_command("EXEC", **_AS_BYTES)
    *lists, held = pipe.execute()[-1]
    return _oldest_of(queues, lists, now), _readable(held)


def _read_oldest(pipe, queues: list[str]) -> None:
    for queue in queues:
        pipe.execute_command("LRANGE", queue, -LOOK_AT_OLDEST, -1, **_AS_BYTES)


def _oldest_of(queues: list[str], lists: list, now: float) -> dict[str, float | None]:
    found: dict[str, float | None] = {}
    for queue, oldest in zip(queues, lists):
        if not oldest:
            found[queue] = now
            continue
        found[queue] = None
        for raw in reversed(oldest):  # the list's right end is its oldest message
            published = _published_at(raw)
            if published is not None:
                found[queue] = published
                break
    return found


def _published_at(raw: Any) -> float | None:
    try:
        value = json.loads(raw)["headers"][PUBLISHED_AT]
    except (ValueError, TypeError, KeyError):
        return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _readable(raws: list) -> list[tuple[str, list]]:
    found = []
    for raw in raws:
        try:
            envelope = json.loads(raw)[0]
            body = envelope["body"]
            if envelope.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            args = json.loads(text(body))[0]
            task = envelope["headers"]["task"]
        except (ValueError, TypeError, KeyError, IndexError):
            continue
        if isinstance(task, str) and isinstance(args, list):
            found.append((task, args))
    return found
