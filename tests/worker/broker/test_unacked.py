"""worker.broker.unacked against a real valkey-server: the unacked set is written with one script per message,
exactly as kombu writes it — so kombu's visibility sweep and our stranded-event sweep keep reading it — and
a worker's loop removes the acknowledged messages' records with the next record or on its timer."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from kombu import Connection, Consumer, Queue
from kombu.asynchronous import Hub
from kombu.transport import redis as kombu_redis

from benchmarks.poison import celery_message
from worker.broker.unacked import ACK_FLUSH_SECONDS, UnackedBookkeeping, flush_acks_on
from worker.broker.celery_config import RedisTransport
from worker.store.broker_queues import broker_snapshot

QUEUE = "trademax.receipt"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _KombusOwnTransport(kombu_redis.Transport):
    """kombu's transport as it is (its QoS): the reference our records must equal."""


@pytest.fixture
def broker(shared_redis_server):
    client = shared_redis_server.client()
    client.flushdb()
    return shared_redis_server, client


def _publish(client, n: int) -> None:
    for i in range(n):
        client.lpush(QUEUE, celery_message("trademax.receipt.create", {"transaction_id": f"R-{i}"}, QUEUE))


class _Taker:
    """A kombu consumer of the queue on one channel: each message it takes is recorded as unacknowledged
    by the channel's QoS, and kept (not acknowledged) for the test."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self.taken: list = []
        self.channel = connection.channel()
        Consumer(self.channel, [Queue(QUEUE)], callbacks=[lambda body, message: self.taken.append(message)],
                 accept=["json"]).consume()

    def take(self, n: int) -> list:
        had = len(self.taken)
        deadline = time.monotonic() + 10
        while len(self.taken) < had + n and time.monotonic() < deadline:
            self.connection.drain_events(timeout=1)
        assert len(self.taken) == had + n
        return self.taken[had:]


def _take(connection, n: int) -> list:
    return _Taker(connection).take(n)


def test_a_taken_message_is_recorded_exactly_as_kombu_records_it_and_its_ack_removes_exactly_that(broker):
    """Same keys, same member, same JSON as kombu 5.7's own ``QoS.append`` (a kombu upgrade that changes
    its record fails here), and an ack removes that message's two entries and nothing else."""
    server, client = broker
    raw = celery_message("trademax.receipt.create", {"transaction_id": "R-0"}, QUEUE)
    recorded = {}
    for name, transport in (("kombu", _KombusOwnTransport), ("ours", RedisTransport)):
        client.lpush(QUEUE, raw)  # the same message, taken by kombu's channel, then by ours
        with Connection(server.url, transport=transport) as connection:
            [message] = _take(connection, 1)
            assert type(message.channel.qos) is (kombu_redis.QoS if name == "kombu" else UnackedBookkeeping)
            [(tag, record)] = client.hgetall("unacked").items()
            [(member, score)] = client.zrange("unacked_index", 0, -1, withscores=True)
            assert tag == member == message.delivery_tag.encode()
            assert abs(score - time.time()) < 60  # the time it was taken
            # Each channel's message has its own delivery tag (our screen gives each a new one): apart from
            # it, the same bytes.
            assert json.loads(record)[0]["properties"]["delivery_tag"] == tag.decode()
            recorded[name] = record.replace(b'"delivery_tag": "%s"' % tag, b'"delivery_tag": "<tag>"')
            client.hset("unacked", "someone-elses", "x")
            client.zadd("unacked_index", {"someone-elses": 1.0})
            message.ack()  # no event loop: sent at once
            assert client.hkeys("unacked") == [b"someone-elses"]
            assert client.zrange("unacked_index", 0, -1) == [b"someone-elses"]
            client.delete("unacked", "unacked_index")
    assert recorded["ours"] == recorded["kombu"]
    assert json.loads(recorded["ours"])[1:] == ["", QUEUE]  # [message, exchange, routing key]


