"""The scheduler's tick: due entries are published once and confirmed; a failed publish is put back;
the stranded-event sweep runs once per interval."""
from __future__ import annotations

from tests.fixtures.clock import T0, Clock
from worker.store.retry_schedule import RetrySchedule
from worker.scheduling.scheduler import PUT_BACK_DELAY_SECONDS, Scheduler


def message(n: int) -> dict:
    return {"task": "trademax.receipt.create", "event": {"transaction_id": f"TX-{n}"}}


def test_due_entries_are_published_once_and_later_ones_wait(store_client):
    clock = Clock()
    schedule = RetrySchedule(store_client, clock=clock)
    published = []
    scheduler = Scheduler(schedule, published.append, clock=clock)
    schedule.schedule("receipt.create:TX-1", message(1), clock.now - 1)
    schedule.schedule("receipt.create:TX-2", message(2), clock.now + 10)
    assert scheduler.tick() == 1
    assert scheduler.tick() == 0
    assert published == [message(1)]
    clock.now += 11
    assert scheduler.tick() == 1
    assert published == [message(1), message(2)]
    assert schedule.count() == 0


def test_a_publish_that_fails_is_put_back_and_published_later(store_client):
    clock = Clock()
    schedule = RetrySchedule(store_client, clock=clock)
    outcomes = iter([ConnectionError("broker down"), None])
    published = []

    def publish(msg):
        failure = next(outcomes)
        if failure:
            raise failure
        published.append(msg)

    scheduler = Scheduler(schedule, publish, clock=clock)
    schedule.schedule("receipt.create:TX-1", message(1), clock.now)
    assert scheduler.tick() == 0
    assert schedule.get("receipt.create:TX-1") is not None       # kept, not lost
    clock.now += PUT_BACK_DELAY_SECONDS
    assert scheduler.tick() == 1
    assert published == [message(1)]


def test_the_sweep_runs_once_per_interval(store_client):
    clock = Clock()
    sweeps = []
    scheduler = Scheduler(RetrySchedule(store_client, clock=clock), lambda m: None, clock=clock,
                          sweep=lambda: sweeps.append(clock.now) or 0, sweep_interval=60)
    for _ in range(5):
        scheduler.tick()
        clock.now += 20
    assert len(sweeps) == 2                                      # at t=0 and t=60 (of 0..80)


def test_the_scheduler_beats_after_a_completed_tick_at_most_once_an_interval(store_client):
    clock = Clock()
    schedule = RetrySchedule(store_client, clock=clock)
    beats = []
    scheduler = Scheduler(schedule, lambda msg: None, clock=clock, heartbeat=lambda: beats.append(clock.now),
                          heartbeat_interval=1.0)
    scheduler.tick()
    clock.now += 0.25
    scheduler.tick()
    clock.now += 1.0
    scheduler.tick()
    assert beats == [T0, T0 + 1.25]

    def broken_publish_and_store(msg):
        raise ConnectionError("store gone")

    store_client.flushall()
    schedule.schedule("receipt.create:TX-1", message(1), clock.now)
    failing = Scheduler(schedule, broken_publish_and_store, clock=clock, heartbeat=lambda: beats.append("x"))
    failing.tick()  # a failed publish is put back; the tick itself completed, so it beats
    assert beats[-1] == "x"
