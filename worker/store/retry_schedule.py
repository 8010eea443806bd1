"""Durable delayed retries: a Redis sorted set of due times that the scheduler moves back to the queue.

Never a Celery countdown/ETA: on a Redis broker those are held by a worker and redelivered after the
visibility timeout (so they run twice), and they vanish from view.  Here a retry is a record anyone
can list, run now or remove, and it survives restarts of every process and of Redis (AOF).

    wms:retry:due          sorted set  delivery ref -> due time (Unix seconds)
    wms:retry:in-flight    sorted set  delivery ref -> lease expiry, while a scheduler publishes it
    wms:retry:messages     hash        delivery ref -> the message JSON (task name, queue, the event; no
                                       secrets)

An entry is named by its delivery's ref (``stock.adjust:E-1``, ``kaching/stock.adjust:E-1``:
``worker.destinations.contract.Destination.delivery_ref``), so a delivery has at most one scheduled retry.

The scheduler's loop: ``take_due`` (atomic: each due entry moves to in-flight under a lease, so two
schedulers never take the same entry), publish, then ``confirm`` (gone for good) or ``put_back`` (publish
failed: due again later).  A scheduler that crashes between take and confirm leaves entries in flight;
``recover_stale`` makes them due again once their lease has passed.  That can publish an entry twice,
which the ledger's claim makes harmless; losing one is what we never risk.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from worker.encoding import stored_json, text

_SCHEDULE = """
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

