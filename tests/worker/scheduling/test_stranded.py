"""The stranded-event sweep: an event left with nothing to move it is scheduled again, and only then —
not while a message for it may still be queued (the queues' oldest publish times) or held by a worker
(the unacknowledged set)."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.fixtures.clock import Clock
from tasks.events import validate_event
from tasks.raw_messages import task_envelope
from worker.destinations.table import DESTINATIONS
from worker.flow.batches import LEVEL, BatchItem, Batches
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


def kaching_count(n: int):
    return validate_event("stock.adjust", {"event_id": f"C-{n}", "occurred_at": "2024-05-01T10:00:00Z",
                                           "artno": f"A-{n}", "warehouse_id": "nw", "quantity": 3,
                                           "type": "absolute"})


class CountedBatches(Batches):
    """ka-ching's real batches, counting the sweep's reads of the batch in flight."""

    reads = 0

    def carried(self):
        self.reads += 1
        return super().carried()


@pytest.fixture
def kaching(world, store_client):
    """ka-ching's ledger and batches, a sweep that knows them, and ``add(n)``: count C-n accepted and
    pending in its batches."""
    clock, ledger, schedule, _ = world
    ledger = ledger.sibling(DESTINATIONS["kaching"].namespace)
    batches = CountedBatches(store_client, DESTINATIONS["kaching"].namespace, clock=clock)
    sweep = StrandedSweep(world[1], schedule, broker=store_client, clock=clock, after_seconds=900,
                          batches=lambda destination: batches if destination == "kaching" else None)

    def add(n: int) -> BatchItem:
        count = kaching_count(n)
        accepted = ledger.accept(count)
        item = BatchItem(ref=f"kaching/stock.adjust:C-{n}", kind=LEVEL, operation="stock.adjust",
                         key=f"C-{n}", fingerprint=accepted.fingerprint, message=count.to_message(),
                         enqueued_at=clock.now)
        assert batches.add(item).status == "added"
        return item

    return SimpleNamespace(clock=clock, ledger=ledger, batches=batches, sweep=sweep, schedule=schedule,
                           add=add)


def test_a_delivery_waiting_in_its_batch_is_not_stranded(kaching):
    """A count pending in a bulk destination's batch (worker.flow.batches) has the flusher to move it,
    however long it waits (a paused destination): the sweep leaves it alone."""
    kaching.add(1)
    kaching.clock.now += 1000
    assert kaching.sweep.sweep() == 0
    taken = kaching.batches.take("w1", max_items=10, lease_seconds=60, batch_seconds=0).batch
    kaching.batches.settle(taken)  # settled without it (a lost write): nothing holds it now
    assert kaching.sweep.sweep() == 1
    assert kaching.schedule.get("kaching/stock.adjust:C-1") is not None


def test_counts_in_the_batch_in_flight_are_left_alone_while_its_lease_lives(kaching):
    """Regression (issue 21, the chaos run's 2% of spare copies): a worker killed mid-batch leaves its
    counts ``sending`` under the batch's claim; the claim's lease (60 s here) runs out long before the
    batch's (2,000 s here).  Nothing is lost — the batch's flusher, or the next take of the orphaned
    batch, moves them — so the sweep makes no copy (each would find its count claimed and do nothing),
    and reads the batch in flight once per sweep, not per count.  A count of the same destination that
    no batch holds is still swept."""
    items = [kaching.add(n) for n in range(3)]
    kaching.ledger.accept(kaching_count(9))  # accepted, never pending: its message lost
    taken = kaching.batches.take("w1", max_items=10, lease_seconds=2000, batch_seconds=0).batch
    assert {item.ref for item in taken.items} == {item.ref for item in items}
    for item in items[:2]:  # the third was taken but not claimed yet when the worker died
        assert kaching.ledger.claim("stock.adjust", item.key, item.fingerprint, taken.owner).claimed
    kaching.clock.now += 1000  # the claims' leases ran out; the batch's has not
    assert kaching.ledger.get("stock.adjust", "C-0").lease_expires_at < kaching.clock.now
    assert kaching.sweep.sweep() == 1
    assert kaching.schedule.get("kaching/stock.adjust:C-9") is not None
    assert [kaching.schedule.get(item.ref) for item in items] == [None, None, None]
    assert kaching.batches.reads == 1
    kaching.clock.now += 60
    assert kaching.sweep.sweep() == 0 and kaching.batches.reads == 2


def test_counts_of_a_batch_whose_lease_ran_out_wait_for_its_next_take_then_are_swept(kaching):
    """Once the batch's lease has run out, a flusher takes the orphaned batch at its next look: its
    counts are left alone for the sweep's threshold after the lease (900 s here) — taken again, they are
    under a live lease once more.  A batch still in flight that long after its lease is one nothing
    takes (no flusher runs for the destination): its counts are swept, nothing is lost."""
    items = [kaching.add(n) for n in range(2)]
    taken = kaching.batches.take("w1", max_items=10, lease_seconds=60, batch_seconds=0).batch
    for item in items:
        assert kaching.ledger.claim("stock.adjust", item.key, item.fingerprint, taken.owner).claimed
    kaching.clock.now += 950  # the batch's lease ran out 890 s ago
    assert kaching.sweep.sweep() == 0
    orphan = kaching.batches.take("w2", max_items=10, lease_seconds=60, batch_seconds=0)
    assert orphan.status == "orphan"  # taken again: a live lease again
    kaching.clock.now += 30
    assert kaching.sweep.sweep() == 0
    kaching.clock.now += 60 + 901  # its flusher died too, and nothing took it since
    assert kaching.sweep.sweep() == 2
    assert all(kaching.schedule.get(item.ref) is not None for item in items)


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


def test_a_raw_message_that_is_not_utf8_does_not_blind_the_sweep(shared_redis_server):
    """Malformed bytes on a queue and in the unacked set (the chaos run's poison): the sweep's reads take
    them as bytes whatever the client decodes — on the scheduler's client (the real store, decoding) it
    used to fail on every sweep while they sat among a queue's oldest, and the scheduler's tick with it.
    Such a message says nothing of its publish time."""
    store_client = shared_redis_server.client(decode_responses=True)
    store_client.flushdb()
    clock = Clock()
    ledger = Ledger(store_client, lease_seconds=60, delivered_retention_seconds=86400, clock=clock)
    schedule = RetrySchedule(store_client, clock=clock)
    sweep = StrandedSweep(ledger, schedule, broker=store_client, clock=clock, after_seconds=900)
    ledger.accept(event(1))
    store_client.lpush(QUEUE, b"\xff\xfe not a message")
    store_client.hset("unacked", "tag-9", b"\xff not json either")
    clock.now += 901
    assert sweep.sweep() == 0 and sweep.left_queued == 1  # nothing known of what is behind it
    queued(store_client, 2, clock.now)  # a stamped message behind: TX-1's has certainly left
    assert sweep.sweep() == 1
    assert schedule.get("receipt.create:TX-1") is not None


class RestoreBetweenRoundTrips:
    """The broker's client (the seam), with kombu's restore of a killed worker's message — one transaction
    moving it from the unacked set back onto its queue — landing right after the sweep's first round trip."""

    def __init__(self, client, restore) -> None:
        self._client, self._restore = client, restore

    def pipeline(self, *args, **kwargs):
        pipe = self._client.pipeline(*args, **kwargs)
        execute = pipe.execute

        def execute_then_restore(*a, **k):
            try:
                return execute(*a, **k)
            finally:
                restore, self._restore = self._restore, lambda: None
                restore()

        pipe.execute = execute_then_restore
        return pipe

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_a_message_restored_while_the_sweep_reads_is_not_taken_for_lost(world, store_client):
    """Regression (``make chaos``, after the batches' fix: 4 copies): the sweep read the queues, then the
    unacked set; a killed worker's messages restored in between were in neither.  It reads both in one
    transaction now."""
    clock, ledger, schedule, _ = world
    ledger.accept(event(1))
    message = queued(store_client, 1, clock.now)
    store_client.rpop(QUEUE)  # a worker took it, and was killed
    held = json.dumps([json.loads(message), "", QUEUE])
    store_client.hset("unacked", "tag-1", held)

    def restore():
        pipe = store_client.pipeline(transaction=True)
        pipe.hdel("unacked", "tag-1").rpush(QUEUE, message)
        pipe.execute()

    broker = RestoreBetweenRoundTrips(store_client, restore)
    sweep = StrandedSweep(ledger, schedule, broker=broker, clock=clock, after_seconds=900)
    clock.now += 901
    assert sweep.sweep() == 0
    assert store_client.llen(QUEUE) == 1 and not store_client.hlen("unacked")  # the restore happened
    assert schedule.get("receipt.create:TX-1") is None
    assert sweep.sweep() == 0 and sweep.left_queued == 1  # its message is queued again


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
    from worker.store.broker_queues import broker_snapshot

    client = shared_redis_server.client()
    client.flushdb()
    app = Celery("stamp-test", broker=shared_redis_server.url, set_as_current=False)
    try:
        celery_publisher(app, clock=lambda: 1000.25)(event(1).task_message())
    finally:
        app.close()
    queued(client, 2, 2000.0)
    assert client.llen(QUEUE) == 2
    assert broker_snapshot(client, [QUEUE, "trademax.dispatch"], now=3000.0)[0] == {
        QUEUE: 1000.25, "trademax.dispatch": 3000.0}
