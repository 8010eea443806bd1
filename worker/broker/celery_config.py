"""Celery configuration built from Settings: one function, every choice with the reason for it.

Kept apart from ``worker.celery`` so it can be read (and tested) without creating an app."""
from __future__ import annotations

import time
from contextlib import contextmanager
from time import monotonic
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import redis
from kombu import Exchange, Queue
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.transport.virtual import Empty

from tasks import malformed_messages
from tasks import support_jobs
from tasks.raw_messages import SCREENED_QUEUES, Passed, screen
from worker.broker.unacked import UnackedBookkeeping, flush_acks_on
from worker.destinations import table
from worker.settings import SentinelAddress, Settings
from worker.store.connection import tls_options


# Packed BRPOP commands a channel keeps (one per rotation of its queues; more only when its queues change).
_PACKED_BRPOPS_KEPT = 64


class _ChannelFixes:
    """What our channels change of kombu's (mixed into the plain and the Sentinel channel): every message
    popped from a task queue is screened first (issue 9's malformed-message dead letters), a closed
    connection fails as a connection error, a channel reuses its redis-py client, it packs its BRPOP once
    per queue order, and it records unacknowledged messages with one write each
    (``worker.broker.unacked``)."""

    QoS = UnackedBookkeeping

    def _admit(self, item, queue: str):
        """The popped message as kombu's ``loads`` would give it, if :func:`tasks.raw_messages.screen`
        passes it (rebuilt on our terms); else None, and it is a dead letter (``tasks.malformed_messages``).
        Only our task queues (the destinations' and the support queue) are screened: control replies
        (``*.reply.celery.pidbox``) are kombu's own."""
        if queue not in SCREENED_QUEUES:
            return kombu_redis.loads(bytes_to_str(item))
        verdict = screen(item, queue, now=time.time())
        if isinstance(verdict, Passed):
            return verdict.envelope
        with self.conn_or_acquire() as client:
            malformed_messages.record(client, verdict, queue)
        return None

    def _brpop_read(self, **options):
        """kombu 5.7's ``_brpop_read``, with the popped message screened before it is decoded: kombu's own
        ``loads`` and ``Message`` raised on a malformed one, and the worker exited (see raw_messages)."""
        try:
            try:
                dest__item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            if not dest__item:
                raise Empty()
            dest, item = dest__item
            dest = bytes_to_str(dest).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            envelope = self._admit(item, dest)
            if envelope is not None:
                self.connection._deliver(envelope, dest)
            return True
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()

    def _brpop_start(self, timeout=None):
        """kombu 5.7's ``_brpop_start``, with the BRPOP command packed once per queue order.

        kombu builds and packs the command anew for every poll — one per message taken with a prefetch of
        one — over every queue times every priority list (4): 44 keys for our 11 queues, ~50 µs of the
        consumer loop per message (half of it redis-py packing the keys), and the loop is what a busy worker
        waits on (docs/benchmarks.md, issue 21).  The keys depend only on the queue order (kombu rotates it
        after each message), the timeout and the key prefix, so the packed bytes are kept per order."""
        if timeout is None:
            timeout = self.brpop_timeout
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        connection = self.client.connection
        packed_brpops = self.__dict__.setdefault("_packed_brpops", {})
        order = (tuple(queues), timeout or 0, self.global_keyprefix)
        packed = packed_brpops.get(order)
        if packed is None:
            keys = [self._q_for_pri(queue, pri) for pri in self.priority_steps for queue in queues]
            command_args = ["BRPOP", *keys, timeout or 0]
            if self.global_keyprefix:
                command_args = self.client._prefix_args(command_args)
            if len(packed_brpops) >= _PACKED_BRPOPS_KEPT:  # the queues changed (a consumer added/cancelled)
                packed_brpops.clear()
            packed = packed_brpops[order] = connection.pack_command(*command_args)
        self._in_poll = connection
        self._brpop_sent_at = monotonic()
        connection.send_packed_command(packed)

    def _get(self, queue):
        """kombu's ``_get`` (basic_get), screened as ``_brpop_read`` is."""
        with self.conn_or_acquire() as client:
            for pri in self.priority_steps:
                item = client.rpop(self._q_for_pri(queue, pri))
                if item:
                    self._maybe_update_queues_expire(client, queue)
                    envelope = self._admit(item, queue)
                    if envelope is None:
                        raise Empty()
                    return envelope
            self._maybe_update_queues_expire(client, queue)
            raise Empty()

    def _connparams(self, asynchronous=False):
        if self.connection.client is None:
            raise redis.ConnectionError("the broker connection is closed")
        return super()._connparams(asynchronous=asynchronous)

    @contextmanager
    def conn_or_acquire(self, client=None):
        """One redis-py client per channel and connection pool, instead of kombu's new one per call.

        kombu builds a ``redis.Redis`` for every publish, every task event (three per task: received,
        started, succeeded) and every ack; building one (its response-callback table) took ~12% of a
        worker's GIL time at 200 ms (py-spy).  A redis-py client is safe to share between threads: it
        takes a pooled connection per command.  A new pool (kombu drops its pools after a fork or a lost
        connection) gets a new client."""
        if client:
            yield client
            return
        pool = self.pool
        shared = self.__dict__.get("_shared_client")
        if shared is None or shared.connection_pool is not pool:
            shared = self._shared_client = self._create_client()
        yield shared


