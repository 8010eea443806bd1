"""worker.broker.celery_config.RedisTransport against a real valkey-server: a channel shares one redis-py
client (kombu built one per publish, event and ack) and still publishes, consumes and recovers from lost
pools."""
from __future__ import annotations

import threading
import time

import pytest
from kombu import Connection

from worker.broker.celery_config import RedisTransport


@pytest.fixture
def connection(shared_redis_server):
    shared_redis_server.client().flushdb()
    with Connection(shared_redis_server.url, transport=RedisTransport) as conn:
        yield conn


def test_a_channel_reuses_its_client_until_its_pool_is_replaced(connection):
    channel = connection.channel()
    with channel.conn_or_acquire() as first, channel.conn_or_acquire() as again:
        assert first is again and first.ping()
    given = object()
    with channel.conn_or_acquire(given) as passed:
        assert passed is given  # a caller's own client is used as it is
    channel._disconnect_pools()  # what kombu does after a fork or a lost connection
    with channel.conn_or_acquire() as after:
        assert after is not first and after.ping()
        assert after.connection_pool is channel.pool


def test_messages_published_from_many_threads_through_the_shared_client_all_arrive(connection):
    queue = connection.SimpleQueue("transport-test")
    errors: list[BaseException] = []

    def publish(n: int) -> None:
        try:
            for i in range(50):
                queue.put({"n": n, "i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    seen = set()
    for _ in range(400):
        message = queue.get(timeout=5)
        seen.add((message.payload["n"], message.payload["i"]))
        message.ack()
    assert len(seen) == 400
    queue.close()


def test_the_embedded_stores_socket_broker_screens_every_message(tmp_path):
    """The embedded store listens on a unix socket only (worker.store.embedded): its broker connection is
    our screened transport over that socket, not kombu's plain ``redis+socket`` one — a malformed
    message popped from a task queue is a dead letter, a good one is delivered as Celery's envelope."""
    from benchmarks.poison import celery_message
    from kombu.transport.virtual import Empty

    from worker.broker.celery_config import SocketTransport, celery_config
    from worker.settings import Settings
    from worker.store import embedded
    from worker.destinations.table import delivery_ref
    from worker.store.dead_letters import DeadLetters

    var = tmp_path / "var"
    url = embedded.ensure_running(var)
    try:
        config = celery_config(Settings(var_dir=var), url)
        with Connection(config["broker_url"], transport=config["broker_transport"]) as conn:
            assert isinstance(conn.transport, SocketTransport)
            assert conn.as_uri().startswith("redis+socket://:**@") and "valkey.sock" in conn.as_uri()
            channel = conn.default_channel
            channel.client.lpush("trademax.receipt", b"this is not json {{{")
            with pytest.raises(Empty):
                channel._get("trademax.receipt")
            good = celery_message("trademax.receipt.create", {"transaction_id": "R-1"}, "trademax.receipt")
            channel.client.lpush("trademax.receipt", good)
            assert channel._get("trademax.receipt")["headers"]["task"] == "trademax.receipt.create"
        import redis as redis_py

        [letter] = DeadLetters(redis_py.Redis.from_url(url), delivery_ref=delivery_ref).list()
        assert letter.reason == "malformed_message" and "trademax.receipt" in letter.detail
    finally:
        embedded.stop(var)


def test_a_consumer_on_many_queues_packs_its_brpop_once_per_queue_order(connection):
    """The channel keeps the packed BRPOP per queue order (kombu packed 4 keys per queue for every message);
    every queue is still polled in turn and every message arrives."""
    from kombu import Consumer, Queue

    names = [f"brpop-order-{n}" for n in range(3)]
    channel = connection.channel()
    got: list[str] = []

    def on_message(body, message):
        got.append(body["queue"])
        message.ack()

    with Consumer(channel, [Queue(name) for name in names], callbacks=[on_message], accept=["json"]):
        producer = connection.Producer()
        for round_ in range(4):
            for name in names:
                producer.publish({"queue": name, "round": round_}, routing_key=name, serializer="json")
        deadline = time.monotonic() + 10
        while len(got) < 12 and time.monotonic() < deadline:
            connection.drain_events(timeout=1)
    assert sorted(got) == sorted(names * 4)
    kept = channel.__dict__["_packed_brpops"]
    assert 1 <= len(kept) <= len(names)  # one per rotation of the three queues, not one per message
    for order, packed in kept.items():
        queues, packed = order[0], packed if isinstance(packed, bytes) else b"".join(packed)
        assert packed.startswith(b"*") and b"BRPOP" in packed and all(q.encode() in packed for q in queues)
