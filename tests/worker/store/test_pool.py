"""The store's connection pool (worker.store.pool) hands a connection given back less than a second ago out
again without polling it, and keeps what redis-py's poll protects: a connection idle longer is checked (one
the server closed is replaced before a command goes on it), a connection whose reader still holds a reply
is replaced, and one the server closed just now is sent again by the client's retry with the right
answer.  Against a real valkey; the poll is seen by counting ``can_read`` in redis-py's connection class
(the pool's documented ``connection_class`` option), so a redis-py that stopped calling the two methods
the pool overrides fails here."""
from __future__ import annotations

import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from worker.settings import Settings
from worker.store.connection import connect, store_retry
from worker.store.pool import RECHECK_AFTER_IDLE_SECONDS, SentinelStorePool, StorePool


class CountingConnection(redis.Connection):
    """redis-py's connection, counting its readiness polls."""

    polls = 0

    def can_read(self, timeout: float = 0) -> bool:
        type(self).polls += 1
        return super().can_read(timeout)


@pytest.fixture
def counting():
    CountingConnection.polls = 0
    return CountingConnection


def connections_made(server) -> int:
    """Connections the server accepted so far (its own count; the test's own look included)."""
    return int(server.client().info("stats")["total_connections_received"])


def pool_client(server, pool_class=StorePool, retry=None) -> redis.Redis:
    pool = pool_class.from_url(server.url, connection_class=CountingConnection, decode_responses=True,
                               socket_timeout=5, retry=retry or store_retry())
    return redis.Redis.from_pool(pool)


def client_id(client: redis.Redis) -> int:
    return int(client.client_id())


def test_a_connection_given_back_just_now_goes_out_again_unpolled(redis_server, counting):
    client = pool_client(redis_server)
    for n in range(10):
        client.set("k", n)
        assert client.get("k") == str(n)
    assert counting.polls == 1  # the new connection's first hand-out only


def test_redis_pys_own_pool_polls_every_hand_out(redis_server, counting):
    """What the pool spares (and proof that the count above sees redis-py's check)."""
    client = pool_client(redis_server, pool_class=redis.ConnectionPool)
    for n in range(10):
        client.set("k", n)
    assert counting.polls == 10


def test_a_connection_idle_longer_than_the_window_is_polled_and_a_closed_one_replaced(redis_server, counting):
    # No resend here: the command must go on a live connection the first time.
    client = pool_client(redis_server, retry=Retry(NoBackoff(), 0))
    first = client_id(client)
    redis_server.client().client_kill_filter(_id=first)
    time.sleep(RECHECK_AFTER_IDLE_SECONDS + 0.1)
    assert client.set("k", "v") and client.get("k") == "v"
    assert counting.polls >= 2  # the idle connection's check found it closed (and checked the new one)
    assert client_id(client) != first


def test_a_connection_closed_by_the_server_just_now_is_sent_again_by_the_retry(redis_server, counting):
    client = pool_client(redis_server)  # the store's retry (worker.store.connection.store_retry)
    client.set("k", "before")
    killed = client_id(client)
    given_back = time.monotonic()
    made = connections_made(redis_server)
    redis_server.client().client_kill_filter(_id=killed)
    assert client.get("k") == "before"  # not polled: the read fails, the retry reconnects and reads again
    if time.monotonic() - given_back < RECHECK_AFTER_IDLE_SECONDS:  # (a machine this slow polls: fine too)
        assert counting.polls == 1
    assert connections_made(redis_server) == made + 3  # the kill's, the retry's, this look's
    assert client_id(client) != killed


def test_a_store_restart_under_way_is_ridden_out_by_the_retry(redis_server, counting):
    client = pool_client(redis_server)
    client.set("k", "kept")
    client.save()
    redis_server.restart()
    assert client.get("k") == "kept"


def test_a_connection_whose_reader_holds_a_reply_is_replaced(redis_server, counting):
    """Bytes of an unread reply in the parser's buffer: handing the connection out would answer the next
    command with that reply.  The pool sees them without a system call and lets redis-py's check replace
    the connection."""
    client = pool_client(redis_server)
    client.set("k", "value")
    first = client_id(client)
    pool = client.connection_pool
    connection = pool.get_connection()
    connection.send_packed_command(connection.pack_commands([("PING",), ("ECHO", "stale")]))
    time.sleep(0.1)  # both replies arrive; reading the first takes both into the reader
    assert connection.read_response() == "PONG"
    pool.release(connection)
    assert client.get("k") == "value"
    assert client_id(client) != first


def test_connect_uses_the_pool_and_a_probe_keeps_redis_pys(redis_server):
    settings = Settings.from_env({"REDIS_URL": redis_server.url})
    assert type(connect(settings).connection_pool) is StorePool
    assert type(connect(settings, probe_timeout=1.0).connection_pool) is redis.ConnectionPool


def test_a_sentinel_store_gets_the_sentinel_pool():
    settings = Settings.from_env({"REDIS_URL": "sentinel://:pw@127.0.0.1:1/0?master_name=relay"})
    assert isinstance(connect(settings).connection_pool, SentinelStorePool)
    assert not isinstance(connect(settings, probe_timeout=1.0).connection_pool, SentinelStorePool)
