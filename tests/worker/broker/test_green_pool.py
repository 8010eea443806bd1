"""worker.broker.green_pool against a real valkey-server: what kombu's Redis transport misses without an
event loop (a green pool: WORKER_POOL=gevent), put back — a poll that cannot wait seconds for a slot an ack
already freed, the visibility sweep on the consumer's timer (not after every empty poll), and the acks'
flush.  Celery's consumer is the seam: a stand-in holds what the step uses of it (``hub``, ``pool``,
``timer``, ``connection``); the connection, its channels and the timer are kombu's own.  End to end under
gevent: ``tests/integration/test_delivery_pipeline.py`` and ``test_graceful_stop.py`` (``[gevent]``)."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from kombu import Connection
from kombu.asynchronous.timer import Timer

from tests.worker.broker.test_unacked import QUEUE, _publish, _Taker
from worker.broker.green_pool import REFILL_POLL_SECONDS, GreenPoolTimers
from worker.broker.celery_config import RedisTransport


@pytest.fixture
def broker(shared_redis_server):
    client = shared_redis_server.client()
    client.flushdb()
    return shared_redis_server, client


def _green_consumer(connection, *, green: bool = True):
    return SimpleNamespace(hub=None, pool=SimpleNamespace(is_green=green), timer=Timer(),
                           connection=connection)


def _poll_timeouts(cycle) -> list:
    """The timeouts kombu's poller is asked to wait (the poller is kombu's; this only records)."""
    asked = []
    poll = cycle.poller.poll
    cycle.poller.poll = lambda timeout=None: (asked.append(timeout), poll(timeout))[1]
    return asked


def test_with_every_slot_taken_the_loop_polls_briefly_and_refills_the_slot_an_ack_freed(broker):
    server, client = broker
    _publish(client, 2)
    with Connection(server.url, transport=RedisTransport) as connection:
        taker = _Taker(connection)
        taker.channel.basic_qos(prefetch_count=1)  # one slot
        [first] = taker.take(1)
        c = _green_consumer(connection)
        step = GreenPoolTimers(c)
        step.start(c)
        cycle = connection.transport.cycle
        asked = _poll_timeouts(cycle)
        with pytest.raises(TimeoutError):  # the slot is taken: nothing is delivered...
            connection.drain_events(timeout=0.3)
        assert asked and max(asked) <= REFILL_POLL_SECONDS  # ...and no poll waited longer than a moment
        first.ack()  # the task ends: its slot is free
        del asked[:]
        [second] = taker.take(1)  # the next poll sends BRPOP again and takes the second message
        assert second.delivery_tag != first.delivery_tag
        assert max(asked) > REFILL_POLL_SECONDS  # a slot free: the poll waits for BRPOP's answer as before
        second.ack()
        step.shutdown(c)


def test_the_visibility_sweep_runs_on_the_timer_and_not_after_every_empty_poll(broker):
    server, client = broker
    _publish(client, 1)
    options = {"visibility_timeout": 1, "unacked_restore_interval": 1, "unacked_restore_throttle": 1}
    with Connection(server.url, transport=RedisTransport, transport_options=options) as connection:
        taker = _Taker(connection)
        [held] = taker.take(1)  # taken by a worker that dies without acknowledging it
        client.zadd("unacked_index", {held.delivery_tag: time.time() - 60})  # long past the timeout
        c = _green_consumer(connection)
        step = GreenPoolTimers(c)
        step.start(c)
        cycle = connection.transport.cycle
        cycle.maybe_restore_messages()  # what kombu calls after an empty poll: nothing now
        assert client.llen(QUEUE) == 0 and client.hlen("unacked") == 1
        sweeps = [entry for entry in c.timer.queue if entry.entry.fun.__name__ != "flush"]
        assert sweeps, "the sweep is on the consumer's timer"
        for entry in sweeps:
            entry.entry()
        assert client.llen(QUEUE) == 1 and client.hlen("unacked") == 0  # handed out again
        step.shutdown(c)
        assert all(entry.entry.canceled for entry in c.timer.queue)


def test_with_an_event_loop_or_os_threads_the_step_does_nothing(broker):
    server, _ = broker
    with Connection(server.url, transport=RedisTransport) as connection:
        connection.default_channel  # noqa: B018 — the transport's poller exists
        for c in (_green_consumer(connection, green=False),
                  SimpleNamespace(hub=object(), pool=SimpleNamespace(is_green=True), timer=Timer(),
                                  connection=connection)):
            GreenPoolTimers(c).start(c)
            assert not c.timer.queue
            assert "get" not in connection.transport.cycle.__dict__
