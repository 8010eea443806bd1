"""The one way wms-relay code finds its store and gets a Redis client: from the settings, never from the
environment.

``REDIS_URL`` set → that server (production: Redis >= 6 or Valkey with ``appendonly yes`` and
``maxmemory-policy noeviction``): ``redis://``, ``rediss://`` (TLS), ``unix://`` (a socket), or
``sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/DB?master_name=NAME`` — the Sentinels to
ask which server is the primary of NAME now (``worker.settings.SentinelAddress``); the client follows a
failover; ``&ssl=true`` speaks TLS to the Sentinels and the data servers.  Over TLS the server's
certificate is always verified — against REDIS_SSL_CA_CERTS when set (a private CA), else the system's
CAs — and REDIS_SSL_CERTFILE / REDIS_SSL_KEYFILE are this client's certificate where the server asks for
one (:func:`tls_options`; the broker gets the same from ``worker.broker.celery_config``).  Unset → the
embedded valkey-server under ``WMS_RELAY_VAR_DIR`` (see :mod:`worker.store.embedded`).

Who may start the embedded server: only the service processes (``wms-relay worker``, ``scheduler``,
``ingest``, ``flower``, ``demo``), which pass ``start=True``.  Everything else — every support command —
only finds a running one, and raises :class:`~worker.errors.StoreNotFound` when there is none: a fresh,
empty server started in the wrong directory would answer "nothing needs a person" while the real store
holds the work.
:func:`describe` says in one line which store a command reads, for people (never the password).
Nothing here runs at import time."""
from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.retry import Retry

from worker.errors import StoreNotFound
from worker.redaction import url_without_password
from worker.settings import SentinelAddress
from worker.store import embedded
from worker.store.pool import SentinelStorePool, StorePool

__all__ = ["connect", "describe", "store_password", "store_url", "tls_options", "wait_for_store",
           "StoreNotFound"]


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


def tls_options(settings) -> dict:
    """redis-py's TLS keywords from REDIS_SSL_*: the server's certificate required (and verified against
    REDIS_SSL_CA_CERTS when set), this client's certificate and key when set.  A rediss:// URL's own
    ``?ssl_...`` parameters win over these (redis-py reads the URL last)."""
    options: dict = {"ssl_cert_reqs": "required"}
    for option, path in (("ssl_ca_certs", settings.redis_ssl_ca_certs),
                         ("ssl_certfile", settings.redis_ssl_certfile),
                         ("ssl_keyfile", settings.redis_ssl_keyfile)):
        if path is not None:
            options[option] = str(path)
    return options


def _sentinel_client(address: SentinelAddress, tls: dict, *, probe: bool, **client_options) -> redis.Redis:
    from redis.sentinel import Sentinel, SentinelConnectionPool

    sentinel_kwargs = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
    if address.sentinel_password:
        sentinel_kwargs["password"] = address.sentinel_password
    if address.ssl:  # TLS to the Sentinels, and (ssl=True below) to whichever server they name
        sentinel_kwargs.update(ssl=True, **tls)
        client_options.update(ssl=True, **tls)
    sentinel = Sentinel(list(address.sentinels), sentinel_kwargs=sentinel_kwargs, db=address.db,
                        username=address.username, password=address.password)
    pool_class = SentinelConnectionPool if probe else SentinelStorePool  # see connect()
    return sentinel.master_for(address.master_name, connection_pool_class=pool_class, **client_options)


def describe(settings) -> str:
    """Which store ``settings`` name, for people: ``redis://host:6379/0 (REDIS_URL)`` (password shown as
    ``***``) or ``embedded server under /abs/path/var``."""
    if settings.redis_url:
        return f"{url_without_password(settings.redis_url)} (REDIS_URL)"
    return f"embedded server under {Path(settings.var_dir).resolve()}"


