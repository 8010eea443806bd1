"""What every destination provides: one :class:`Operation` row per WMS operation it delivers.

A row is everything the relay knows about an operation, in one place:

==================  ==========================================================================
``name``            the WMS operation (``dispatch.create``); the first part of the ledger's key
``task_name``       the Celery task a WMS publishes it as (``trademax.dispatch.create``): public
``queue``           the Celery queue it travels on (one per destination resource)
``task_module``     the module under ``tasks/`` that registers the task
``key_field``       the field that is the event's idempotency key (``transaction_id``/``event_id``)
``schema``          the marshmallow schema of the WMS event (``tasks.schemas``)
``send``            ``send(client, fields, dispatch_id) -> reply``: the one call that delivers it
``needs_dispatch_id``  names a shipment by transaction_id: waits for its create's dispatch_id
``resend_rule``     ``rule(event) -> bool``: may it be sent again after an unknown outcome?
==================  ==========================================================================

Queues, routes and the task modules Celery loads are built from the rows (``worker.destinations.table``):
adding an operation is one row, its schema and its sender.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

Send = Callable[[Any, dict, Any], Any]


@dataclass(frozen=True)
class Operation:
    """One WMS operation as one destination delivers it (see the module docstring)."""

    name: str
    destination: str
    resource: str  # the destination's resource: names the queue and the task module
    key_field: str  # "transaction_id" (the destination deduplicates it) or "event_id"
    schema: type
    send: Send
    resend_rule: Callable[[Any], bool]
    needs_dispatch_id: bool = False

    @property
    def task_name(self) -> str:
        return f"{self.destination}.{self.name}"

    @property
    def queue(self) -> str:
        return f"{self.destination}.{self.resource}"

    @property
    def task_module(self) -> str:
        return f"tasks.{self.resource}"

    def safe_to_resend(self, event: Any) -> bool:
        """Whether ``event`` may be sent again when a read timeout (or a worker killed mid-send) left it
        unknown whether the destination applied it.  Where not, the pipeline parks it ``uncertain``."""
        return self.resend_rule(event)