class _RedisChannel(_ChannelFixes, kombu_redis.Channel):
    pass


class _SentinelChannel(_ChannelFixes, kombu_redis.SentinelChannel):
    pass


class _TransportFixes:
    """What our transports change of kombu's: a worker's event loop removes the acknowledged messages'
    records on a timer, with the next message's record or on its own (``worker.broker.unacked``)."""

    def register_with_event_loop(self, connection, loop):
        super().register_with_event_loop(connection, loop)
        flush_acks_on(self, connection, loop)


class RedisTransport(_TransportFixes, kombu_redis.Transport):
    """kombu's Redis transport, except that every message popped from a task queue is screened first, a
    closed connection fails as a *connection* error, and a channel reuses its redis-py client (see
    ``_ChannelFixes``).  Every scheme REDIS_URL may have goes through it or its two subclasses below —
    ``redis://`` and ``rediss://`` (TLS: ``broker_use_ssl``) here, ``unix://`` in
    :class:`SocketTransport`, ``sentinel://`` in :class:`SentinelTransport` — so no broker skips the screen.

    When the broker stays away longer than redis-py's reconnect attempts (a Redis restart of a few
    seconds), Celery closes the lost connection; kombu then tries to put the worker's unacknowledged
    messages back and, looking up the closed connection's address, raises AttributeError — which Celery
    treats as unrecoverable: the worker exits ("Unrecoverable error: AttributeError: 'NoneType' object has
    no attribute 'hostname'"; kombu issues #582, #970).  The chaos run's Redis restart stopped every worker
    so.  As a connection error it is ignored like the others: the worker reconnects when Redis is back,
    and the messages come back through the unacked sweep (visibility timeout)."""

    Channel = _RedisChannel


class SocketTransport(RedisTransport):
    """Our transport (the screen, the fixes above) over a unix socket: the embedded store's (it listens on no
    TCP port: worker.store.embedded) or a ``unix://`` REDIS_URL.  kombu's own ``redis+socket://`` URL
    would pick kombu's plain transport by its prefix, and nothing would screen the messages; so the URL is
    ``socket://:PASSWORD@/path?virtual_host=N`` — which kombu's channel turns into a socket connection
    when the transport takes the URL as it is (``can_parse_url``) — and it is shown, to people and to
    Flower's broker view, in kombu's spelling ``redis+socket://``."""

    can_parse_url = True

    def as_uri(self, uri: str, include_password: bool = False, mask: str = "**") -> str:
        from kombu.utils.url import maybe_sanitize_url

        return "redis+" + (uri if include_password else maybe_sanitize_url(uri, mask))


class SentinelTransport(_TransportFixes, kombu_redis.SentinelTransport):
    """kombu's Sentinel transport with the same changes: a failover drops the broker connection the way a
    Redis restart does, and must not stop the worker either; its messages are screened too."""

    Channel = _SentinelChannel


def _tls(settings: Settings, url_query: str = "") -> dict:
    """``broker_use_ssl``: the store's TLS options (REDIS_SSL_*, server certificate required), with a
    rediss:// URL's own ``ssl_*`` parameters winning, as they do for the store's client."""
    options = tls_options(settings)
    options.update((key, value) for key, value in parse_qsl(url_query) if key.startswith("ssl_"))
    return options


