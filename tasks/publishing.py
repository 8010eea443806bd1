"""Publishing a task message (``{"task", "event"}``, see ``tasks.events.task_message``) with its route and
the secret-free argument summary: the scheduler (due retries), support actions (a retried dead letter)
and the worker's fan-out (an event's deliveries to the other destinations) all publish through this.  Each
message carries its publish time (header ``published_at``): the stranded-event sweep reads the oldest
queued one's to know which messages have left their queue (``worker.store.broker_queues``)."""
from __future__ import annotations

import time
from typing import Callable

from tasks.summary import task_argument_summary
from worker.destinations.table import queue_for
from worker.store.broker_queues import PUBLISHED_AT

Publish = Callable[[dict], None]


def celery_publisher(app, clock: Callable[[], float] = time.time) -> Publish:
    """Publish a task message with ``app`` on its task's queue, its argsrepr our summary, stamped with
    ``clock``'s time."""

    def publish(message: dict) -> None:
        task = message["task"]
        app.send_task(task, args=[message["event"]], queue=queue_for(task),
                      argsrepr=task_argument_summary(task, [message["event"]], {}),
                      kwargsrepr="{}", headers={PUBLISHED_AT: round(clock(), 3)})

    return publish
