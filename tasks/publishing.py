"""Publishing a task message (``{"task", "event"}``, see ``tasks.events.task_message``) with its route and
the secret-free argument summary: the scheduler (due retries), support actions (a retried dead letter)
and the worker's fan-out (an event's deliveries to the other destinations) all publish through this."""
from __future__ import annotations

from typing import Callable

from tasks.summary import task_argument_summary
from worker.destinations.table import queue_for

Publish = Callable[[dict], None]


def celery_publisher(app) -> Publish:
    """Publish a task message with ``app`` on its task's queue, its argsrepr our summary."""

    def publish(message: dict) -> None:
        task = message["task"]
        app.send_task(task, args=[message["event"]], queue=queue_for(task),
                      argsrepr=task_argument_summary(task, [message["event"]], {}),
                      kwargsrepr="{}")

    return publish
