"""The stranded-event sweep: an event left with nothing to move it is scheduled again, and only then —
not while a message for it may still be queued (the queues' oldest publish times) or held by a worker
(the unacknowledged set)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.clock import Clock
from tasks.events import validate_event
from tasks.raw_messages import task_envelope
from worker.store.ledger import Ledger
from worker.store.retry_schedule import RetrySchedule
from worker.scheduling.stranded import StrandedSweep, message_of

EXAMPLE = json.loads((Path(__file__).resolve().parents[3] / "examples" / "receipt.create.json").read_text())


@pytest.fixture
def world(store_client):
    clock = Clock()
    ledger = Ledger(store_client, lease_seconds=60, delivered_retention_seconds=86400, clock=clock)
    schedule = RetrySchedule(store_client, clock=clock)
    sweep = StrandedSweep(ledger, schedule, broker=store_client, clock=clock, after_seconds=900)
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


def test_a_stranded_event_behind_more_scheduled_retries_than_one_page_is_found(world, store_client):
    clock, ledger, schedule, _ = world
    sweep = StrandedSweep(ledger, schedule, broker=store_client, clock=clock, after_seconds=900,
                          batch=3)
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


def test_a_delivery_waiting_in_its_batch_is_not_stranded(world, store_client):
    """A count pending in a bulk destination's batch (worker.flow.batches) has the flusher to move it,
    however long it waits (a paused destination): the sweep leaves it alone."""
    clock, ledger, schedule, _ = world
    count = validate_event("stock.adjust", {"event_id": "C-1", "occurred_at": "2024-05-01T10:00:00Z",
                                            "artno": "A-1", "warehouse_id": "nw", "quantity": 3,
                                            "type": "absolute"})
    ledger.sibling("wms:kaching").accept(count)
    clock.now += 1000
    in_batch = {("kaching", "kaching/stock.adjust:C-1")}
    sweep = StrandedSweep(ledger, schedule, broker=store_client, clock=clock, after_seconds=900,
                          waits_in_batch=lambda destination, ref: (destination, ref) in in_batch)
    assert sweep.sweep() == 0
    in_batch.clear()
    assert sweep.sweep() == 1


QUEUE = "trademax.receipt"  # receipt.create's queue


def queued(store_client, n: int, published_at: float | None) -> str:
    """Push receipt TX-n's message onto its queue as a publisher does (its publish time in a header)."""
    message = task_envelope("trademax.receipt.create", event(n).to_message(), QUEUE,
                            published_at=published_at)
    store_client.lpush(QUEUE, message)
    return message


def test_an_event_whose_message_may_still_be_queued_is_left_alone(world, store_client):
    """A long queue (a held destination's backlog): the record is old, but its message was published
    after the oldest message still queued — it is waiting, not lost.  Once the queue has moved past its
    publish time, it is known lost and sent again."""
    clock, ledger, schedule, sweep = world
    queued(store_client, 0, clock.now - 10)   # the oldest message still queued
    ledger.accept(event(1))                   # TX-1's own message is behind it ...
    queued(store_client, 1, clock.now)
    clock.now += 901
    assert sweep.sweep() == 0 and sweep.left_queued == 1
    store_client.rpop(QUEUE)                  # the queue moves on: TX-0 and then TX-1's message taken ...
    store_client.rpop(QUEUE)                  # ... and TX-1's lost by a worker that died before its unacked
    queued(store_client, 2, clock.now)        # a newer message is the oldest now
    assert sweep.sweep() == 1
    assert schedule.get("receipt.create:TX-1") is not None


def test_a_queue_whose_oldest_messages_say_nothing_sends_nothing_again(world, store_client):
    """Messages without a publish time (a WMS's own) at the head of the queue: nothing can be said about
    what is behind them, so nothing is sent again until they have gone."""
    clock, ledger, schedule, sweep = world
    ledger.accept(event(1))
    queued(store_client, 0, None)
    clock.now += 901
    assert sweep.sweep() == 0
    store_client.delete(QUEUE)
    assert sweep.sweep() == 1


def test_an_event_whose_message_a_worker_holds_is_left_alone(world, store_client):
    """Taken from the queue but not acknowledged (prefetched, or a dead worker's, which Celery puts back):
    its message is in the unacked set."""
    clock, ledger, schedule, sweep = world
    ledger.accept(event(1))
    message = queued(store_client, 1, clock.now)
    store_client.rpop(QUEUE)
    store_client.hset("unacked", "tag-1", json.dumps([json.loads(message), "", QUEUE]))
    store_client.hset("unacked", "tag-2", "not json")  # unreadable: left out, no harm
    clock.now += 901
    assert sweep.sweep() == 0
    store_client.hdel("unacked", "tag-1")
    assert sweep.sweep() == 1


def test_an_event_sent_again_is_not_sent_again_while_its_copy_may_be_queued(world, store_client):
    """Its copy waits in a long queue: a copy every sweep would only lengthen the queue (the chaos run once
    grew one to 33,000 copies).  The retry's publish time (the schedule notes it) counts, not the record's
    age."""
    clock, ledger, schedule, sweep = world
    ledger.accept(event(1))
    clock.now += 901
    assert sweep.sweep() == 1
    schedule.take_due(clock.now)  # the scheduler published it: it waits in the queue, behind another
    queued(store_client, 0, clock.now - 1)
    queued(store_client, 1, clock.now)
    schedule.confirm("receipt.create:TX-1")
    for _ in range(30):           # half an hour of sweeps while the queue stands still
        clock.now += 60
        assert sweep.sweep() == 0
    store_client.delete(QUEUE)    # the queue drained, and the copy was lost again
    assert sweep.sweep() == 1


def test_the_publish_times_of_retries_that_left_their_queues_are_forgotten(world, store_client):
    clock, ledger, schedule, sweep = world
    schedule.schedule("receipt.create:TX-1", event(1).task_message(), clock.now)
    schedule.take_due(clock.now)
    schedule.confirm("receipt.create:TX-1")
    assert schedule.published_at(["receipt.create:TX-1", "receipt.create:TX-2"]) == [clock.now, None]
    queued(store_client, 0, clock.now)   # still queued at the head: kept
    sweep.sweep()
    assert schedule.published_at(["receipt.create:TX-1"]) == [clock.now]
    store_client.delete(QUEUE)
    clock.now += 60
    sweep.sweep()
    assert schedule.published_at(["receipt.create:TX-1"]) == [None]


def test_our_publishers_stamp_the_publish_time_the_sweep_reads(shared_redis_server):
    """The scheduler's, the fan-out's and support's publisher (Celery onto the real store) and the door's
    envelope carry ``published_at``; the oldest queued one is what the sweep reads."""
    from celery import Celery

    from tasks.publishing import celery_publisher
    from worker.store.broker_queues import oldest_published

    client = shared_redis_server.client()
    client.flushdb()
    app = Celery("stamp-test", broker=shared_redis_server.url, set_as_current=False)
    try:
        celery_publisher(app, clock=lambda: 1000.25)(event(1).task_message())
    finally:
        app.close()
    queued(client, 2, 2000.0)
    assert client.llen(QUEUE) == 2
    assert oldest_published(client, [QUEUE, "trademax.dispatch"], now=3000.0) == {
        QUEUE: 1000.25, "trademax.dispatch": 3000.0}
