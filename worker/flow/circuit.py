"""The circuit breaker of one destination, shared by every worker process through Redis.

::

    closed ──N consecutive failures within the window──► open ──probe due──► half_open (one probe)
      ▲                                                    ▲                    │
      └──────────────── any answer (a probe's, or a send's) ◄── success ────────┤
                                                           └──── failure ◄──────┘

*Closed*: deliveries are sent.  A failure is a transport failure, a lost answer or a 5xx (the *signal*
``failed``: ``worker.flow.policy.circuit_signal``); any other answer resets the count.  ``N`` failures in a
row, the first of them at most ``window`` seconds ago, open the circuit (``<DEST>_CIRCUIT_FAILURES``, default
10, within ``<DEST>_CIRCUIT_WINDOW_SECONDS``, default 60).

*Open*: nothing is sent; deliveries are parked (``retrying``, no attempt counted: worker.flow.parking)
and batches stay pending.  Every ``<DEST>_PROBE_SECONDS`` (default 30) one worker takes the probe
(*half-open*) and sends the destination's harmless check request (the one ``wms-relay check`` sends): an
answer closes the circuit, a failure opens it for another period.  So a day-long outage costs no event an
attempt, and the destination one probe per period.

*A configuration fault* (``worker.flow.policy.FAULTS``: Trademax refusing our clock, a 401 that says the
worker's clock is off — ``worker.destinations.trademax.clock_skew``) opens the circuit at once, whatever the
count, and marks it with the fault (``wms-relay status`` flags it: ``clock_skew``).  Its probe is not timed
by the workers' clocks — the fault may be exactly that a worker's clock is wrong — but granted by the
scheduler, once a minute by its own clock (:meth:`Circuit.grant_fault_probe`, each scheduler at most once a
minute); a worker's flow keeper takes the grant and sends the check request.  Refused for the clock again:
still open, one request a minute; answered: closed, the parked deliveries are released; any other
failure: an ordinary open circuit.

While the destination is not *known to be up* — it failed lately, or nothing reached it within the
window (a fresh start, a quiet night) — sends are counted as they leave, and no more leave than the
failures still needed to open the circuit: an outage met cold costs at most N requests, not one per
worker thread.  Once an answer comes back, sends are not counted any more.

Key layout (``<ns>``: the destination's namespace):

    <ns>:flow:circuit           hash: state (closed|open|half_open), failures, first_failure_at,
                                last_success_at, opened_at, probe_at, probe_until (the probe's lease),
                                probes (sent while open), last_failure (what failed last: no secrets),
                                fault (a configuration fault in force: clock_skew), probe_granted (1: a
                                scheduler granted the faulted circuit's next probe)
    <ns>:flow:circuit:grants    hash: scheduler name -> when (its clock) it last granted a fault's probe
    <ns>:flow:circuit:sending   sorted set: ticket -> lease expiry; sends that left while the destination
                                was not known to be up
"""
from __future__ import annotations

import time
from typing import Callable

from worker.encoding import text
from worker.store.requests import replaying, reply_key, request_id

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
# A closed circuit with no failure is told of answers at most this often (its last success: "known to be up"
# within the window), not once per delivered send.
ANSWERED_EVERY_SECONDS = 1.0

