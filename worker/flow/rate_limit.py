"""A rate limit per destination, shared by every worker process through Redis: GCRA, the "generic cell
rate algorithm" (a token bucket of depth one, kept as one number).

The store keeps the moment the next request may leave (the *next slot*).  A sender takes the slot: if it
is now or past, it goes at once; if it is at most ``max_wait`` away, it is *reserved* for this sender,
which sleeps until then and goes; further away, nothing is taken and the caller reschedules the delivery
(no attempt counted).  Taking a slot moves the next one ``1.02 / max_rps`` seconds on (2% under the limit:
``worker.flow.policy.SLOT_MARGIN``).  So requests leave evenly spaced: in any one-second window at most
``max_rps`` of them, plus one on the window's edge.

Why GCRA in Lua rather than the ``limits`` library (benchmarks/rate_limiters.py, docs/flow-control.md):
one round trip per request that also says how long to wait, so 32 threads waiting for a 20 rps limit
each reserve their own slot and sleep once, instead of polling a moving window (``limits``'
``hit``/``test`` say yes or no; a refused caller guesses when to ask again) — and one number per
destination instead of a list of timestamps.

A 429 or 503 with ``Retry-After`` *holds* the destination: the next slot moves to that moment, so every
worker waits (:meth:`RateLimit.hold_until`), limited or not.

Key layout (``<ns>`` is the destination's namespace: ``wms`` for Trademax, ``wms:<name>`` otherwise):

    <ns>:flow:rate:next    the next slot (Unix seconds, text); expires when it is past
    <ns>:flow:rate:sent    hash: Unix second -> requests let through in it (the current rate; the fields of
                           seconds older than a minute are dropped whenever a new second starts)

Times come from the caller's clock (injected), never the server's, like the ledger's.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from worker.encoding import text
from worker.flow.policy import emission_interval
from worker.store.requests import replaying, reply_key, request_id

# Lua helpers the gate (worker.flow.gate) composes; the functions take their keys as arguments.
#   rate_slot(k_next, now) -> the next free slot (>= now)
#   rate_count(k_sent, second, n): count ``n`` requests in ``second`` (Unix seconds)
#   rate_take(k_next, k_sent, now, slot, interval): take ``slot``; count the request in its second
RATE_LUA = """
local function rate_slot(k_next, now)
  local nxt = tonumber(redis.call('GET', k_next) or '0') or 0
  if nxt > now then return nxt end
  return now
end

local function rate_count(k_sent, second, n)
  if redis.call('HINCRBY', k_sent, string.format('%d', second), n) == n then
    for _, field in ipairs(redis.call('HKEYS', k_sent)) do
      if tonumber(field) < second - 60 then redis.call('HDEL', k_sent, field) end
    end
    redis.call('EXPIRE', k_sent, 120)
  end
end

local function rate_take(k_next, k_sent, now, slot, interval)
  if interval > 0 then
    local nxt = slot + interval
    redis.call('SET', k_next, string.format('%.6f', nxt), 'PX', math.ceil((nxt - now) * 1000) + 1000)
  end
  rate_count(k_sent, math.floor(slot), 1)
end
"""

# KEYS[1] next slot, KEYS[2] sent per second.  ARGV: now, interval (s; 0 = no limit), max wait (s).
# Returns {1, wait} when a slot was taken (go after ``wait`` seconds), {0, wait} when the slot is further
# away than max wait (nothing taken).
_TAKE = RATE_LUA + """
local now, interval, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local slot = rate_slot(KEYS[1], now)
if slot - now > max_wait then return {0, string.format('%.6f', slot - now)} end
rate_take(KEYS[1], KEYS[2], now, slot, interval)
return {1, string.format('%.6f', slot - now)}
"""

# KEYS[1] next slot.  ARGV: until, now.  The next slot is at least ``until``.
_HOLD = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local until_ = tonumber(ARGV[1])
if until_ <= current then return 0 end
local ms = math.ceil((until_ - tonumber(ARGV[2])) * 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.6f', until_), 'PX', ms)
return 1
"""


@dataclass(frozen=True)
class Slot:
    """The answer to "may a request leave?": ``taken`` (go after ``wait`` seconds, at ``at``) or not (the
    next slot is ``wait`` seconds away, more than the caller would wait)."""

    taken: bool
    wait: float
    at: float = 0.0


def rate_keys(namespace: str) -> list[str]:
    """[next slot, sent per second] of the destination with ``namespace``."""
    return [f"{namespace}:flow:rate:next", f"{namespace}:flow:rate:sent"]


class RateLimit:
    """One destination's shared rate limit (any redis-py client, bytes or text replies)."""

    def __init__(self, redis_client, namespace: str, *, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis_client
        self._keys = rate_keys(namespace)
        self._ns = namespace
        self._clock = clock
        # Each with a request id (worker.store.requests): a resend replays the first reply.
        self._take = redis_client.register_script(replaying(_TAKE))
        self._hold = redis_client.register_script(replaying(_HOLD))

    def take(self, max_rps: float, *, max_wait: float = 1.0) -> Slot:
        """Take the next slot if it is at most ``max_wait`` seconds away (``max_rps`` 0: no limit, only a
        hold can make a request wait)."""
        interval = emission_interval(max_rps)
        now = self._clock()
        replay = reply_key(self._ns, request_id())
        taken, wait = self._take(keys=[*self._keys, replay],
                                 args=[f"{now:.6f}", f"{interval:.9f}", f"{max_wait:.6f}"])
        wait = max(0.0, float(text(wait)))
        return Slot(bool(int(taken)), wait, now + wait)

    def hold_until(self, until: float) -> bool:
        """No request leaves before ``until`` (a 429/503's Retry-After).  False if a later hold or slot
        was already set."""
        replay = reply_key(self._ns, request_id())
        return bool(self._hold(keys=[self._keys[0], replay], args=[f"{until:.6f}", f"{self._clock():.6f}"]))

    def next_slot(self) -> float | None:
        """The moment the next request may leave, if that is in the future; else None."""
        raw = self._redis.get(self._keys[0])
        value = float(text(raw)) if raw is not None else None
        return value if value is not None and value > self._clock() else None

    def sent_per_second(self, seconds: int = 10) -> float:
        """Requests let through per second over the last ``seconds`` whole seconds (the current one not
        counted: it is not over)."""
        now = int(self._clock())
        counts = {int(text(k)): int(v) for k, v in self._redis.hgetall(self._keys[1]).items()}
        return sum(n for second, n in counts.items() if now - seconds <= second < now) / float(seconds)