def test_under_a_workers_loop_acks_ride_with_the_next_record_or_the_timer(broker):
    server, client = broker
    _publish(client, 3)
    with Connection(server.url, transport=RedisTransport) as connection:
        hub = Hub()
        flush_acks_on(connection.transport, connection, hub)
        taker = _Taker(connection)
        first, second = taker.take(2)
        assert client.hlen("unacked") == 2
        first.ack()
        assert client.hlen("unacked") == 2           # queued, its prefetch slot free already
        assert first.channel.qos.can_consume()
        [third] = taker.take(1)                     # the next record takes the ack with it
        held = {json.loads(v)[0]["properties"]["delivery_tag"] for v in client.hvals("unacked")}
        assert held == {second.delivery_tag, third.delivery_tag}
        assert client.zcard("unacked_index") == 2
        second.ack()
        third.ack()
        assert client.hlen("unacked") == 2
        time.sleep(ACK_FLUSH_SECONDS * 1.5)
        hub.fire_timers(propagate=(Exception,))       # the loop's timer: no further message needed
        assert client.hlen("unacked") == 0 and client.zcard("unacked_index") == 0
        hub.close()


def test_queued_acks_are_removed_before_the_channel_closes(broker):
    server, client = broker
    _publish(client, 2)
    with Connection(server.url, transport=RedisTransport) as connection:
        flush_acks_on(connection.transport, connection, Hub())
        done, unfinished = _take(connection, 2)
        done.ack()
        assert client.hlen("unacked") == 2
        done.channel.close()  # what a worker's warm shutdown does: the unfinished one goes back
    assert client.hlen("unacked") == 0 and client.zcard("unacked_index") == 0
    back = [json.loads(raw)["properties"]["delivery_tag"] for raw in client.lrange(QUEUE, 0, -1)]
    assert back == [unfinished.delivery_tag]  # the finished one is not handed out again


def _held(client) -> list:
    """The messages workers hold, as the stranded sweep reads them."""
    return broker_snapshot(client, [], now=0.0)[1]


def test_the_stranded_sweep_sees_the_messages_workers_hold(broker):
    server, client = broker
    _publish(client, 2)
    with Connection(server.url, transport=RedisTransport) as connection:
        first, second = _take(connection, 2)
        held = _held(client)
        assert sorted(args[0]["transaction_id"] for _, args in held) == ["R-0", "R-1"]
        assert {task for task, _ in held} == {"trademax.receipt.create"}
        first.ack()
        assert [args[0]["transaction_id"] for _, args in _held(client)] == [
            second.payload[0][0]["transaction_id"]]


_KILLED_MID_TASK = """
import os, signal, sys, time
from kombu import Connection, Consumer, Queue
from worker.broker.celery_config import RedisTransport
from kombu.asynchronous import Hub
from worker.broker.unacked import flush_acks_on
with Connection(sys.argv[1], transport=RedisTransport) as connection:
    flush_acks_on(connection.transport, connection, Hub())
    taken = []
    Consumer(connection.channel(), [Queue(sys.argv[2])], callbacks=[lambda b, m: taken.append(m)],
             accept=["json"]).consume()
    while not taken:
        connection.drain_events(timeout=5)
    print("taken", flush=True)
    time.sleep(60)  # "mid-task": killed here
"""


def test_a_worker_killed_mid_task_has_its_message_restored_by_the_visibility_sweep(broker):
    server, client = broker
    _publish(client, 1)
    env = {**os.environ, "PYTHONPATH": ROOT}
    worker = subprocess.Popen([sys.executable, "-c", _KILLED_MID_TASK, server.url, QUEUE], env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline().strip() == "taken"
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    assert client.llen(QUEUE) == 0 and client.hlen("unacked") == 1
    with Connection(server.url, transport=RedisTransport,
                    transport_options={"visibility_timeout": 1}) as connection:
        time.sleep(1.2)
        connection.default_channel.qos.restore_visible(interval=1)  # kombu's sweep, as a worker runs it
        assert client.hlen("unacked") == 0 and client.llen(QUEUE) == 1
        [restored] = _take(connection, 1)
        assert restored.payload[0][0] == {"transaction_id": "R-0"}
        restored.ack()