# Lua helpers (the gate, worker.flow.gate, composes circuit_admit; the scripts below use the others).
#   circuit_admit(k_state, k_sending, now, threshold, window) -> verdict, probe_at, fault
#       verdict: 'go' (known up: not counted), 'count' (send, but count it), 'full' (as many sends are
#       out as failures could still open it: wait), 'open' (open or half-open: do not send; fault: the
#       configuration fault that opened it, or '')
#   circuit_report(k_state, k_sending, ticket, signal, now, threshold, window, probe_seconds, why)
#       -> the state after it, or 'opened' / 'closed' when this report moved it
#   circuit_answered(k_state, k_sending, ticket, now, threshold, window, probe_seconds, fresh)
#       -> 'reclosed' when this answer closed the circuit, else '': the signal 'ok' of a delivered send,
#       written only when it changes something (a ticket to give back, failures to forget, the circuit not
#       closed, or its last success more than ``fresh`` seconds ago) — once a second, not once a send
CIRCUIT_LUA = """
local function circuit_admit(k_state, k_sending, now, threshold, window)
  local c = redis.call('HMGET', k_state, 'state', 'failures', 'last_success_at', 'probe_at', 'fault')
  local state = c[1] or 'closed'
  if state ~= 'closed' then return 'open', tonumber(c[4] or '0') or 0, c[5] or '' end
  local failures = tonumber(c[2] or '0') or 0
  local last_ok = tonumber(c[3] or '-1') or -1
  if failures == 0 and last_ok >= 0 and now - last_ok <= window then return 'go', 0 end
  redis.call('ZREMRANGEBYSCORE', k_sending, '-inf', now)
  if failures + redis.call('ZCARD', k_sending) >= threshold then return 'full', 0 end
  return 'count', 0
end

local function circuit_report(k_state, k_sending, ticket, signal, now, threshold, window, probe_seconds, why)
  if ticket ~= '' then redis.call('ZREM', k_sending, ticket) end
  local c = redis.call('HMGET', k_state, 'state', 'failures', 'first_failure_at')
  local state = c[1] or 'closed'
  if signal == 'ok' then
    redis.call('HSET', k_state, 'state', 'closed', 'failures', 0,
               'last_success_at', string.format('%.3f', now))
    redis.call('HDEL', k_state, 'first_failure_at', 'probe_until', 'fault', 'probe_granted')
    return 'closed'
  end
  if signal == 'clock_skew' then  -- a configuration fault: open at once, until a probe is answered
    local was = redis.call('HGET', k_state, 'fault')
    redis.call('HSET', k_state, 'state', 'open', 'fault', signal, 'failures', 0, 'last_failure', why)
    redis.call('HDEL', k_state, 'first_failure_at', 'probe_until', 'probe_at')
    if was == signal then return 'open' end
    redis.call('HSET', k_state, 'opened_at', string.format('%.3f', now), 'probes', 0)
    redis.call('HDEL', k_state, 'probe_granted')
    return 'opened'
  end
  if signal ~= 'failed' or state ~= 'closed' then return state end
  local failures = tonumber(c[2] or '0') or 0
  local first = tonumber(c[3] or '-1') or -1
  if failures == 0 or first < 0 or now - first > window then
    failures, first = 1, now
  else
    failures = failures + 1
  end
  redis.call('HSET', k_state, 'failures', failures, 'first_failure_at', string.format('%.3f', first),
             'last_failure', why)
  if failures >= threshold then
    redis.call('HSET', k_state, 'state', 'open', 'opened_at', string.format('%.3f', now),
               'probe_at', string.format('%.3f', now + probe_seconds), 'probes', 0)
    return 'opened'
  end
  return 'closed'
end

local function circuit_answered(k_state, k_sending, ticket, now, threshold, window, probe_seconds, fresh)
  local c = redis.call('HMGET', k_state, 'state', 'failures', 'last_success_at')
  local before = c[1] or 'closed'
  if ticket == '' and before == 'closed' and (tonumber(c[2] or '0') or 0) == 0
     and now - (tonumber(c[3] or '') or -1e18) < fresh then
    return ''
  end
  local after = circuit_report(k_state, k_sending, ticket, 'ok', now, threshold, window, probe_seconds, '')
  if after == 'closed' and before ~= 'closed' then return 'reclosed' end
  return ''
end
"""

# KEYS[1] state, KEYS[2] sending.  ARGV: ticket, signal (ok|failed|neutral|clock_skew), now, threshold,
# window, probe seconds, what failed.  Returns the state after it, or 'opened'/'reclosed' when this report
# moved it.
_REPORT = CIRCUIT_LUA + """
local before = redis.call('HGET', KEYS[1], 'state') or 'closed'
local after = circuit_report(KEYS[1], KEYS[2], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]),
                             tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7])
if after == 'closed' and before ~= 'closed' then return 'reclosed' end
return after
"""

# KEYS[1] state.  ARGV: now, probe lease until.  Returns 1 when the caller is the probe (state half_open).
# A faulted circuit's probe goes only where a scheduler granted it (the grant is used up).
_TAKE_PROBE = """
local c = redis.call('HMGET', KEYS[1], 'state', 'probe_at', 'probe_until', 'fault', 'probe_granted')
local now = tonumber(ARGV[1])
if c[4] then
  if (c[1] ~= 'open' and c[1] ~= 'half_open') or c[5] ~= '1' then return 0 end
  redis.call('HDEL', KEYS[1], 'probe_granted')
elseif c[1] == 'open' and now >= (tonumber(c[2] or '0') or 0) then
elseif c[1] == 'half_open' and now >= (tonumber(c[3] or '0') or 0) then
else return 0 end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'probes', 1)
return 1
"""

# KEYS[1] state, KEYS[2] sending.  ARGV: signal (ok|failed|clock_skew), now, probe seconds, what failed.
_PROBE_RESULT = CIRCUIT_LUA + """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state ~= 'half_open' then return state end
if ARGV[1] == 'ok' then
  return circuit_report(KEYS[1], KEYS[2], '', 'ok', tonumber(ARGV[2]), 1, 0, 0, '')
end
if ARGV[1] == 'clock_skew' then  -- the fault is still there: open, the next probe when a scheduler grants it
  redis.call('HSET', KEYS[1], 'state', 'open', 'fault', ARGV[1], 'last_failure', ARGV[4])
  redis.call('HDEL', KEYS[1], 'probe_until')
  return 'open'
end
redis.call('HSET', KEYS[1], 'state', 'open',
           'probe_at', string.format('%.3f', tonumber(ARGV[2]) + tonumber(ARGV[3])), 'last_failure', ARGV[4])
redis.call('HDEL', KEYS[1], 'probe_until', 'fault', 'probe_granted')
return 'open'
"""

