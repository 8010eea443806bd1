"""Heartbeats: each worker and scheduler says "alive" every few seconds, so ``status``, the health probes
(``wms-relay health``) and the metrics can tell a live service from a dead one without asking Celery.

    wms:heartbeat:worker      sorted set  node name (relay-123@host) -> its last beat, Unix seconds
    wms:heartbeat:scheduler   sorted set  scheduler-123@host         -> its last tick, Unix seconds
    wms:heartbeat:worker:configuration   hash        node name -> the configuration it recorded (text: what
                                                     ``worker.observe.configuration`` writes, JSON)
    wms:heartbeat:worker:configured      sorted set  node name -> when it last recorded it, Unix seconds

A beat is one ZADD (with the trim below, in one script); a beat may carry the process's configuration,
recorded with it.  A process that stops cleanly removes its beat (:meth:`Heartbeats.leave`) but not its
configuration: the last one recorded stays readable, with its age, while no worker runs.  A name silent for
:data:`FORGET_AFTER_SECONDS` is dropped by the next beat of its role — beat and configuration — so crashed
processes do not pile up.  The script is idempotent by itself (its writes land the same state when run
twice: the store-call rule, worker/store/requests.py).  Freshness is the reader's judgement, on the reader's
clock: a beat older than ``within`` seconds (default :data:`STALE_AFTER_SECONDS`) is not alive.  The
writers' and readers' clocks are the machines' own (NTP keeps them within far less than the 30 s that
matters here), like every other time in the store.
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Callable

from worker.encoding import text

ROLES = ("worker", "scheduler")
# A worker beats every BEAT_INTERVAL_SECONDS, the scheduler on every tick (at most once a second).
BEAT_INTERVAL_SECONDS = 5.0
# A beat older than this is not a live process: six missed beats (a loaded machine misses one or two).
STALE_AFTER_SECONDS = 30.0
FORGET_AFTER_SECONDS = 86400.0


@dataclass(frozen=True)
class Beat:
    """One process's last beat: its name and how many seconds ago (on the reader's clock)."""

    name: str
    at: float
    age: float

    def on_host(self, host: str) -> bool:
        """Celery-style node names end with ``@host``."""
        return self.name.rpartition("@")[2] == host


def node_name(role: str, pid: int | None = None, host: str | None = None) -> str:
    """``scheduler-<pid>@<host>``: the name a process beats under (workers use their Celery node name)."""
    import os

    return f"{role}-{os.getpid() if pid is None else pid}@{host or socket.gethostname()}"


@dataclass(frozen=True)
class Recorded:
    """One process's recorded configuration (as text), when and how many seconds ago (reader's clock)."""

    name: str
    at: float
    age: float
    configuration: str


# KEYS: the beats, the configurations, their times.  ARGV: now, name, forget before, configuration ("": none).
_BEAT = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
end
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[3], 'LIMIT', 0, 100)
if #gone > 0 then
  redis.call('HDEL', KEYS[2], unpack(gone))
  redis.call('ZREM', KEYS[3], unpack(gone))
end
return 1
"""


class Heartbeats:
    """The heartbeat sets in one Redis (any client: bytes or text replies)."""

    def __init__(self, redis_client, clock: Callable[[], float] = time.time, *,
                 namespace: str = "wms") -> None:
        self._redis = redis_client
        self._clock = clock
        self._ns = namespace

    def _key(self, role: str) -> str:
        if role not in ROLES:
            raise ValueError(f"heartbeats are kept for {', '.join(ROLES)}, not {role!r}")
        return f"{self._ns}:heartbeat:{role}"

    def beat(self, role: str, name: str, configuration: str | None = None) -> float:
        """Record that ``name`` is alive now — and, given, the configuration it runs with; forget names
        silent for a day.  Returns the beat's time."""
        now = self._clock()
        key = self._key(role)
        self._redis.register_script(_BEAT)(
            keys=[key, f"{key}:configuration", f"{key}:configured"],
            args=[f"{now:.3f}", name, f"{now - FORGET_AFTER_SECONDS:.3f}", configuration or ""])
        return now

    def configurations(self, role: str) -> list[Recorded]:
        """Every remembered configuration of ``role``'s processes, newest first (of processes alive or
        not: compare with :meth:`alive`)."""
        key = self._key(role)
        now = self._clock()
        found = self._redis.zrevrange(f"{key}:configured", 0, -1, withscores=True)
        if not found:
            return []
        texts = self._redis.hmget(f"{key}:configuration", [name for name, _ in found])
        return [Recorded(text(name), float(at), max(0.0, now - float(at)), text(raw))
                for (name, at), raw in zip(found, texts) if raw is not None]

    def leave(self, role: str, name: str) -> None:
        """``name`` stopped cleanly: it is no longer expected to beat."""
        key = self._key(role)
        self._redis.zrem(key, name)

    def beats(self, role: str) -> list[Beat]:
        """Every remembered beat of ``role``, newest first (stale ones included: see :meth:`alive`)."""
        now = self._clock()
        found = self._redis.zrevrange(self._key(role), 0, -1, withscores=True)
        return [Beat(text(name), float(at), max(0.0, now - float(at))) for name, at in found]

    def alive(self, role: str, within: float = STALE_AFTER_SECONDS) -> list[Beat]:
        """The processes of ``role`` that beat within the last ``within`` seconds, newest first."""
        return [beat for beat in self.beats(role) if beat.age <= within]