def _broker(broker_url: str, settings: Settings) -> tuple[str, str, dict, dict | None]:
    """(kombu URL, transport, extra transport options, broker_use_ssl) for REDIS_URL's scheme — every
    scheme through our transports (above), so every broker message is screened."""
    parts = urlsplit(broker_url)
    if parts.scheme == "sentinel":
        address = SentinelAddress.parse(broker_url)
        options: dict = {"master_name": address.master_name}
        sentinel_kwargs: dict = {}
        if address.sentinel_password:
            sentinel_kwargs["password"] = address.sentinel_password
        use_ssl = None
        if address.ssl:  # TLS to the Sentinels (sentinel_kwargs) and to the data servers (broker_use_ssl)
            use_ssl = _tls(settings)
            sentinel_kwargs.update(ssl=True, **use_ssl)
        if sentinel_kwargs:
            options["sentinel_kwargs"] = sentinel_kwargs
        return address.broker_url(), f"{__name__}:SentinelTransport", options, use_ssl
    if parts.scheme == "unix":
        # kombu names a socket's database ?virtual_host=N (redis-py: unix://...?db=N); see SocketTransport.
        db = (parse_qs(parts.query).get("db") or ["0"])[0]
        auth = f"{parts.netloc.rpartition('@')[0]}@" if "@" in parts.netloc else ""
        return f"socket://{auth}{parts.path}?virtual_host={db}", f"{__name__}:SocketTransport", {}, None
    if parts.scheme == "rediss":
        # Without ssl options kombu would connect in plain text: TLS always, the certificate verified.
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if not k.startswith("ssl_")])
        url = parts._replace(query=query).geturl()
        return url, f"{__name__}:RedisTransport", {}, _tls(settings, parts.query)
    return broker_url, f"{__name__}:RedisTransport", {}, None


def declared_queue(name: str) -> Queue:
    """A queue as the worker declares it (and its banner shows it): its own direct exchange and routing key,
    both its name.  ``Queue(name)`` alone was bound to Celery's default exchange — named after the default
    queue, ``trademax.dispatch`` — under that queue's key: the banner said ``exchange=trademax.dispatch
    (direct) key=trademax.dispatch`` for every queue, and a message a client published to that exchange
    was bound for all of them.  Our publishers route by queue name (Celery's anonymous exchange: the
    message goes onto the list named after the queue), so nothing of ours changes; a client that names an
    exchange (Celery's own default for a queue it does not know) reaches exactly that queue."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def celery_config(settings: Settings, broker_url: str) -> dict:
    """The Celery settings for ``broker_url`` (the embedded server's or REDIS_URL)."""
    kombu_url, transport, transport_options, use_ssl = _broker(broker_url, settings)
    return {
        "broker_url": kombu_url,
        "broker_transport": transport,
        "broker_use_ssl": use_ssl,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            # Unacknowledged messages come back after this long: longer than any task (Settings checks it).
            "visibility_timeout": settings.visibility_timeout_seconds,
            # ...and the sweep that hands them out runs every few seconds.  kombu's default (every 10th
            # call of a 10 s timer, ~100 s) would leave a killed worker's event waiting far longer.
            "unacked_restore_interval": max(1, min(10, int(settings.visibility_timeout_seconds // 5))),
            "unacked_restore_throttle": 1,
            # A worker killed while holding the sweep's mutex must not block sweeps for kombu's 300 s.
            "unacked_mutex_expire": max(10, int(settings.visibility_timeout_seconds // 2)),
            "socket_keepalive": True,
            # A publish to a broker that vanished without closing the connection must fail, not hang.
            "socket_timeout": 30,
            "socket_connect_timeout": 10,
            "health_check_interval": 25,
            **transport_options,
        },
        # A task is acknowledged only after it ran: a worker killed mid-task leaves its message unacked,
        # and the broker hands it to another worker.  The ledger's claim keeps that from sending twice.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # Reserve one message per pool slot and no more: a crash strands at most what was running.
        "worker_prefetch_multiplier": 1,
        # The ledger is the record of every event; Celery results would only duplicate it.
        "task_ignore_result": True,
        "task_store_errors_even_if_ignored": False,
        # JSON only: the WMS publishes from any language, and pickle from the broker would be a hole.
        "task_serializer": "json",
        "accept_content": ["json"],
        # One queue per destination resource, so an operator can see (and a deployment can scale) each
        # backlog; one route per task.  Both are built from the operation table (worker.destinations.table).
        # The desk's bulk jobs (tasks.support_jobs) have a queue of their own, which the worker consumes too.
        "task_queues": [declared_queue(name) for name in (*table.QUEUES, support_jobs.QUEUE)],
        "task_routes": {**table.ROUTES, support_jobs.TASK: {"queue": support_jobs.QUEUE}},
        "task_default_queue": table.QUEUES[0],
        "task_create_missing_queues": False,
        # Flower needs task events; the argument summary is set per task (see tasks.base).
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "worker_hijack_root_logger": False,
        "worker_concurrency": settings.worker_concurrency,
        "timezone": "UTC",
        "enable_utc": True,
    }