# KEYS[1] state, KEYS[2] grants.  ARGV: now (the scheduler's clock), every (seconds), scheduler name.
# Returns 1 when this call granted the faulted circuit's next probe.  A scheduler's first look at a fault
# starts its minute; no fault: the grants are forgotten.
_GRANT_FAULT_PROBE = """
if not redis.call('HGET', KEYS[1], 'fault') then
  redis.call('DEL', KEYS[2])
  return 0
end
local now, every = tonumber(ARGV[1]), tonumber(ARGV[2])
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[3]) or '')
if last and now >= last and now - last < every then return 0 end
redis.call('HSET', KEYS[2], ARGV[3], string.format('%.3f', now))
if not last then return 0 end
redis.call('HSET', KEYS[1], 'probe_granted', 1)
return 1
"""
FAULT_PROBE_SECONDS = 60.0


def circuit_keys(namespace: str) -> list[str]:
    """[state, sending] of the destination with ``namespace`` (fault probes' grants: ``<state>:grants``)."""
    return [f"{namespace}:flow:circuit", f"{namespace}:flow:circuit:sending"]


class Circuit:
    """One destination's circuit breaker (any redis-py client, bytes or text replies)."""

    def __init__(self, redis_client, namespace: str, *, failures: int = 10, window_seconds: float = 60.0,
                 probe_seconds: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis_client
        self._keys = circuit_keys(namespace)
        self._ns = namespace
        self._threshold = int(failures)
        self._window = float(window_seconds)
        self._probe_seconds = float(probe_seconds)
        self._clock = clock
        # Each with a request id (worker.store.requests): a resend replays the first reply.
        self._report = redis_client.register_script(replaying(_REPORT))
        self._take_probe = redis_client.register_script(replaying(_TAKE_PROBE))
        self._probe_result = redis_client.register_script(replaying(_PROBE_RESULT))
        self._grant = redis_client.register_script(replaying(_GRANT_FAULT_PROBE))

    @property
    def threshold(self) -> int:
        return self._threshold

    @property
    def window_seconds(self) -> float:
        return self._window

    def report(self, signal: str, *, ticket: str = "", why: str = "") -> str:
        """A send's signal (``ok``/``failed``/``neutral``, worker.flow.policy); ``ticket``: the one the gate
        gave it, if it was counted.  Returns ``opened`` or ``reclosed`` when this report moved the circuit,
        else its state (``closed``, ``open``, ``half_open``)."""
        return text(self._report(keys=[*self._keys, reply_key(self._ns, request_id())], args=[
            ticket, signal, f"{self._clock():.6f}", self._threshold, self._window, self._probe_seconds,
            why[:300]]))

    def take_probe(self, lease_seconds: float) -> bool:
        """Become the probe of an open circuit whose probe is due (half-open for ``lease_seconds``: if
        this caller dies, another takes the probe after that)."""
        now = self._clock()
        replay = reply_key(self._ns, request_id())
        taken = self._take_probe(keys=[self._keys[0], replay],
                                 args=[f"{now:.6f}", f"{now + lease_seconds:.3f}"])
        return bool(int(taken))

    def probe_result(self, ok: bool, *, why: str = "", fault: str | None = None) -> str:
        """The probe's answer: ``closed`` (it answered) or ``open`` (for another probe period; ``fault``:
        refused for a configuration fault again — open until a scheduler grants the next probe)."""
        signal = fault or ("ok" if ok else "failed")
        return text(self._probe_result(keys=[*self._keys, reply_key(self._ns, request_id())], args=[
            signal, f"{self._clock():.6f}", self._probe_seconds, why[:300]]))

    def grant_fault_probe(self, scheduler: str, *, every: float = FAULT_PROBE_SECONDS,
                          now: float | None = None) -> bool:
        """The scheduler's part (``now``: its clock): if a configuration fault holds the circuit open and
        this scheduler last granted a probe ``every`` seconds ago or more, grant the next one (a worker's
        flow keeper takes it).  True when granted."""
        now = self._clock() if now is None else now
        return bool(int(self._grant(keys=[self._keys[0], f"{self._keys[0]}:grants",
                                          reply_key(self._ns, request_id())],
                                    args=[f"{now:.6f}", f"{every:g}", scheduler])))

    def state(self) -> dict:
        """The circuit as stored: state, failures, probe_at, opened_at, probes, last_failure, ..."""
        raw = {text(k): text(v) for k, v in self._redis.hgetall(self._keys[0]).items()}
        found: dict = {"state": raw.get("state") or CLOSED, "failures": int(raw.get("failures") or 0),
                       "probes": int(raw.get("probes") or 0), "last_failure": raw.get("last_failure") or None,
                       "fault": raw.get("fault") or None}
        for name in ("opened_at", "probe_at", "last_success_at", "first_failure_at"):
            found[name] = float(raw[name]) if raw.get(name) else None
        found["counted_sends"] = int(self._redis.zcount(self._keys[1], self._clock(), "+inf"))
        return found

    def is_closed(self) -> bool:
        return (text(self._redis.hget(self._keys[0], "state")) or CLOSED) == CLOSED
