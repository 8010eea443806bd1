"""This process's look at one destination's flow — its pause, its circuit, its rate limit's next slot — at
most :data:`LOOK_SECONDS` old: what lets a send skip the gate's script (worker.flow.send_steps).

The gate's script (worker.flow.gate) reads the pause, the circuit and the rate limit for every send.  When
they say nothing but "go" — not paused, the circuit closed with no failure and known to be up, no rate limit,
no Retry-After hold — a send that trusts this look reads and writes none of them (issue 21: four store
commands fewer per event).  Anything else, and the gate's script is asked, exactly as before.

The look is read in one round trip at most once a :data:`LOOK_SECONDS` per destination and process (the
LOOK script), which also hands the store the sends let through on the look since the last one: the rate
limit's count per second, which ``wms-relay status`` shows as the current rate.

How stale it may be (docs/flow-control.md, "How fresh a worker's look is"): what *this* process reports —
a failure, a Retry-After hold, a clock-skew fault, a pause or resume through its own flow controls —
drops its look at once (:meth:`FlowLook.forget`); what *another* process sets (a person's ``wms-relay
pause``, a circuit opened by another worker's failures, its hold) stops this one's sends within
:data:`LOOK_SECONDS`.  The clock is injected: tests move it by hand.
"""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from worker.encoding import text
from worker.flow.rate_limit import RATE_LUA
from worker.store.requests import replaying, reply_key

LOOK_SECONDS = 1.0

# KEYS: the pause, the circuit's state, the rate limit's next slot and its count per second, the reply key.
# ARGV: now, the sends let through on the last look (counted in the second of ``now``).
# Returns the pause's until and by, the circuit's state, failures and last success, the next slot ('' for
# none of each).  With a request id: a resend replays, the sends are counted once.
_LOOK = RATE_LUA + """
local n = tonumber(ARGV[2])
if n > 0 then rate_count(KEYS[4], math.floor(tonumber(ARGV[1])), n) end
local p = redis.call('HMGET', KEYS[1], 'until', 'by')
local c = redis.call('HMGET', KEYS[2], 'state', 'failures', 'last_success_at')
return {p[1] or '', p[2] or '', c[1] or 'closed', c[2] or '0', c[3] or '', redis.call('GET', KEYS[3]) or ''}
"""


@dataclass(frozen=True)
class Seen:
    """The flow of a destination as one LOOK read it ``at`` (this process's clock)."""

    at: float
    paused_until: float | None  # None: not paused; 0: until resumed
    state: str
    failures: int
    last_success_at: float | None
    next_slot: float | None

    def clear(self, now: float, window_seconds: float) -> bool:
        """Nothing would hold a send back at ``now`` by this look: not paused, the circuit closed with no
        failure and known to be up for as long as the look may be trusted, no hold."""
        paused = self.paused_until is not None and (self.paused_until == 0 or self.paused_until > now)
        known_up = (self.last_success_at is not None
                    and now - self.last_success_at + LOOK_SECONDS <= window_seconds)
        held = self.next_slot is not None and self.next_slot > now
        return not paused and self.state == "closed" and self.failures == 0 and known_up and not held


class FlowLook:
    """One destination's look, shared by the threads of a process (any redis-py client)."""

    def __init__(self, redis_client, keys: list[str], namespace: str, *, window_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        """``keys``: [pause, circuit state, rate next slot, rate sent per second]."""
        self._keys = list(keys)
        self._ns = namespace
        self._window = float(window_seconds)
        self._clock = clock
        self._look = redis_client.register_script(replaying(_LOOK))
        self._lock = threading.Lock()
        self._seen: Seen | None = None
        self._sends = 0  # let through on the look, not yet counted in the store

    def clear(self) -> bool:
        """May a send go without asking the gate's script?  Reads the store when the look is older than
        :data:`LOOK_SECONDS` (or was forgotten)."""
        now = self._clock()
        with self._lock:
            seen = self._seen
            if seen is None or not (0 <= now - seen.at < LOOK_SECONDS):
                seen = self._seen = self._read(now)
        return seen.clear(now, self._window)

    def count_send(self) -> None:
        """A send went on the look (counted in the store with the next look)."""
        with self._lock:
            self._sends += 1

    def forget(self) -> None:
        """This process learnt something the look may not know (a failure, a hold, a pause): the next send
        asks the gate's script, and the next look reads the store again."""
        with self._lock:
            self._seen = None

    def _read(self, now: float) -> Seen:
        sends = self._sends
        # Its own request id, never the next of a ``replayable`` block's (worker.store.requests): whether a
        # call reads the look depends on the look's age, so a block run again would number its calls
        # differently, and the next call would replay this look's reply as its own.
        reply = [text(part) for part in self._look(
            keys=[*self._keys, reply_key(self._ns, uuid.uuid4().hex)], args=[f"{now:.6f}", sends])]
        self._sends -= sends
        until, by, state, failures, last_ok, next_slot = reply
        return Seen(at=now, paused_until=(float(until) if until else 0.0) if by else None, state=state,
                    failures=int(failures or 0), last_success_at=float(last_ok) if last_ok else None,
                    next_slot=float(next_slot) if next_slot else None)
