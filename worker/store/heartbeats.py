"""Heartbeats: each worker and scheduler says "alive" every few seconds, so ``status``, the health probes
(``wms-relay health``) and the metrics can tell a live service from a dead one without asking Celery.

    wms:heartbeat:worker      sorted set  node name (relay-123@host) -> its last beat, Unix seconds
    wms:heartbeat:scheduler   sorted set  scheduler-123@host         -> its last tick, Unix seconds

A beat is one ZADD (pipelined with the trim below); a process that stops cleanly removes its name
(:meth:`Heartbeats.leave`).  A name silent for :data:`FORGET_AFTER_SECONDS` is dropped by the next beat of
its role, so crashed processes do not pile up.  Freshness is the reader's judgement, on the reader's
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

    def beat(self, role: str, name: str) -> float:
        """Record that ``name`` is alive now; forget names silent for a day.  Returns the beat's time."""
        now = self._clock()
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(self._key(role), {name: now})
        pipe.zremrangebyscore(self._key(role), "-inf", now - FORGET_AFTER_SECONDS)
        pipe.execute()
        return now

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
