"""Pause and resume a destination (support staff, maintenance windows): ``wms-relay pause DESTINATION
[--until TIME] --reason TEXT`` and ``wms-relay resume DESTINATION``.

While a destination is paused nothing is sent to it: its deliveries are parked ``retrying`` without an
attempt counted (worker.flow.parking), its batches stay pending, its retry clocks stand still (a retry
that falls due is parked, not tried) — and events keep being accepted.  A pause with ``until`` ends by
itself then; without, it lasts until someone resumes.  Parked deliveries are released gradually, through
the rate limit, once it ends.

Every pause and resume is audited — who, when, why, until when — in one stream for all destinations
(``wms-relay pause --history`` shows it; ``status`` shows the pause in force).

Key layout (``<ns>``: the destination's namespace):

    <ns>:flow:pause     hash: by, at, reason, until ("" = until resumed); it expires a second after
                        ``until`` (readers compare ``until`` with the injected clock: the expiry only tidies)
    wms:flow:pauses     stream, one entry per pause or resume of any destination: at, actor, action
                        (pause|resume), destination, reason, until, was (resume: the pause it ended)
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Callable

from worker.encoding import text
from worker.store.requests import replaying, reply_key, request_id

AUDIT_KEY = "wms:flow:pauses"
AUDIT_MAX_ENTRIES = 100_000
# A pause with an end ends within a year (longer: pause without ``until``, resume by hand).  The script
# checks it too, before it writes anything: a pause is applied whole or not at all.
LONGEST_PAUSE_SECONDS = 366 * 86400

# Lua helper the gate (worker.flow.gate) composes.
#   pause_of(k_pause, now) -> until (0: until resumed), by, reason — or nil when not paused
PAUSE_LUA = """
local function pause_of(k_pause, now)
  local p = redis.call('HMGET', k_pause, 'until', 'by', 'reason')
  if not p[2] then return nil end
  local until_ = tonumber(p[1] or '') or 0
  if until_ > 0 and until_ <= now then return nil end
  return until_, p[2], p[3] or ''
end
"""

# KEYS[1] the pause, KEYS[2] the audit stream.  ARGV: by, now, reason, until ("" = until resumed),
# destination, max audit entries, longest pause in seconds.  Refuses (an error, nothing written) an
# ``until`` that is not a number, has passed, or lies further ahead than the longest pause.
_PAUSE = """
if ARGV[4] ~= '' then
  local until_, now = tonumber(ARGV[4]), tonumber(ARGV[2])
  if not until_ or until_ ~= until_ or until_ <= now or until_ - now > tonumber(ARGV[7]) then
    return redis.error_reply('a pause must end after now and within ' .. ARGV[7] .. ' s, not at ' .. ARGV[4])
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'by', ARGV[1], 'at', ARGV[2], 'reason', ARGV[3], 'until', ARGV[4])
if ARGV[4] ~= '' then
  redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(ARGV[4]) - tonumber(ARGV[2])) * 1000) + 1000)
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'at', ARGV[2], 'actor', ARGV[1], 'action', 'pause',
           'destination', ARGV[5], 'reason', ARGV[3], 'until', ARGV[4])
return 1
"""

# KEYS[1] the pause, KEYS[2] the audit stream.  ARGV: by, now, reason, destination, max audit entries.
# Returns the pause it ended as JSON, or "" when the destination was not paused (nothing audited then).
_RESUME = """
local p = redis.call('HGETALL', KEYS[1])
if #p == 0 then return '' end
local was = {}
for i = 1, #p, 2 do was[p[i]] = p[i + 1] end
local until_ = tonumber(was['until'] or '') or 0
if until_ > 0 and until_ <= tonumber(ARGV[2]) then redis.call('DEL', KEYS[1]) return '' end
redis.call('DEL', KEYS[1])
local told = cjson.encode(was)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'at', ARGV[2], 'actor', ARGV[1], 'action', 'resume',
           'destination', ARGV[4], 'reason', ARGV[3], 'until', '', 'was', told)
return told
"""


@dataclass(frozen=True)
class PauseInForce:
    """A destination's pause: who, since when, why, and until when (None: until someone resumes)."""

    by: str
    at: float
    reason: str
    until: float | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PauseAuditEntry:
    entry_id: str
    at: float
    actor: str
    action: str
    destination: str
    reason: str
    until: float | None
    was: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def pause_key(namespace: str) -> str:
    return f"{namespace}:flow:pause"


