"""WMS events as wms-relay accepts them: the operation table, validation and the validated event.

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
from typing import Callable

from marshmallow import ValidationError

from tasks.schemas import dispatch, inventory, orders, receipt, stock
from tasks.schemas.common import EventSchema
from tasks.schemas.json_value import plain_json
from tasks.schemas.messages import SCHEMA, flatten, readable_path, summarize
from tasks.summary import TASK_PREFIX


def task_message(operation: str, event_message: dict) -> dict:
    """What a publisher puts on the queue for an event: the task to run and the one JSON object it takes
    (``wms-relay enqueue``, the retry schedule, the stranded-event sweep and support actions all use it)."""
    return {"task": TASK_PREFIX + operation, "event": event_message}


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

    def describe(self) -> str:
        """A short, secret-free summary for Flower and logs: operation, key and what it is about."""
        about = [f"{name}={self.fields[name]}" for name in ("order_no", "artno") if name in self.fields]
        return " ".join([self.operation, self.key, *about])


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


# --- Resending after an unknown outcome -------------------------------------------------------------
# A read timeout leaves it unknown whether Trademax applied the request.  These say whether sending it
# again is harmless; where it is not, the pipeline parks the event as `uncertain` for a person.

def _deduplicated_by_transaction_id(event: DeliveryEvent) -> bool:
    # Trademax answers 452 to a repeated transaction_id, which the pipeline counts as delivered.
    return True


def _same_state_again(event: DeliveryEvent) -> bool:
    # The request states a target (package data, line locks, dispatch header/package values, draft=false):
    # applying it twice leaves Trademax as applying it once.  A dispatch update names its packages by
    # package_id, so a resent package replaces itself rather than adding a second one.  Publishing and
    # deleting (target: the dispatch gone) are one-way: Trademax refuses the second time, and the pipeline
    # then reads the dispatch back (worker.destinations.trademax.read_back) to tell a refusal from a change that already landed.
    return True


def _absolute_stock_value(event: DeliveryEvent) -> bool:
    # "absolute" sets the quantity (idempotent); "relative" adds to it, and twice is double.
    return event.fields.get("type") == stock.ABSOLUTE


def _not_safe(event: DeliveryEvent) -> bool:
    # vendor_dispatch.create has no transaction_id, so a repeat would be a second dispatch.
    return False


@dataclass(frozen=True)
class OperationSpec:
    """Everything wms-relay knows about one operation, in one row of :data:`OPERATIONS`."""

    name: str
    schema: type[EventSchema]
    key_field: str  # "transaction_id" (Trademax deduplicates it) or "event_id"
    safe_to_resend_on_unknown_outcome: Callable[[DeliveryEvent], bool]
    method: str  # the Trademax request (worker.destinations.trademax.calls builds it; these two say what it is)
    path_template: str  # relative to TRADEMAX_BASE_URL; {dispatch_id} is resolved by the worker
    queue: str  # the Celery queue; one per Trademax resource

    @property
    def task_name(self) -> str:
        return TASK_PREFIX + self.name

    def safe_to_resend(self, event: DeliveryEvent) -> bool:
        """Short for ``safe_to_resend_on_unknown_outcome(event)``."""
        return self.safe_to_resend_on_unknown_outcome(event)


def _spec(name, schema, key_field, resend, method, path, resource) -> tuple[str, OperationSpec]:
    return name, OperationSpec(name, schema, key_field, resend, method, path, TASK_PREFIX + resource)


OPERATIONS: dict[str, OperationSpec] = dict([
    _spec("dispatch.create", dispatch.DispatchCreateSchema, "transaction_id", _deduplicated_by_transaction_id,
          "POST", "dispatch", "dispatch"),
    _spec("dispatch.update", dispatch.DispatchUpdateSchema, "event_id", _same_state_again,
          "PATCH", "dispatch/{dispatch_id}", "dispatch"),
    _spec("dispatch.publish", dispatch.DispatchPublishSchema, "event_id", _same_state_again,
          "PATCH", "dispatch/{dispatch_id}", "dispatch"),
    _spec("dispatch.delete", dispatch.DispatchDeleteSchema, "event_id", _same_state_again,
          "DELETE", "dispatch/{dispatch_id}", "dispatch"),
    _spec("vendor_dispatch.create", dispatch.VendorDispatchCreateSchema, "event_id", _not_safe,
          "POST", "vendor/dispatch", "dispatch"),
    _spec("receipt.create", receipt.ReceiptCreateSchema, "transaction_id", _deduplicated_by_transaction_id,
          "POST", "receipt", "receipt"),
    _spec("stock.adjust", stock.StockAdjustmentSchema, "event_id", _absolute_stock_value,
          "PATCH", "inventory/{artno}/stock-adjustment", "stock"),
    _spec("inventory.update_packages", inventory.PackageDataSchema, "event_id", _same_state_again,
          "PATCH", "inventory/{artno}", "inventory"),
    _spec("order.lock_lines", orders.LineLocksSchema, "event_id", _same_state_again,
          "PATCH", "order/outgoing/{order_no}", "orders"),
])


def safe_to_resend_on_unknown_outcome(event: DeliveryEvent) -> bool:
    """Whether ``event`` may be sent again when a read timeout left its first outcome unknown."""
    return OPERATIONS[event.operation].safe_to_resend_on_unknown_outcome(event)


_schemas = threading.local()


def _schema(spec: "OperationSpec"):
    """The operation's schema instance, built once per thread: building one costs ~3x the load itself
    (marshmallow resolves every nested field), and one instance per thread keeps load() off shared state."""
    cache = _schemas.__dict__.setdefault("by_operation", {})
    schema = cache.get(spec.name)
    if schema is None:
        schema = cache[spec.name] = spec.schema()
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
