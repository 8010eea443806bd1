"""The one way wms-relay code gets a Redis client: from the settings, never from the environment.

``REDIS_URL`` set → that server (production: Redis >= 6 or Valkey with ``appendonly yes`` and
``maxmemory-policy noeviction``).  Unset → the checkout's embedded valkey-server, started on first use
(see :mod:`worker.store.embedded`).  Nothing here runs at import time."""
from __future__ import annotations

from urllib.parse import urlsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from worker.store.embedded import checkout_password, redis_url

__all__ = ["connect", "redis_url", "store_password"]


# A call to a stalled store fails after this long instead of hanging a worker thread.
STORE_SOCKET_TIMEOUT_SECONDS = 5.0
# redis-py resends a call that failed on its connection or timed out this many times, backing off.
STORE_RESENDS = 2


def store_retry() -> Retry:
    """What redis-py may resend, and how often: any call, on a connection error or a timeout — safe only
    because of the store-call rule (``worker.store.requests``): reads and plain writes are idempotent, and
    every state-changing script carries a request id, so a resend of one that already ran replays its
    reply.  (redis-py's ``retry_on_timeout``, once set here, resent the scripts blind.)"""
    return Retry(ExponentialWithJitterBackoff(base=0.2, cap=1.0), STORE_RESENDS,
                 supported_errors=(redis.ConnectionError, redis.TimeoutError))


def connect(settings, *, decode_responses: bool = True,
            socket_timeout: float = STORE_SOCKET_TIMEOUT_SECONDS) -> redis.Redis:
    """A pooled client for the store named by ``settings`` (starts the embedded server if needed).

    Text replies by default; the ledger, retry schedule and dead-letter store accept either kind of
    client.  A health check every 30 s notices a connection that a restarted server dropped.
    ``socket_timeout``: per call (a client for blocking commands passes a longer one)."""
    return redis.Redis.from_url(
        redis_url(settings),
        decode_responses=decode_responses,
        health_check_interval=30,
        socket_connect_timeout=5,
        socket_timeout=socket_timeout,
        socket_keepalive=True,
        retry=store_retry(),
    )


def store_password(settings) -> str | None:
    """The password of the store ``settings`` name — REDIS_URL's, or the checkout's embedded store's (read,
    never made, here) — for the scrubber of logs and Sentry (``worker.redaction.Scrubber.from_settings``)."""
    if settings.redis_url:
        return urlsplit(settings.redis_url).password
    return checkout_password(settings.var_dir)
