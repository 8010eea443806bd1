"""The one shape of every delivery task: it takes one JSON object (the WMS event) and hands it to the
delivery pipeline in ``worker.delivery``.  Retry policy, dead letters and the ledger live there, not here."""
from __future__ import annotations

import os
import threading
import uuid

from celery import Task

from worker.celery import app


class DeliveryTask(Task):
    """Base class of the trademax.* tasks."""

    # Retries are durable records in the retry schedule, never Celery's own retry/countdown.
    max_retries = 0
    acks_late = True
    reject_on_worker_lost = True
    # One JSON object, whatever the WMS sent: the schema, not the call signature, judges it.
    typing = False


def delivery_task(operation: str) -> DeliveryTask:
    """Register and return the task ``trademax.<operation>``."""

    def deliver_event(self: DeliveryTask, event=None, *args, **kwargs) -> str:
        from worker.delivery import deliver
        from worker.relay import process_relay

        if args or kwargs:
            # Not one JSON object: validation dead-letters it, naming the problem.
            event = {"_arguments": "a task takes exactly one JSON object"}
        # Unique per run: a redelivered copy of this very message is another owner, kept out by the lease.
        owner = f"{os.getpid()}:{threading.get_ident()}:{self.request.id or 'direct'}:{uuid.uuid4().hex[:8]}"
        return deliver(process_relay(), operation, event, owner=owner)

    deliver_event.__name__ = operation.replace(".", "_")
    return app.task(name=f"trademax.{operation}", base=DeliveryTask, bind=True)(deliver_event)
