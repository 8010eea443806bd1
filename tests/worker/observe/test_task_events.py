"""worker.observe.task_events.BatchedTaskEvents against a real valkey-server: the worker's task events are
published together on the loop's timer (one ``task.multi`` message for many events) instead of one
publish per event, and what is buffered when the consumer stops is published then.

Celery's consumer is the seam: a small stand-in holds what the step uses of it (``hub``, ``timer``,
``pool``, ``event_dispatcher``); the dispatcher, its connection and the event receiver are Celery's and
kombu's own."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
from celery import Celery
from kombu.asynchronous.timer import Timer

from worker.observe.task_events import BatchedTaskEvents


@pytest.fixture
def app(shared_redis_server):
    shared_redis_server.client().flushdb()
    app = Celery("task-events-test", broker=shared_redis_server.url, set_as_current=False)
    yield app
    app.close()


class Received:
    """Every task event published to the broker, as Flower's receiver sees them (a thread)."""

    def __init__(self, app) -> None:
        self.events: list[dict] = []
        self.ready = threading.Event()
        self._receiver = app.events.Receiver(app.connection_for_read(), handlers={"*": self.events.append})
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self.ready.wait(10)

    def _run(self) -> None:
        with self._receiver.consumer_context(wakeup=False) as (conn, _, _consumers):
            while not self._receiver.should_stop:
                try:
                    conn.drain_events(timeout=0.2)  # the first one subscribes
                except TimeoutError:
                    pass
                except OSError:
                    return
                self.ready.set()

    def wait_for(self, count: int, seconds: float = 10) -> list[dict]:
        deadline = time.monotonic() + seconds
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return [e for e in self.events if e["type"].startswith("task-")]

    def stop(self) -> None:
        self._receiver.should_stop = True
        self._thread.join(5)


def consumer_with_events(app):
    """What the step uses of Celery's consumer: a hub (only its presence), a timer, and the Events step's
    dispatcher as Celery builds it with an event loop (task events buffered, a flush asked per event)."""
    asked: list[int] = []
    c = SimpleNamespace(hub=object(), timer=Timer(), pool=SimpleNamespace(is_green=False),
                        event_dispatcher=None)
    c.event_dispatcher = app.events.Dispatcher(
        app.connection_for_write(), hostname="test@host", enabled=True, buffer_group=["task"],
        on_send_buffered=lambda: asked.append(1))
    return c, asked


@pytest.fixture
def started(app):
    """(consumer, flushes Celery asked for, the started step, the receiver); all closed afterwards."""
    received = Received(app)
    c, asked = consumer_with_events(app)
    step = BatchedTaskEvents(c)
    step.start(c)
    yield c, asked, step, received
    received.stop()
    c.event_dispatcher.close()


def test_task_events_wait_for_the_timer_and_go_as_one_message(started):
    c, asked, step, received = started
    published = []
    original = c.event_dispatcher._publish
    c.event_dispatcher._publish = lambda *a, **k: (published.append(a[2]), original(*a, **k))[1]
    for n in range(3):
        for kind in ("task-received", "task-started", "task-succeeded"):
            c.event_dispatcher.send(kind, uuid=f"t{n}", name="trademax.receipt.create")
    assert asked == [] and published == []  # no flush per event: the timer's
    [scheduled] = c.timer.queue
    scheduled.entry()  # the loop fires the timer (every FLUSH_SECONDS)
    assert published == ["task.multi"]
    events = received.wait_for(9)
    assert [(e["type"], e["uuid"]) for e in events] == [
        (kind, f"t{n}") for n in range(3) for kind in ("task-received", "task-started", "task-succeeded")]
    assert all(e["hostname"] == "test@host" and e["timestamp"] for e in events)


def test_events_buffered_when_the_consumer_stops_are_published_then(started):
    c, _, step, received = started
    c.event_dispatcher.send("task-succeeded", uuid="last", name="trademax.receipt.create")
    step.shutdown(c)  # a warm shutdown right after the last task: its event is not lost
    assert [e["uuid"] for e in received.wait_for(1)] == ["last"]
    assert not c.timer.queue or all(s.entry.canceled for s in c.timer.queue)


def test_without_an_event_loop_or_a_green_pool_the_step_leaves_celery_alone(app):
    c, asked = consumer_with_events(app)
    c.hub = None
    step = BatchedTaskEvents(c)
    step.start(c)
    c.event_dispatcher.send("task-received", uuid="x", name="trademax.receipt.create")
    assert asked == [1] and not c.timer.queue
    c.event_dispatcher.close()


def test_under_a_green_pool_task_events_are_buffered_and_go_as_one_message_on_the_timer(app):
    """WORKER_POOL=gevent: Celery runs no event loop and builds its dispatcher without a buffer (every event
    published at once); the step turns the buffer on and the consumer's timer flushes it."""
    received = Received(app)
    dispatcher = app.events.Dispatcher(app.connection_for_write(), hostname="test@host", enabled=True)
    c = SimpleNamespace(hub=None, timer=Timer(), pool=SimpleNamespace(is_green=True),
                        event_dispatcher=dispatcher)
    published = []
    original = dispatcher._publish
    dispatcher._publish = lambda *a, **k: (published.append(a[2]), original(*a, **k))[1]
    step = BatchedTaskEvents(c)
    step.start(c)
    for n in range(2):
        for kind in ("task-received", "task-started", "task-succeeded"):
            dispatcher.send(kind, uuid=f"g{n}", name="trademax.receipt.create")
    assert published == []  # buffered, not one publish per event
    [scheduled] = c.timer.queue
    scheduled.entry()
    assert published == ["task.multi"]
    assert [(e["type"], e["uuid"]) for e in received.wait_for(6)] == [
        (kind, f"g{n}") for n in range(2) for kind in ("task-received", "task-started", "task-succeeded")]
    dispatcher.send("task-succeeded", uuid="last", name="trademax.receipt.create")
    step.shutdown(c)  # a warm shutdown: what is buffered goes then
    assert [e["uuid"] for e in received.wait_for(7)][-1] == "last"
    received.stop()
    dispatcher.close()
