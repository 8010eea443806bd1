"""The durable retry schedule: entries come back when due, each taken once, none lost."""
from __future__ import annotations

import threading

import pytest

from worker.store.retry_schedule import RetrySchedule

T0 = 1_714_550_000.0


def message(n: int = 1) -> dict:
    return {"task": "wms.dispatch.create", "queue": "wms.dispatch",
            "event": {"operation": "dispatch.create", "key": f"TX-{n}", "fields": {"order_no": f"FO{n}"}}}


@pytest.fixture
def client(store_client):
    return store_client


@pytest.fixture
def schedule(client):
    return RetrySchedule(client, clock=lambda: T0, in_flight_lease_seconds=60)


def test_entries_are_taken_when_due_soonest_first(schedule):
    schedule.schedule("e2", message(2), T0 + 20)
    schedule.schedule("e1", message(1), T0 + 10)
    schedule.schedule("e3", message(3), T0 + 30)
    assert schedule.take_due(T0 + 5) == []
    assert schedule.take_due(T0 + 25) == [("e1", message(1)), ("e2", message(2))]
    assert schedule.take_due(T0 + 25) == []  # taken once
    assert schedule.count() == 1 and schedule.in_flight_count() == 2
    assert schedule.next_due() == T0 + 30


def test_take_due_respects_the_limit(schedule):
    for n in range(5):
        schedule.schedule(f"e{n}", message(n), T0 + n)
    assert [entry for entry, _ in schedule.take_due(T0 + 10, limit=2)] == ["e0", "e1"]
    assert [entry for entry, _ in schedule.take_due(T0 + 10, limit=10)] == ["e2", "e3", "e4"]


def test_confirm_forgets_a_published_entry(schedule):
    schedule.schedule("e1", message(), T0)
    schedule.take_due(T0)
    assert schedule.confirm("e1")
    assert schedule.get("e1") is None
    assert schedule.in_flight_count() == 0 and schedule.count() == 0
    assert not schedule.confirm("e1")


def test_a_failed_publish_is_put_back_and_taken_again(schedule):
    schedule.schedule("e1", message(), T0)
    [(entry, _)] = schedule.take_due(T0)
    assert schedule.put_back(entry, T0 + 5)
    assert schedule.take_due(T0 + 1) == []
    assert schedule.take_due(T0 + 5) == [("e1", message())]
    assert not schedule.put_back("never-taken", T0)


def test_rescheduled_while_in_flight_keeps_the_new_message(schedule):
    """The published task can fail and schedule its next retry before the scheduler confirms."""
    schedule.schedule("e1", message(1), T0)
    schedule.take_due(T0)
    schedule.schedule("e1", message(2), T0 + 100)
    schedule.confirm("e1")
    entry = schedule.get("e1")
    assert entry.message == message(2) and entry.due_at == T0 + 100 and not entry.in_flight
    assert schedule.recover_stale(T0 + 1000) == []


def test_stale_in_flight_entries_are_recovered(schedule):
    schedule.schedule("e1", message(1), T0)
    schedule.schedule("e2", message(2), T0)
    schedule.take_due(T0)  # the scheduler dies here, before publishing
    assert schedule.recover_stale(T0 + 59) == []
    assert sorted(schedule.recover_stale(T0 + 61)) == ["e1", "e2"]
    assert schedule.in_flight_count() == 0
    assert sorted(entry for entry, _ in schedule.take_due(T0 + 61)) == ["e1", "e2"]


def test_run_now_and_remove(schedule):
    schedule.schedule("e1", message(1), T0 + 3600)
    schedule.schedule("e2", message(2), T0 + 7200)
    assert schedule.run_now(["e2", "unknown"]) == 1
    assert schedule.take_due(T0) == [("e2", message(2))]
    assert schedule.run_now([]) == 0
    assert schedule.remove("e1") and not schedule.remove("e1")
    assert schedule.count() == 0


def test_list_get_and_next_due(schedule):
    assert schedule.list() == [] and schedule.next_due() is None
    schedule.schedule("e2", message(2), T0 + 20)
    schedule.schedule("e1", message(1), T0 + 10)
    listed = schedule.list()
    assert [(e.ref, e.due_at, e.message) for e in listed] == [("e1", T0 + 10, message(1)),
                                                              ("e2", T0 + 20, message(2))]
    assert [e.ref for e in schedule.list(limit=1)] == ["e1"]
    assert listed[0].to_dict()["ref"] == "e1"
    schedule.take_due(T0 + 10)
    assert schedule.get("e1").in_flight and schedule.get("missing") is None


def test_secrets_never_enter_the_schedule(schedule):
    with pytest.raises(ValueError, match="secret"):
        schedule.schedule("e1", {"task": "t", "event": {"fields": {"api_key": "k"}}}, T0)
    assert schedule.count() == 0


def test_two_schedulers_take_each_entry_exactly_once(redis_server):
    """Two schedulers race on a real valkey-server over 400 due entries."""
    setup = RetrySchedule(redis_server.client(), clock=lambda: T0)
    for n in range(400):
        setup.schedule(f"e{n}", message(n), T0 - 400 + n)
    taken: dict[str, list[str]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def run(name: str) -> None:
        mine = RetrySchedule(redis_server.client(), clock=lambda: T0)
        start.wait()
        while True:
            batch = mine.take_due(T0, limit=7)
            if not batch:
                return
            for ref, _ in batch:
                taken[name].append(ref)
                mine.confirm(ref)

    threads = [threading.Thread(target=run, args=(name,)) for name in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = taken["a"] + taken["b"]
    assert len(everything) == 400 and len(set(everything)) == 400
    assert setup.count() == 0 and setup.in_flight_count() == 0


def test_scheduled_retries_survive_a_redis_restart(redis_server):
    schedule = RetrySchedule(redis_server.client(), clock=lambda: T0)
    schedule.schedule("e1", message(1), T0 + 10)
    schedule.schedule("e2", message(2), T0)
    schedule.take_due(T0)
    redis_server.restart()
    assert [e.ref for e in schedule.list()] == ["e1"]
    assert schedule.recover_stale(T0 + 61) == ["e2"]
    assert [entry for entry, _ in schedule.take_due(T0 + 61)] == ["e1", "e2"]
