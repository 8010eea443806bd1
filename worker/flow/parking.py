"""Deliveries parked while their destination is paused or its circuit is open, and their gradual release.

A parked delivery is ``retrying`` in its ledger (no attempt counted) and an entry of the retry schedule —
so ``wms-relay retries`` lists it and a person can run it now — due only after ``SAFETY_SECONDS`` (should
the parked list ever be lost, it still comes back); the parked list says *which* deliveries wait for the
destination.  When the destination may be sent to again (resumed, pause ended, circuit closed), the
worker's flow keeper (worker.delivery.flow_keeper) releases them a slice at a time — at the rate limit's
pace where the destination has one — by making their schedule entries due now.

Key layout (``<ns>``: the destination's namespace):

    <ns>:flow:parked    sorted set: delivery ref -> when it was parked (oldest released first)
"""
from __future__ import annotations

import time
from typing import Callable, Mapping

from worker.encoding import text
from worker.store.requests import replaying, reply_key, request_id
from worker.store.retry_schedule import RetrySchedule

SAFETY_SECONDS = 3600.0

# KEYS[1] parked.  ARGV: how many.  Pops the oldest refs.
_TAKE = """
local found = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #found > 0 then redis.call('ZREM', KEYS[1], unpack(found)) end
return found
"""


def parked_key(namespace: str) -> str:
    return f"{namespace}:flow:parked"


class Parking:
    """One destination's parked deliveries (any redis-py client)."""

    def __init__(self, redis_client, namespace: str, schedule: RetrySchedule, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._redis = redis_client
        self._key = parked_key(namespace)
        self._ns = namespace
        self._schedule = schedule
        self._clock = clock
        # A resend replays the first reply (worker.store.requests).
        self._take = redis_client.register_script(replaying(_TAKE))

    def park(self, ref: str, message: Mapping) -> None:
        """Park delivery ``ref`` (its task ``message``): due again after SAFETY_SECONDS unless released
        before (a timed pause's end is seen by the flow keeper, which releases them gradually)."""
        now = self._clock()
        self._schedule.schedule(ref, message, now + SAFETY_SECONDS)
        self._redis.zadd(self._key, {ref: now}, nx=True)

    def release(self, count: int) -> list[str]:
        """Make the ``count`` longest-parked deliveries due now; their refs (some may have been run or
        removed meanwhile: those are simply not found in the schedule)."""
        if count <= 0:
            return []
        replay = reply_key(self._ns, request_id())
        refs = [text(ref) for ref in self._take(keys=[self._key, replay], args=[int(count)])]
        if refs:
            self._schedule.run_now(refs)
        return refs

    def count(self) -> int:
        return int(self._redis.zcard(self._key))
