"""Every destination and its operations in one table, and what is built from it: the Celery queues, the
task routes, the task modules Celery loads, task name → row, and the routing of one event to the
destinations that take it.

The WMS publishes the tasks of the first destination (``trademax.<operation>``, the contract that predates
the others): its rows are the WMS operations (:data:`OPERATIONS`, what ``tasks.events`` validates against).
When the worker takes such an event in, it *fans out*: every other destination that is on and takes the
event (:func:`routes`) gets its own delivery — its own ledger record, task message and queue — so each
destination's deliveries are claimed, retried, parked and shown on their own (docs/architecture.md, "One
event, several destinations").

Pure: importing it imports the rows and the WMS schemas only (no Celery, Redis or HTTP library)."""
from __future__ import annotations

import importlib
from typing import Any, Iterable

from worker.destinations.contract import Destination, Operation
from worker.destinations.declaration import Declaration, Declarations, declarations_of
from worker.destinations.declared import DECLARATIONS


def destination_table(destinations: Iterable[Destination]) -> dict[str, Destination]:
    """name -> destination, in order (the first is the one the WMS publishes to), after checking them: no
    two share a name, a ref prefix or a store namespace (worker.destinations.declaration.declarations_of:
    nor a variable), and every row reads its operation as the WMS contract does.  A ValueError names what
    is wrong.  The table below is built with it; a test builds its own (a fifth destination beside the
    four) and hands it to what takes a table (``configured``, FlowControls, ``wms-relay check``)."""
    table = {d.name: d for d in destinations}
    declarations_of(d.declaration for d in table.values())
    prefixes = [d.ref_prefix for d in table.values()]
    namespaces = [d.namespace for d in table.values()]
    if len(table) != len(prefixes) or len(set(prefixes)) != len(prefixes) or \
            len(set(namespaces)) != len(namespaces):
        raise ValueError("two destinations share a name, a ref prefix or a store namespace")
    wms_destination = next(iter(table.values()))
    for destination in table.values():
        for row in destination.operations:
            wms_row = wms_destination.row(row.name)
            if wms_row is None:
                raise ValueError(f"{destination.name} takes {row.name!r}, which the WMS does not send")
            if (row.schema, row.key_field) != (wms_row.schema, wms_row.key_field):
                raise ValueError(f"{destination.name}'s {row.name!r} row reads the event differently "
                                 "from the WMS contract (schema or key field)")
    return table


def declared_destination(declaration: Declaration) -> Destination:
    """The destination ``declaration`` declares the settings of: the ``DESTINATION`` of the ``operations``
    module beside its ``declaration`` module (``worker/destinations/<name>/``).  An ImportError naming the
    module it looked for, or a ValueError when that module's destination is not the declared one."""
    module_name = f"worker.destinations.{declaration.name}.operations"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is None or not module_name.startswith(error.name):
            raise  # the module is there: something it imports is not
        raise ImportError(f"{declaration.name} is declared (worker/destinations/declared.py) but there is no "
                          f"{module_name} with its DESTINATION") from error
    found = getattr(module, "DESTINATION", None)
    if not isinstance(found, Destination) or found.declaration is not declaration:
        raise ValueError(f"{module_name}.DESTINATION is not the destination {declaration.name} declares "
                         "(it is Destination(declaration=DECLARATION, ...), DECLARATION from the package's "
                         "declaration module)")
    return found


def destinations_declared(declarations: Declarations) -> dict[str, Destination]:
    """The table of the destinations ``declarations`` declare, in their order (see destination_table)."""
    return destination_table(declared_destination(declaration) for declaration in declarations)


# One list makes the table: worker.destinations.declared's DECLARATIONS (what worker.settings reads, below
# the destinations' code).  The first is the one the WMS publishes to (its task names are the WMS contract).
DESTINATIONS: dict[str, Destination] = destinations_declared(DECLARATIONS)
# The destination whose tasks the WMS publishes (Trademax): its rows are the WMS operations, and every
# event comes in as its delivery before fanning out.  (Not ``admission.Intake``: one event at the door.)
WMS_DESTINATION: Destination = next(iter(DESTINATIONS.values()))

OPERATIONS: dict[str, Operation] = {row.name: row for row in WMS_DESTINATION.operations}
ROWS: dict[tuple[str, str], Operation] = {
    (d.name, row.name): row for d in DESTINATIONS.values() for row in d.operations}
TASKS: dict[str, Operation] = {row.task_name: row for row in ROWS.values()}
QUEUES: tuple[str, ...] = tuple(dict.fromkeys(row.queue for row in ROWS.values()))
ROUTES: dict[str, dict[str, str]] = {row.task_name: {"queue": row.queue} for row in ROWS.values()}
TASK_MODULES: tuple[str, ...] = tuple(dict.fromkeys(row.task_module for row in ROWS.values()))


def queue_for(task_name: str) -> str:
    """The queue a task is routed to (the scheduler publishes retries with it)."""
    row = TASKS.get(task_name)
    if row is None:
        raise KeyError(f"no queue for task {task_name!r}")
    return row.queue


def destination(name: str) -> Destination:
    """The destination called ``name``; a KeyError naming the known ones otherwise."""
    found = DESTINATIONS.get(name)
    if found is None:
        raise KeyError(f"no destination {name!r} (known: {', '.join(DESTINATIONS)})")
    return found


def configured(settings: Any, table: dict[str, Destination] | None = None) -> tuple[Destination, ...]:
    """The destinations of ``table`` (default: :data:`DESTINATIONS`) that are on with ``settings``, the
    first one always among them."""
    table = DESTINATIONS if table is None else table
    wms_destination = next(iter(table.values()))
    return tuple(d for d in table.values() if d is wms_destination or d.is_on(settings))


def routes(event: Any, settings: Any) -> tuple[Operation, ...]:
    """The rows one valid WMS event is delivered by: the first destination's, then every other
    destination that is on, has a row for the operation and takes the event (its routing rule)."""
    found = [OPERATIONS[event.operation]]
    for other in configured(settings):
        if other is WMS_DESTINATION:
            continue
        row = other.row(event.operation)
        if row is not None and other.takes(event, settings):
            found.append(row)
    return tuple(found)


def delivery_ref(destination_name: str, operation: str, key: str) -> str:
    """The ref of ``destination_name``'s delivery of the event ``operation:key`` (see
    Destination.delivery_ref); a KeyError naming the known destinations for any other name.  The store is
    handed this function (``worker.store.dead_letters.DeadLetters``): it knows no destination itself."""
    return destination(destination_name).delivery_ref(operation, key)


def split_delivery_ref(ref: str) -> tuple[Destination, str, str] | None:
    """``kaching/stock.adjust:E-1`` → (ka-ching, "stock.adjust", "E-1"); ``stock.adjust:E-1`` is the first
    destination's (``trademax/stock.adjust:E-1`` is accepted too).  None for anything else (a letter id)."""
    head, colon, key = ref.partition(":")
    if not (colon and head and key):
        return None
    name, slash, operation = head.rpartition("/")
    if not slash:
        return WMS_DESTINATION, head, key
    found = DESTINATIONS.get(name)
    return (found, operation, key) if found is not None and operation else None