# ARGV: now, limit, lease expiry.  Returns id1, message1, id2, message2, ...
_TAKE_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local taken = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local message = redis.call('HGET', KEYS[3], id)
  if message then
    redis.call('ZADD', KEYS[2], ARGV[3], id)
    taken[#taken + 1] = id
    taken[#taken + 1] = message
  end
end
return taken
"""

# Published: forget the entry — unless it was scheduled again meanwhile (then its new message stays).
_CONFIRM = """
local removed = redis.call('ZREM', KEYS[2], ARGV[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then redis.call('HDEL', KEYS[3], ARGV[1]) end
return removed
"""

_PUT_BACK = """
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""

# ARGV: now.  In-flight entries whose lease passed are due now (or keep the due time they were
# rescheduled with).
_RECOVER_STALE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local recovered = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[2], id)
  if redis.call('HEXISTS', KEYS[3], id) == 1 then
    redis.call('ZADD', KEYS[1], 'NX', ARGV[1], id)
    recovered[#recovered + 1] = id
  end
end
return recovered
"""

# ARGV: now, ids...
_RUN_NOW = """
local moved = 0
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
    moved = moved + 1
  end
end
return moved
"""

_REMOVE = """
local found = redis.call('ZREM', KEYS[1], ARGV[1]) + redis.call('ZREM', KEYS[2], ARGV[1])
return found + redis.call('HDEL', KEYS[3], ARGV[1])
"""


@dataclass(frozen=True)
class ScheduledRetry:
    """One entry of the schedule: when it is due and the message that will be re-published."""

    ref: str  # the delivery's ref
    due_at: float
    message: dict
    in_flight: bool = False

    def to_dict(self) -> dict:
        return {"ref": self.ref, "due_at": self.due_at, "message": self.message,
                "in_flight": self.in_flight}


class RetrySchedule:
    """The durable delayed-retry schedule in one Redis (any client: bytes or text replies)."""

    def __init__(self, redis_client, *, clock: Callable[[], float] = time.time,
                 in_flight_lease_seconds: float = 60.0, namespace: str = "wms") -> None:
        """``in_flight_lease_seconds``: how long a taken entry may wait for ``confirm`` before
        ``recover_stale`` considers its scheduler dead (longer than one publish takes)."""
        self._redis = redis_client
        self._clock = clock
        self._lease = float(in_flight_lease_seconds)
        self._keys = [f"{namespace}:retry:due", f"{namespace}:retry:in-flight",
                      f"{namespace}:retry:messages"]
        self._schedule = redis_client.register_script(_SCHEDULE)
        self._take_due = redis_client.register_script(_TAKE_DUE)
        self._confirm = redis_client.register_script(_CONFIRM)
        self._put_back = redis_client.register_script(_PUT_BACK)
        self._recover = redis_client.register_script(_RECOVER_STALE)
        self._run_now = redis_client.register_script(_RUN_NOW)
        self._remove = redis_client.register_script(_REMOVE)

    @staticmethod
    def _ref(ref: str) -> str:
        if not ref or not isinstance(ref, str):
            raise ValueError(f"a retry needs its delivery's ref (non-empty text), got {ref!r}")
        return ref

    def schedule(self, ref: str, message: Mapping[str, Any], due_at: float) -> None:
        """Add (or replace) the retry of delivery ``ref``: re-publish ``message`` at ``due_at`` (Unix
        seconds)."""
        body = stored_json(dict(message), where=f"retry {ref}")
        self._schedule(keys=self._keys, args=[self._ref(ref), repr(float(due_at)), body])

    def take_due(self, now: float | None = None, limit: int = 100) -> list[tuple[str, dict]]:
        """Entries due at ``now``, oldest first, each moved in flight: taken by exactly one caller."""
        now = self._clock() if now is None else now
        now = float(now)
        reply = self._take_due(keys=self._keys, args=[repr(now), int(limit), repr(now + self._lease)])
        return [(text(reply[i]), json.loads(text(reply[i + 1]))) for i in range(0, len(reply), 2)]

    def confirm(self, ref: str) -> bool:
        """The entry was published: remove it.  False if it was no longer in flight."""
        return bool(self._confirm(keys=self._keys, args=[self._ref(ref)]))

    def put_back(self, ref: str, due_at: float) -> bool:
        """Publishing failed: the in-flight entry is due again at ``due_at``.  False if not in flight."""
        return bool(self._put_back(keys=self._keys, args=[self._ref(ref), repr(float(due_at))]))

    def recover_stale(self, now: float | None = None) -> list[str]:
        """In-flight entries whose lease passed (their scheduler died mid-publish) become due again."""
        now = self._clock() if now is None else now
        return [text(i) for i in self._recover(keys=self._keys, args=[repr(float(now))])]

    def run_now(self, refs: Iterable[str], now: float | None = None) -> int:
        """Make scheduled entries due now (support staff: "retry these now").  Returns how many moved."""
        ids = [self._ref(i) for i in refs]
        if not ids:
            return 0
        now = self._clock() if now is None else now
        return int(self._run_now(keys=self._keys, args=[repr(float(now)), *ids]))

    def remove(self, ref: str) -> bool:
        """Forget an entry, scheduled or in flight.  False if there was none."""
        return bool(self._remove(keys=self._keys, args=[self._ref(ref)]))

    def get(self, ref: str) -> ScheduledRetry | None:
        """One entry (scheduled or in flight), or None."""
        due_key, flight_key, messages_key = self._keys
        pipe = self._redis.pipeline(transaction=False)
        pipe.zscore(due_key, ref).zscore(flight_key, ref).hget(messages_key, ref)
        due, flight, message = pipe.execute()
        if message is None or (due is None and flight is None):
            return None
        return ScheduledRetry(ref, float(due if due is not None else flight), json.loads(text(message)),
                              in_flight=due is None)

    def list(self, limit: int | None = 100, offset: int = 0) -> list[ScheduledRetry]:
        """Scheduled entries, soonest due first, skipping the first ``offset`` (in-flight ones are not
        listed: they are on their way)."""
        stop = -1 if limit is None else offset + max(int(limit), 1) - 1
        found = self._redis.zrange(self._keys[0], offset, stop, withscores=True)
        if not found:
            return []
        ids = [text(member) for member, _ in found]
        messages = self._redis.hmget(self._keys[2], ids)
        return [ScheduledRetry(ref, float(score), json.loads(text(message)))
                for ref, (_, score), message in zip(ids, found, messages) if message is not None]

    def next_due(self) -> float | None:
        """When the soonest entry is due (Unix seconds), or None when nothing is scheduled."""
        found = self._redis.zrange(self._keys[0], 0, 0, withscores=True)
        return float(found[0][1]) if found else None

    def count(self) -> int:
        """Entries waiting in the schedule (not counting those in flight)."""
        return int(self._redis.zcard(self._keys[0]))

    def in_flight_count(self) -> int:
        """Entries taken by a scheduler and not yet confirmed or put back."""
        return int(self._redis.zcard(self._keys[1]))
