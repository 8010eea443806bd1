"""Every destination's operations in one table, and what is built from it: the Celery queues, the task
routes, the task modules Celery loads, and task name → operation.

Pure: importing it imports the rows and the WMS schemas only (no Celery, Redis or HTTP library)."""
from __future__ import annotations

from worker.destinations.contract import Operation
from worker.destinations.trademax import operations as trademax

DESTINATION_TABLES: dict[str, tuple[Operation, ...]] = {"trademax": trademax.OPERATIONS}


def _by_name() -> dict[str, Operation]:
    rows: dict[str, Operation] = {}
    for destination, table in DESTINATION_TABLES.items():
        for row in table:
            if row.destination != destination:
                raise ValueError(f"{row.name}: row of {row.destination!r} in the {destination!r} table")
            if row.name in rows:
                raise ValueError(f"operation {row.name!r} is in two tables")
            rows[row.name] = row
    return rows


OPERATIONS: dict[str, Operation] = _by_name()
TASKS: dict[str, Operation] = {row.task_name: row for row in OPERATIONS.values()}
QUEUES: tuple[str, ...] = tuple(dict.fromkeys(row.queue for row in OPERATIONS.values()))
ROUTES: dict[str, dict[str, str]] = {row.task_name: {"queue": row.queue} for row in OPERATIONS.values()}
TASK_MODULES: tuple[str, ...] = tuple(dict.fromkeys(row.task_module for row in OPERATIONS.values()))


def queue_for(task_name: str) -> str:
    """The queue a task is routed to (the scheduler publishes retries with it)."""
    row = TASKS.get(task_name)
    if row is None:
        raise KeyError(f"no queue for task {task_name!r}")
    return row.queue
