"""The store's connection pool: a connection handed out again within a second of its last use is not polled.

redis-py's ``ConnectionPool`` checks every connection it hands out (``ensure_connection``) with
``can_read()``: a ``poll`` system call, which releases the GIL.  It catches two things: a connection given
back with a reply still unread (it would answer the next command with the previous one's reply), and one
the server has closed since (a restart, a failover, ``CLIENT KILL``, an idle ``timeout``).  In a worker of
16–64 threads, two or three store calls per delivered event each paid that poll, and each GIL release can
hand the interpreter to another thread (issue 21: "GIL hand-offs and system calls per event").

:class:`StorePool` keeps redis-py's check for a connection that sat in the pool longer than
:data:`RECHECK_AFTER_IDLE_SECONDS`, and for one whose reader still holds bytes, and skips it for one given
back less than that ago — under load, every connection.  What each case costs:

- *Unread reply.*  redis-py disconnects a connection whose command raised before or while its reply was
  read (``read_response`` disconnects on any exception, a pipeline on a connection or timeout error), so a
  connection comes back with a reply owed only if an exception lands between the send and the read from
  outside (an asynchronous exception: ``KeyboardInterrupt`` in the main thread).  Worker threads get none;
  a process interrupted so is stopping.  Bytes already in the reader's buffer are checked without a system
  call.
- *Closed by the server within the last second.*  The next command on it fails with ``ConnectionError``
  (the write or the read sees the closed socket) and the client's retry (``worker.store.connection.
  store_retry``) reconnects and sends it again — safe by the store-call rule (``worker.store.requests``):
  reads and plain writes are idempotent, state-changing scripts replay by request id.  Clients without
  a retry (the health probe's) keep redis-py's own pool.
- *A push notification that arrived while idle* (RESP3, redis-py's default: a maintenance notice of a
  managed Redis; valkey sends none to a client that neither subscribes nor tracks): read and handled
  before the next reply, as redis-py's parser takes every push it meets first — at the next command
  instead of at the hand-out.  A pool with client-side caching (``cache``; not ours) is always checked:
  its invalidations must be applied before a read is answered from the cache.

``tests/worker/store/test_pool.py`` checks both, and that redis-py still calls the two methods overridden
here (``ensure_connection``, ``release``): an upgrade that renames them fails there, not silently.
"""
from __future__ import annotations

import time

import redis
from redis.sentinel import SentinelConnectionPool

__all__ = ["RECHECK_AFTER_IDLE_SECONDS", "SentinelStorePool", "StorePool"]

# A connection idle in the pool longer than this is checked (polled) before it is handed out again.
RECHECK_AFTER_IDLE_SECONDS = 1.0

_GIVEN_BACK_AT = "_wms_given_back_at"  # set on the connection by release(); monotonic seconds


class _RecentlyUsedUnpolled:
    """The override, for redis-py's pool and its Sentinel pool alike."""

    def release(self, connection) -> None:
        setattr(connection, _GIVEN_BACK_AT, time.monotonic())
        super().release(connection)

    def ensure_connection(self, connection) -> None:
        given_back_at = getattr(connection, _GIVEN_BACK_AT, None)
        if (given_back_at is not None and time.monotonic() - given_back_at < RECHECK_AFTER_IDLE_SECONDS
                and connection.is_connected and not _has_buffered_reply(connection) and self.cache is None):
            return
        super().ensure_connection(connection)


def _has_buffered_reply(connection) -> bool:
    """Whether the connection's reply parser already holds bytes (read from the socket, not yet taken):
    hiredis' reader or the Python parser's buffer; an unknown parser counts as holding some."""
    parser = getattr(connection, "_parser", None)
    reader = getattr(parser, "_reader", None)
    if reader is not None and hasattr(reader, "has_data"):
        return bool(reader.has_data())
    buffer = getattr(parser, "_buffer", None)
    if buffer is not None and hasattr(buffer, "unread_bytes"):
        return buffer.unread_bytes() > 0
    return True


class StorePool(_RecentlyUsedUnpolled, redis.ConnectionPool):
    """redis-py's connection pool, without the poll of a connection given back less than
    :data:`RECHECK_AFTER_IDLE_SECONDS` ago (module docstring)."""


class SentinelStorePool(_RecentlyUsedUnpolled, SentinelConnectionPool):
    """The same for a store found through Sentinels (``master_for(connection_pool_class=...)``)."""