def not_found_message(settings) -> str:
    """What a support command says when there is no store to read (exit code 3)."""
    var_dir = Path(settings.var_dir).resolve()
    return (f"no store to read: REDIS_URL is unset and no embedded server is running under {var_dir}. "
            "Run this command from the directory where the service runs (the one holding its var/), set "
            "WMS_RELAY_VAR_DIR to that var/ directory's absolute path, or set REDIS_URL to the service's "
            "Redis. (Support commands never start a server: an empty one would hide the real work.)")


def store_url(settings, *, start: bool = False) -> str:
    """The URL of the store ``settings`` name.  With REDIS_URL unset: the embedded server's URL if it
    runs; ``start=True`` (service processes only) starts it, otherwise :class:`StoreNotFound`."""
    if settings.redis_url:
        return settings.redis_url
    if start:
        return embedded.ensure_running(settings.var_dir)
    url = embedded.running_url(settings.var_dir)
    if url is None:
        raise StoreNotFound(not_found_message(settings))
    return url


def wait_for_store(settings, timeout: float, *, poll: float = 0.5) -> str:
    """:func:`store_url` once the store is there — for a long-running reader started alongside the service
    (the desk under ``honcho start``, racing the worker that starts the embedded server).  Never starts
    one; :class:`StoreNotFound` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return store_url(settings)
        except StoreNotFound:
            if time.monotonic() >= deadline:
                raise
            time.sleep(poll)


def connect(settings, *, start: bool = False, decode_responses: bool = True,
            socket_timeout: float = STORE_SOCKET_TIMEOUT_SECONDS,
            probe_timeout: float | None = None) -> redis.Redis:
    """A pooled client for the store named by ``settings`` (see :func:`store_url` for ``start``): the
    embedded server's URL carries its password (``var/valkey/password``), REDIS_URL its own.

    Text replies by default; the ledger, retry schedule and dead-letter store accept either kind of
    client.  A health check every 30 s notices a connection that a restarted server dropped; the pool
    (:class:`~worker.store.pool.StorePool`) polls a connection before reuse only after a second idle.
    ``socket_timeout``: per call (a client for blocking commands passes a longer one); resends follow
    :func:`store_retry` — the same for redis://, rediss://, unix:// and sentinel:// stores.
    ``probe_timeout`` (health probes): every call gives up after that many seconds, with no retry."""
    url = store_url(settings, start=start)
    if probe_timeout is not None:
        options = {"decode_responses": decode_responses, "socket_connect_timeout": probe_timeout,
                   "socket_timeout": probe_timeout, "retry": Retry(NoBackoff(), 0)}
    else:
        options = {"decode_responses": decode_responses, "health_check_interval": 30,
                   "socket_connect_timeout": 5, "socket_timeout": socket_timeout, "socket_keepalive": True,
                   "retry": store_retry()}
    scheme = urlsplit(url).scheme
    if scheme == "unix":
        options.pop("socket_keepalive", None)  # a TCP option: a socket connection refuses it
    if scheme == "sentinel":
        # A client of whichever server the Sentinels name the primary now: on a failover its connections
        # fail (or the old primary answers READONLY), and the next command asks the Sentinels again.
        return _sentinel_client(SentinelAddress.parse(url), tls_options(settings),
                                probe=probe_timeout is not None, **options)
    if scheme == "rediss":
        options.update(tls_options(settings))
    if probe_timeout is not None:
        # No resend to cover a connection the server closed: redis-py's own pool, which polls each one.
        return redis.Redis.from_url(url, **options)
    return redis.Redis.from_pool(StorePool.from_url(url, **options))


def store_password(settings) -> str | None:
    """The password of the store ``settings`` name — REDIS_URL's, or the checkout's embedded store's (read,
    never made, here) — for the scrubber of logs and Sentry (``worker.redaction.Scrubber.from_settings``)."""
    if settings.redis_url:
        if urlsplit(settings.redis_url).scheme == "sentinel":
            return SentinelAddress.parse(settings.redis_url).password
        return urlsplit(settings.redis_url).password
    return embedded.checkout_password(settings.var_dir)