class Pauses:
    """Pauses of every destination (any redis-py client).  ``namespaces``: destination -> namespace."""

    def __init__(self, redis_client, namespaces: dict[str, str], *,
                 clock: Callable[[], float] = time.time,
                 changed: Callable[[str], None] | None = None) -> None:
        """``changed``: told the destination after each pause and resume through this object (the flow
        controls drop their look at it: worker.flow.look)."""
        self._redis = redis_client
        self._namespaces = dict(namespaces)
        self._clock = clock
        self._changed = changed or (lambda destination: None)
        # Each with a request id (worker.store.requests): a resend replays the first reply, audits once.
        self._pause = redis_client.register_script(replaying(_PAUSE))
        self._resume = redis_client.register_script(replaying(_RESUME))

    def _key(self, destination: str) -> str:
        if destination not in self._namespaces:
            raise KeyError(f"no destination {destination!r} (known: {', '.join(self._namespaces)})")
        return pause_key(self._namespaces[destination])

    def _replay(self, destination: str) -> str:
        return reply_key(self._namespaces[destination], request_id())

    def pause(self, destination: str, *, by: str, reason: str, until: float | None = None) -> PauseInForce:
        """Pause ``destination`` (a pause in force is replaced: the new reason and end count).  ``by`` and
        ``reason`` are required; ``until`` must lie in the future, at most :data:`LONGEST_PAUSE_SECONDS`
        ahead (ValueError otherwise, and nothing is written)."""
        if not (by or "").strip():
            raise ValueError("a pause needs the name of the person pausing")
        if not (reason or "").strip():
            raise ValueError("a pause needs a reason (--reason): the next person must know why")
        now = self._clock()
        if until is not None and not (until > now):  # NaN too
            raise ValueError("--until must lie in the future")
        if until is not None and until - now > LONGEST_PAUSE_SECONDS:
            raise ValueError(f"--until must lie within {LONGEST_PAUSE_SECONDS // 86400} days; a longer pause "
                             "has no --until and ends when someone resumes")
        self._pause(keys=[self._key(destination), AUDIT_KEY, self._replay(destination)], args=[
            by.strip(), f"{now:.3f}", reason.strip(), "" if until is None else f"{until:.3f}", destination,
            AUDIT_MAX_ENTRIES, LONGEST_PAUSE_SECONDS])
        self._changed(destination)
        return PauseInForce(by.strip(), round(now, 3), reason.strip(), until)

    def resume(self, destination: str, *, by: str, reason: str = "") -> PauseInForce | None:
        """End ``destination``'s pause; the pause that was in force, or None when there was none."""
        if not (by or "").strip():
            raise ValueError("a resume needs the name of the person resuming")
        told = text(self._resume(keys=[self._key(destination), AUDIT_KEY, self._replay(destination)], args=[
            by.strip(), f"{self._clock():.3f}", (reason or "").strip(), destination, AUDIT_MAX_ENTRIES]))
        self._changed(destination)
        return _pause_from(json.loads(told)) if told else None

    def in_force(self, destination: str) -> PauseInForce | None:
        """The pause in force on ``destination``, or None."""
        raw = {text(k): text(v) for k, v in self._redis.hgetall(self._key(destination)).items()}
        found = _pause_from(raw) if raw.get("by") else None
        if found is not None and found.until is not None and found.until <= self._clock():
            return None
        return found

    def history(self, destination: str | None = None, *, limit: int = 50) -> list[PauseAuditEntry]:
        """The audit trail, newest first (``destination``: only its entries)."""
        found: list[PauseAuditEntry] = []
        high = "+"
        while len(found) < limit:
            batch = self._redis.xrevrange(AUDIT_KEY, max=high, min="-", count=200)
            if not batch:
                break
            for raw_id, raw in batch:
                entry = _audit_entry(text(raw_id), {text(k): text(v) for k, v in raw.items()})
                if destination in (None, entry.destination):
                    found.append(entry)
            high = f"({text(batch[-1][0])}"
        return found[:limit]


def _pause_from(raw: dict) -> PauseInForce:
    until = raw.get("until") or ""
    return PauseInForce(by=raw.get("by", ""), at=float(raw.get("at") or 0), reason=raw.get("reason", ""),
                        until=float(until) if until else None)


def _audit_entry(entry_id: str, raw: dict) -> PauseAuditEntry:
    until = raw.get("until") or ""
    return PauseAuditEntry(entry_id=entry_id, at=float(raw.get("at") or 0), actor=raw.get("actor", ""),
                           action=raw.get("action", ""), destination=raw.get("destination", ""),
                           reason=raw.get("reason", ""), until=float(until) if until else None,
                           was=json.loads(raw["was"]) if raw.get("was") else None)
