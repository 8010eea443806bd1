"""WMS events as wms-relay accepts them: validation and the validated event.  The operations (schema, key,
task, queue) are the rows of ``worker.destinations.table.OPERATIONS``, re-exported here.

An event is one JSON object: the Trademax fields of its operation plus ``event_id`` and
``occurred_at``.  :func:`validate_event` turns it into a :class:`DeliveryEvent` (validated,
normalized, with its idempotency key) or raises :class:`InvalidEvent` naming every bad field — and
nothing else, whatever it is given.  An invalid event is dead-lettered, never sent, never retried.

Pure: importing this module imports no Celery, Redis or HTTP library, and nothing here does I/O.
"""
from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError

from tasks.schemas.json_value import plain_json
from tasks.schemas.messages import SCHEMA, flatten, readable_path, summarize
from worker.destinations.contract import Operation
from worker.destinations.table import OPERATIONS, delivery_ref


def task_message(operation: str, event_message: dict) -> dict:
    """What a publisher puts on the queue for an event: the task to run and the one JSON object it takes
    (``wms-relay enqueue``, the retry schedule, the stranded-event sweep and support actions all use it)."""
    return {"task": OPERATIONS[operation].task_name, "event": event_message}


@dataclass(frozen=True)
class DeliveryEvent:
    """A validated event, ready for the ledger and the Trademax client."""

    operation: str  # e.g. "dispatch.create"
    key: str  # the idempotency key: transaction_id for creates, else event_id
    fields: dict  # the Trademax fields only (validated, normalized), JSON-able
    occurred_at: str  # ISO-8601 UTC, fixed width: YYYY-MM-DDTHH:MM:SS.ffffffZ
    event_id: str | None = None

    def to_message(self) -> dict:
        """The JSON object a task receives (and ``validate_event`` turns back into this event)."""
        message = copy.deepcopy(self.fields)
        if self.event_id is not None:
            message["event_id"] = self.event_id
        message["occurred_at"] = self.occurred_at
        return message

    def task_message(self) -> dict:
        """:func:`task_message` of this event."""
        return task_message(self.operation, self.to_message())


@dataclass(frozen=True)
class Delivery:
    """One destination's delivery of one event: the row that sends it (``row.destination``) and the
    validated event.  Each has its own ledger record (the destination's), retries and dead letters."""

    row: Operation
    event: DeliveryEvent

    @property
    def destination(self) -> str:
        return self.row.destination

    @property
    def operation(self) -> str:
        return self.event.operation

    @property
    def key(self) -> str:
        return self.event.key

    @property
    def fields(self) -> dict:
        return self.event.fields

    @property
    def occurred_at(self) -> str:
        return self.event.occurred_at

    @property
    def event_id(self) -> str | None:
        return self.event.event_id

    @property
    def ref(self) -> str:
        """``kaching/stock.adjust:E-1`` (``stock.adjust:E-1`` for the first destination): the retry
        schedule's entry, the dead letters' index, what people type."""
        return delivery_ref(self.row.destination, self.row.name, self.event.key)

    def to_message(self) -> dict:
        return self.event.to_message()

    def task_message(self) -> dict:
        """What re-delivers it: this row's task and the event (``kaching.stock.adjust``)."""
        return {"task": self.row.task_name, "event": self.event.to_message()}


class InvalidEvent(Exception):
    """The event does not match its operation's schema (or names no operation).  Never retried.

    ``messages`` maps a field path (``products.0.quantity``; ``_schema`` for the whole event;
    ``operation`` for an unknown operation) to its problems.  ``str()`` gives them in one line.
    """

    def __init__(self, operation: str, messages: dict[str, list[str]]):
        super().__init__(operation, messages)
        self.operation = operation
        self.messages = messages

    @property
    def summary(self) -> str:
        return summarize(self.operation, self.messages)

    def __str__(self) -> str:
        return self.summary

    def __reduce__(self):
        return type(self), (self.operation, self.messages)


_schemas: dict[tuple[int, str], Any] = {}  # (OS thread id, operation) → schema instance


def _schema(spec: Operation):
    """The operation's schema instance, built once per OS thread: building one costs ~3x the load itself
    (marshmallow resolves every nested field), and one instance per thread keeps load() off shared state.
    Keyed by the OS thread's id, not a ``threading.local``: under gevent (WORKER_POOL=gevent) a local is
    per green thread, and Celery's gevent pool runs every task in a new one — a schema built per event
    (~200 µs).  The green threads of one OS thread share an instance safely: load() waits on no I/O, so
    no other green thread runs in the middle of one."""
    key = (threading.get_native_id(), spec.name)
    schema = _schemas.get(key)
    if schema is None:
        schema = _schemas[key] = spec.schema()
    return schema


def validate_event(operation: str, payload: object) -> DeliveryEvent:
    """Validate ``payload`` as an event of ``operation``; raise :class:`InvalidEvent` if it is not one.

    Accepts any Python value: whatever is not a valid event (not JSON, not an object, a bad field)
    raises InvalidEvent and nothing else.
    """
    if isinstance(operation, str):
        operation = str.__str__(operation)  # an exact str: a subclass's __hash__/__eq__ never runs
    spec = OPERATIONS.get(operation) if isinstance(operation, str) else None
    if spec is None:
        shown = operation if isinstance(operation, str) else f"<{type(operation).__name__}>"
        raise InvalidEvent(shown, {"operation": [
            f"Unknown operation '{readable_path(shown)}'. Valid operations: {', '.join(OPERATIONS)}."]})
    data, problems = plain_json(payload)
    if problems:
        raise InvalidEvent(operation, flatten(problems))
    if not isinstance(data, dict):
        raise InvalidEvent(operation, {SCHEMA: [f"Must be a JSON object, not {_json_kind(data)}."]})
    try:
        loaded = _schema(spec).load(data)
    except ValidationError as error:
        raise InvalidEvent(operation, flatten(error.messages)) from None
    event_id = loaded.pop("event_id", None)
    occurred_at = loaded.pop("occurred_at")
    key = loaded["transaction_id"] if spec.key_field == "transaction_id" else event_id
    return DeliveryEvent(operation=operation, key=key, fields=loaded, occurred_at=occurred_at,
                         event_id=event_id)


def _json_kind(value: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")
