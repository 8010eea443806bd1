"""The SKU turn and the dispatch wait are turned on by flags on the operation row (``ordered_by_sku``,
``needs_dispatch_id``, ``wakes_dispatch_waiters``: worker.destinations.contract), never by an operation's
name: the same event takes its turn or wakes its waiters only where its row says so."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import fakeredis

from tasks.events import Delivery, validate_event
from worker.delivery import dispatch_wait, stock_turn
from worker.delivery.relay import build_relay
from worker.destinations.table import ROWS
from worker.settings import Settings

T0 = 1_714_550_000.0
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
COUNT = {"event_id": "E-1", "occurred_at": "2024-05-14T06:00:00Z", "artno": "A-1", "warehouse_id": "nw",
         "quantity": 5, "type": "absolute"}


def test_an_absolute_count_takes_its_turn_where_its_row_is_ordered_by_sku():
    count = validate_event("stock.adjust", COUNT)
    adjustment = validate_event("stock.adjust", {**COUNT, "type": "relative", "reason": 2})
    for name in ("trademax", "kaching", "stocktrim", "stock2shop"):
        row = ROWS[name, "stock.adjust"]
        assert row.ordered_by_sku and stock_turn.takes_turn(Delivery(row, count))
        assert not stock_turn.takes_turn(Delivery(row, adjustment))  # relative adjustments commute
        assert not stock_turn.takes_turn(Delivery(replace(row, ordered_by_sku=False), count))
    other = replace(ROWS["trademax", "stock.adjust"], name="stock.recount")  # any name, the flag decides
    assert stock_turn.takes_turn(Delivery(other, count))


def test_only_the_rows_flagged_so_wait_for_a_dispatch_or_wake_its_waiters():
    assert {name for (d, name), row in ROWS.items() if dispatch_wait.waits(row)} == \
        {"dispatch.update", "dispatch.publish", "dispatch.delete"}
    assert [name for (d, name), row in ROWS.items() if row.wakes_dispatch_waiters] == ["dispatch.create"]
    assert not dispatch_wait.waits(None)


def test_a_delivered_row_wakes_the_dispatch_waiters_only_when_flagged():
    relay = build_relay(Settings(), redis_client=fakeredis.FakeRedis(decode_responses=True), sends=False,
                        clock=lambda: T0)
    relay.dispatch_waiters.wait_for("TX-1", "dispatch.update:U-1")
    relay.schedule.schedule("dispatch.update:U-1", {"task": "trademax.dispatch.update", "event": {}}, T0 + 30)
    create = ROWS["trademax", "dispatch.create"]
    example = json.loads((EXAMPLES / "dispatch.create.json").read_text())
    event = validate_event("dispatch.create", {**example, "transaction_id": "TX-1"})

    dispatch_wait.wake_waiters(relay, Delivery(replace(create, wakes_dispatch_waiters=False), event))
    assert relay.schedule.get("dispatch.update:U-1").due_at == T0 + 30
    dispatch_wait.wake_waiters(relay, Delivery(create, event))
    assert relay.schedule.get("dispatch.update:U-1").due_at <= T0
