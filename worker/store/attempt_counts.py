"""Attempt counts for the metrics: how many send attempts ended how, and how long the destination took,
summed over every worker that ever ran — in the store, so ``wms-relay metrics`` (one scrape target) sees
all workers, on any host, and the counts survive a worker's restart.

    wms:metrics:attempts   hash  "destination|operation|outcome|status" -> attempts (a counter)
    wms:metrics:latency    hash  "destination|operation|le=<bound>"      -> attempts that took <= bound and
                                                                            more than the bound before it
                                 "destination|operation|sum"             -> total seconds (float)
                                 "destination|operation|count"           -> attempts timed

Workers add to them in one batch every few seconds (``worker.observe.metrics.AttemptTally``), not per
attempt: one Lua script carrying a request id (``worker.store.requests``), so a batch resent after a
store timeout is replayed, not counted twice:

    wms:request:<id>       the reply of a batch, replayed if the call is resent (expires after 10 min)

The label values are operation names (``[a-z0-9_.-]``), outcome words and HTTP statuses, so ``|`` never
occurs inside one; the number of fields is bounded by operations x outcomes x statuses.  Nothing here is
ever deleted: Prometheus computes rates from the running totals.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from worker.encoding import text
from worker.store.requests import replaying, reply_key, request_id

# KEYS: the attempts hash, the latency hash, the reply key.  ARGV: n, then n (field, count) pairs for the
# attempts hash, then (field, amount) pairs for the latency hash (a "|sum" field is a float).
_ADD = replaying("""
local n = tonumber(ARGV[1])
for i = 2, 2 * n, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
for i = 2 * n + 2, #ARGV - 1, 2 do
  if string.sub(ARGV[i], -4) == '|sum' then redis.call('HINCRBYFLOAT', KEYS[2], ARGV[i], ARGV[i + 1])
  else redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
return 1
""")

# Upper bounds (seconds) of the latency buckets, as Prometheus histograms use them (the last is +Inf).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, float("inf"))


def bucket_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


@dataclass(frozen=True)
class LatencyHistogram:
    """One (destination, operation)'s latency: cumulative bucket counts as Prometheus wants them."""

    destination: str
    operation: str
    buckets: tuple[tuple[str, float], ...]  # (le, cumulative count), +Inf last
    sum: float
    count: float


class AttemptCounts:
    """The attempt counters in one Redis (any client: bytes or text replies)."""

    def __init__(self, redis_client, *, namespace: str = "wms") -> None:
        self._redis = redis_client
        self._namespace = namespace
        self._add = redis_client.register_script(_ADD)
        self._attempts = f"{namespace}:metrics:attempts"
        self._latency = f"{namespace}:metrics:latency"

    def add(self, attempts: Mapping[tuple[str, str, str, str], int],
            latency: Mapping[tuple[str, str], tuple[list[int], float, int]]) -> None:
        """Add one batch: ``attempts`` (destination, operation, outcome, status) -> count; ``latency``
        (destination, operation) -> (count per bucket of LATENCY_BUCKETS, seconds, count).  One round trip,
        replayed (not added again) if it is resent."""
        if not attempts and not latency:
            return
        args: list = [len(attempts)]
        for labels, count in attempts.items():
            args += ["|".join(labels), int(count)]
        for (destination, operation), (per_bucket, seconds, count) in latency.items():
            prefix = f"{destination}|{operation}"
            for bound, n in zip(LATENCY_BUCKETS, per_bucket):
                if n:
                    args += [f"{prefix}|le={bucket_label(bound)}", int(n)]
            args += [f"{prefix}|sum", repr(float(seconds)), f"{prefix}|count", int(count)]
        self._add(keys=[self._attempts, self._latency, reply_key(self._namespace, request_id())], args=args)

    def attempts(self) -> dict[tuple[str, str, str, str], int]:
        """(destination, operation, outcome, status) -> attempts, over all workers."""
        found = {}
        for field, count in self._redis.hgetall(self._attempts).items():
            parts = tuple(text(field).split("|"))
            if len(parts) == 4:
                found[parts] = int(count)
        return found

    def latency(self) -> list[LatencyHistogram]:
        """Every (destination, operation)'s latency histogram, cumulative as Prometheus wants it."""
        raw: dict[tuple[str, str], dict[str, float]] = {}
        for field, value in self._redis.hgetall(self._latency).items():
            destination, operation, part = (text(field).split("|") + ["", ""])[:3]
            raw.setdefault((destination, operation), {})[part] = float(value)
        found = []
        for (destination, operation), parts in sorted(raw.items()):
            running, buckets = 0.0, []
            for bound in LATENCY_BUCKETS:
                running += parts.get(f"le={bucket_label(bound)}", 0.0)
                buckets.append((bucket_label(bound), running))
            found.append(LatencyHistogram(destination, operation, tuple(buckets), parts.get("sum", 0.0),
                                          parts.get("count", running)))
        return found
