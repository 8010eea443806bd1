"""Each row of Trademax's operation table sends the request Trademax documents for it: its sender calls
exactly one client method, and that call's method and path (``calls.CALLS``) are the documented ones; the
table and what is built from it (tasks, queues, routes, task modules) agree."""
from __future__ import annotations

import importlib

import pytest

from worker.destinations import table
from worker.destinations.trademax.calls import CALLS
from worker.destinations.trademax.operations import OPERATIONS


class RecordingClient:
    """Answers every client method by noting its name."""

    def __init__(self) -> None:
        self.called: list[str] = []

    def __getattr__(self, name: str):
        if name not in CALLS:
            raise AttributeError(name)

        def call(*args, **kwargs):
            self.called.append(name)
        return call


DOCUMENTED = {  # operation -> (method, path) from the resource pages of Trademax's API documentation
    "dispatch.create": ("POST", "dispatch"),
    "dispatch.update": ("PATCH", "dispatch/{dispatch_id}"),
    "dispatch.publish": ("PATCH", "dispatch/{dispatch_id}"),
    "dispatch.delete": ("DELETE", "dispatch/{dispatch_id}"),
    "vendor_dispatch.create": ("POST", "vendor/dispatch"),
    "receipt.create": ("POST", "receipt"),
    "stock.adjust": ("PATCH", "inventory/{artno}/stock-adjustment"),
    "inventory.update_packages": ("PATCH", "inventory/{artno}"),
    "order.lock_lines": ("PATCH", "order/outgoing/{order_no}"),
}


def test_every_row_is_documented():
    assert sorted(row.name for row in OPERATIONS) == sorted(DOCUMENTED)


@pytest.mark.parametrize("row", OPERATIONS, ids=lambda row: row.name)
def test_the_documented_request_is_the_one_sent(row):
    client = RecordingClient()
    row.send(client, {"artno": "123", "order_no": "FO1"}, 4711)
    (called,) = client.called
    assert (CALLS[called].method, CALLS[called].path) == DOCUMENTED[row.name], called


@pytest.mark.parametrize("row", OPERATIONS, ids=lambda row: row.name)
def test_routes_queues_and_task_modules_come_from_the_row(row):
    assert table.OPERATIONS[row.name] is row and table.TASKS[row.task_name] is row
    assert table.queue_for(row.task_name) == row.queue and row.queue in table.QUEUES
    assert table.ROUTES[row.task_name] == {"queue": row.queue}
    module = importlib.import_module(row.task_module)
    assert module.TASKS[row.task_name].name == row.task_name


def test_an_unknown_task_has_no_queue():
    with pytest.raises(KeyError):
        table.queue_for("trademax.nothing.here")
