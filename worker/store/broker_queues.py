"""The broker's side of the store, read-only: how many task messages wait on each queue, and how many a
worker holds unacknowledged.  kombu's Redis transport writes these keys; we only count them.

    trademax.dispatch, trademax.receipt, ...   lists: the queues' messages (one list per queue)
    <queue>\\x06\\x163, ...\\x06\\x166, \\x06\\x169  lists: the same queue's messages sent with a priority
    unacked                                    hash: delivery tag -> message, while a worker holds it

The queues to count are handed in (``worker.destinations.table.QUEUES``, or one destination's): the store
sits below the destinations and knows no table.
"""
from __future__ import annotations

from typing import Iterable

_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
UNACKED_HASH = "unacked"


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
