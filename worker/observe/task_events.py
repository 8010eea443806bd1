"""Celery's task events (``task-received``, ``task-started``, ``task-succeeded``: what Flower shows),
published in batches a few times a second instead of after nearly every event.

Celery's worker buffers task events and publishes the buffer as one ``task.multi`` message; but it asks its
event loop to flush after every event it buffers (``Consumer.on_send_event_buffered``), and a thread of
the pool wakes the loop to do so.  At a prefetch of one the buffer then rarely holds more than a task's
three events: one PUBLISH per task (1.1 per task counted by benchmarks/throughput.py), each through
kombu's producer and JSON twice — about a quarter of a busy worker's event loop, the loop every message
waits on (py-spy, docs/benchmarks.md, issue 21).

:class:`BatchedTaskEvents` is a consumer bootstep that instead flushes every :data:`FLUSH_SECONDS` from the
loop's own timer (and Celery still flushes at once when the buffer reaches its limit, 24 events); the pool
no longer wakes the loop for an event.  Under a green pool (WORKER_POOL=gevent) Celery runs no event loop
and buffers nothing; the step turns the buffer on and flushes it from the consumer's timer just the same.
An event keeps the time it was made (its ``timestamp``); Flower
learns of it at most :data:`FLUSH_SECONDS` later.  What is buffered when the consumer stops (a lost broker
connection, a shutdown) is flushed first — as Celery's own Events step does not — and what cannot be
published then stays in Celery's offline buffer, sent when the connection is back.

Registered on the service's Celery app (``worker.celery``), so ``wms-relay worker`` and ``celery -A worker
worker`` both batch."""
from __future__ import annotations

import logging

from celery import bootsteps

log = logging.getLogger("wms_relay.task_events")

FLUSH_SECONDS = 0.1


class BatchedTaskEvents(bootsteps.StartStopStep):
    """Flush the consumer's task-event buffer on a timer instead of after every event (see the module)."""

    # After Celery's Events step, which builds the dispatcher (anew on every consumer restart).
    requires = ("celery.worker.consumer.events:Events",)

    def __init__(self, c, **kwargs) -> None:
        self._timer_entry = None
        super().__init__(c, **kwargs)

    def start(self, c) -> None:
        dispatcher = c.event_dispatcher
        green = c.hub is None and getattr(c.pool, "is_green", False)
        if dispatcher is None or not (green or (c.hub is not None and dispatcher.buffer_group)):
            return  # no event loop and no green pool: Celery publishes every event at once
        if green:  # Celery buffers task events only with an event loop; gevent's timer flushes them as well
            dispatcher.buffer_group = frozenset({"task"})
        dispatcher.on_send_buffered = None
        self._timer_entry = c.timer.call_repeatedly(FLUSH_SECONDS, self._flush, (c,), priority=5)

    def stop(self, c) -> None:
        if self._timer_entry is not None:
            self._timer_entry.cancel()
            self._timer_entry = None
            self._flush(c)

    def shutdown(self, c) -> None:
        self.stop(c)

    @staticmethod
    def _flush(c) -> None:
        dispatcher = c.event_dispatcher
        if dispatcher is None:
            return
        try:
            dispatcher.flush()
        except Exception as exc:  # noqa: BLE001 — events are Flower's view; they must never stop a worker
            log.warning("task events not published (%s: %s)", type(exc).__name__, exc)
