"""The one shape of every delivery task: it takes one JSON object (the WMS event) and hands it to the
delivery pipeline in ``worker.delivery.pipeline``.  One task per row of the operation table
(``worker.destinations.table``), registered by the row's task module (:func:`register_tasks`).  Retry
policy, dead letters and the ledger live there, not here.

What Flower and Celery's log lines show of a task's argument is ``tasks.summary``'s short summary
(operation, key, order_no/artno), never the payload: :class:`SummarizedRequest` sets it on every message
the worker receives — whoever published it, with whatever ``argsrepr`` — and a ``before_task_publish``
hook sets it on messages published through this app."""
from __future__ import annotations

import os
import threading

from celery import Task
from celery.signals import before_task_publish, worker_ready, worker_shutdown
from celery.worker.request import Request

from worker.celery import app
from tasks.summary import task_argument_summary
from worker.destinations.contract import Operation
from worker.destinations.table import ROWS, TASKS
from worker.store.requests import fresh_tag

NO_KEYWORDS = "{}"


class SummarizedRequest(Request):
    """A received task whose ``argsrepr`` is our summary.  The worker sends ``task-received`` events
    (what Flower displays) and logs failures with ``argsrepr``; the publisher's header is not trusted:
    a WMS publishing with plain Celery puts the repr of the whole event there."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        try:
            self._argsrepr = task_argument_summary(self._type, self._args, self._kwargs)
        except Exception:  # noqa: BLE001 — a summary must never stop a message (the worker exited so)
            self._argsrepr = f"({self._type}: arguments not summarized)"
        self._kwargsrepr = NO_KEYWORDS
        # The trace reads the request dict (its failure log line prints argsrepr from there).
        self._request_dict["argsrepr"] = self._argsrepr
        self._request_dict["kwargsrepr"] = self._kwargsrepr


@before_task_publish.connect
def _summarize_published(sender=None, headers=None, body=None, **_: object) -> None:
    """Messages published through this app carry the summary in their headers, whatever the caller passed."""
    if not (isinstance(sender, str) and sender in TASKS and isinstance(headers, dict)):
        return
    if isinstance(body, (tuple, list)) and len(body) >= 2:
        headers["argsrepr"] = task_argument_summary(sender, body[0], body[1])
        headers["kwargsrepr"] = NO_KEYWORDS


@worker_ready.connect
def _start_flow_keeper(**_: object) -> None:
    """The worker's flow keeper (worker.delivery.flow_keeper): probes open circuits, releases parked
    deliveries, flushes the bulk destinations' batches — from the moment the worker is ready, whether or
    not a task arrives."""
    from worker.delivery.flow_keeper import start_process_keeper

    start_process_keeper()


@worker_shutdown.connect
def _stop_flow_keeper(**_: object) -> None:
    from worker.delivery.flow_keeper import stop_process_keeper

    stop_process_keeper()


class DeliveryTask(Task):
    """Base class of every delivery task (one per row of every destination: ``trademax.receipt.create``,
    ``kaching.stock.adjust``, ...)."""

    # Retries are durable records in the retry schedule, never Celery's own retry/countdown.
    max_retries = 0
    acks_late = True
    reject_on_worker_lost = True
    # One JSON object, whatever the WMS sent: the schema, not the call signature, judges it.
    typing = False
    Request = SummarizedRequest


def delivery_task(row: Operation) -> DeliveryTask:
    """Register and return the task of one operation table row (``row.task_name``)."""
    operation, destination = row.name, row.destination

    def deliver_event(self: DeliveryTask, /, *args, **kwargs) -> str:
        from worker.delivery.pipeline import deliver
        from worker.delivery.relay import process_relay

        # ``self`` is positional-only: a keyword argument named "self" must not break the call.
        event = args[0] if len(args) == 1 else None
        if len(args) > 1 or kwargs:
            # Not one JSON object: validation dead-letters it, naming the problem.
            event = {"_arguments": "a task takes exactly one JSON object"}
        # Unique per run: a redelivered copy of this very message is another owner, kept out by the lease.
        owner = f"{os.getpid()}:{threading.get_ident()}:{self.request.id or 'direct'}:{fresh_tag(8)}"
        return deliver(process_relay(), operation, event, owner=owner, destination=destination)

    deliver_event.__name__ = f"{destination}_{operation.replace('.', '_')}"
    deliver_event.__module__ = row.task_module
    return app.task(name=row.task_name, base=DeliveryTask, bind=True)(deliver_event)


def register_tasks(module: str) -> dict[str, DeliveryTask]:
    """Register the task of every row (every destination's) whose ``task_module`` is ``module``; task
    name → task."""
    return {row.task_name: delivery_task(row) for row in ROWS.values() if row.task_module == module}
