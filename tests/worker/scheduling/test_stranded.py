"""The stranded-event sweep: an event left with nothing to move it is scheduled again, and only then."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.clock import Clock
from tasks.events import validate_event
from worker.store.ledger import Ledger
from worker.store.retry_schedule import RetrySchedule
from worker.scheduling.stranded import StrandedSweep, message_of

EXAMPLE = json.loads((Path(__file__).resolve().parents[3] / "examples" / "receipt.create.json").read_text())


@pytest.fixture
def world(store_client):
    clock = Clock()
    ledger = Ledger(store_client, lease_seconds=60, delivered_retention_seconds=86400, clock=clock)
    schedule = RetrySchedule(store_client, clock=clock)
    sweep = StrandedSweep(ledger, schedule, clock=clock, after_seconds=900)
    return clock, ledger, schedule, sweep


def event(n: int):
    return validate_event("receipt.create", {**EXAMPLE, "transaction_id": f"TX-{n}"})


def test_an_accepted_event_whose_message_was_lost_is_scheduled_again_after_the_threshold(world):
    clock, ledger, schedule, sweep = world
    ledger.accept(event(1))
    clock.now += 899
    assert sweep.sweep() == 0
    clock.now += 2
    assert sweep.sweep() == 1
    entry = schedule.get("receipt.create:TX-1")
    assert entry is not None
    again = message_of(ledger.get("receipt.create", "TX-1"))
    assert again["task"] == "trademax.receipt.create"
    assert validate_event("receipt.create", again["event"]) == event(1)
    assert sweep.sweep() == 0  # the entry now moves it


def test_a_live_claim_and_a_scheduled_retry_are_left_alone(world):
    clock, ledger, schedule, sweep = world
    e1, e2 = event(1), event(2)
    for e in (e1, e2):
        ledger.accept(e)
    claim = ledger.claim("receipt.create", "TX-1", ledger.get("receipt.create", "TX-1").fingerprint, "w1")
    assert claim.claimed
    ledger.transition("receipt.create", "TX-2", "retrying", reason="503", expected_states=("accepted",))
    schedule.schedule("receipt.create:TX-2", {"task": "trademax.receipt.create", "event": e2.to_message()},
                      clock.now + 5000)
    clock.now += 30          # the lease (60 s) is still live, but sweep threshold is not reached either
    assert sweep.sweep() == 0
    clock.now += 2000        # lease expired, threshold passed: the claim's message is gone too
    assert sweep.sweep() == 1
    assert schedule.get("receipt.create:TX-1") is not None


def test_a_stranded_event_behind_more_scheduled_retries_than_one_page_is_found(world):
    clock, ledger, schedule, _ = world
    sweep = StrandedSweep(ledger, schedule, clock=clock, after_seconds=900, batch=3)
    for n in range(8):  # seven scheduled retries (after an outage), then one whose entry was lost
        e = event(n)
        ledger.accept(e)
        ledger.transition("receipt.create", f"TX-{n}", "retrying", reason="503",
                          expected_states=("accepted",))
        if n < 7:
            schedule.schedule(f"receipt.create:TX-{n}", e.task_message(), clock.now + 3600)
        clock.now += 1
    clock.now += 1000
    assert sweep.sweep() == 1
    assert schedule.get("receipt.create:TX-7") is not None


def test_a_delivery_waiting_in_its_batch_is_not_stranded(world):
    """A count pending in a bulk destination's batch (worker.flow.batches) has the flusher to move it,
    however long it waits (a paused destination): the sweep leaves it alone."""
    clock, ledger, schedule, _ = world
    count = validate_event("stock.adjust", {"event_id": "C-1", "occurred_at": "2024-05-01T10:00:00Z",
                                            "artno": "A-1", "warehouse_id": "nw", "quantity": 3,
                                            "type": "absolute"})
    ledger.sibling("wms:kaching").accept(count)
    clock.now += 1000
    in_batch = {("kaching", "kaching/stock.adjust:C-1")}
    sweep = StrandedSweep(ledger, schedule, clock=clock, after_seconds=900,
                          waits_in_batch=lambda destination, ref: (destination, ref) in in_batch)
    assert sweep.sweep() == 0
    in_batch.clear()
    assert sweep.sweep() == 1


def test_an_event_sent_again_is_not_sent_again_before_the_threshold_passes_again(world):
    """Its copy may be waiting in a long queue: a copy every sweep would only lengthen the queue."""
    clock, ledger, schedule, sweep = world
    ledger.accept(event(1))
    clock.now += 901
    assert sweep.sweep() == 1
    schedule.take_due(clock.now)  # the scheduler published it: it waits in the queue now
    schedule.confirm("receipt.create:TX-1")
    clock.now += 60
    assert sweep.sweep() == 0
    clock.now += 841
    assert sweep.sweep() == 1
