"""The one way wms-relay code gets a Redis client: from the settings, never from the environment.

``REDIS_URL`` set → that server (production: Redis >= 6 or Valkey with ``appendonly yes`` and
``maxmemory-policy noeviction``).  Unset → the checkout's embedded valkey-server, started on first use
(see :mod:`worker.store.embedded`).  Nothing here runs at import time."""
from __future__ import annotations

import redis

from worker.store.embedded import redis_url

__all__ = ["connect", "redis_url"]


def connect(settings, *, decode_responses: bool = True) -> redis.Redis:
    """A pooled client for the store named by ``settings`` (starts the embedded server if needed).

    Text replies by default; the ledger, retry schedule and dead-letter store accept either kind of
    client.  A health check every 30 s notices a connection that a restarted server dropped."""
    return redis.Redis.from_url(
        redis_url(settings),
        decode_responses=decode_responses,
        health_check_interval=30,
        socket_connect_timeout=5,
        socket_keepalive=True,
        retry_on_timeout=True,
    )
