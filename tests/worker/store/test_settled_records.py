"""A settled record keeps its details for SETTLED_DETAIL_HOURS and is then compacted to what recognising it
needs (worker.store.settled_records): the same event met again is still known, another payload under its
key still a conflict, a create's dispatch id still found; open records are never touched; the record keeps
its expiry; a compaction resent or cut short by the store leaves each record full or compact, never
neither; records written before the settled index existed are found and compacted too, and those of the
sorted set the lists replaced.  The lists (one per operation, keys in the order they settled) cost ~10 B a
record; a record reopened, settled again or given a dispatch id later is compacted by when it settled."""
from __future__ import annotations

import signal

import pytest
import redis

from tests.fixtures.clock import Clock
from worker.scheduling.compaction import Compaction
from worker.store.ledger import Ledger
from worker.store.records import AttemptEntry
from worker.store.settled_records import SettledRecords

DAY = 86400.0
HOUR = 3600.0
KACHING = "wms:kaching"
OPS = ("stock.adjust", "dispatch.create")


def _ledger(client, clock, namespace="wms") -> Ledger:
    return Ledger(client, lease_seconds=120, delivered_retention_seconds=30 * DAY, clock=clock,
                  namespace=namespace)


def _count(n: int) -> dict:
    return {"operation": "stock.adjust", "key": f"E-{n:06d}", "event_id": f"E-{n:06d}",
            "occurred_at": "2024-05-01T10:11:12Z",
            "fields": {"warehouse_id": "nw", "artno": f"A-{n}", "quantity": n, "type": "absolute"}}


def _create(transaction_id: str) -> dict:
    return {"operation": "dispatch.create", "key": transaction_id, "event_id": transaction_id,
            "occurred_at": "2024-05-01T10:11:12Z",
            "fields": {"warehouse_id": "nw", "order_no": "FO1", "transaction_id": transaction_id,
                       "packages": [{"package_id": 1, "products": [{"line_no": 1, "artno": "A"}]}]}}


def _settle(ledger: Ledger, event: dict, state: str = "delivered", result: dict | None = None,
            reason: str = "delivered") -> str:
    accepted, _ = ledger.accept_and_claim(event, "w1")
    assert ledger.transition(event["operation"], event["key"], state, owner="w1", reason=reason,
                             result=result, log=AttemptEntry(attempt=1, outcome="delivered", status=200,
                                                             latency=0.2))
    return accepted.fingerprint


@pytest.fixture
def client(shared_redis_server):
    client = shared_redis_server.client(decode_responses=True)
    client.flushdb()
    return client


def test_a_delivered_record_keeps_its_details_then_only_what_recognising_it_needs(client):
    clock = Clock()
    ledger = _ledger(client, clock, KACHING)
    settled = SettledRecords(client, KACHING, operations=OPS, detail_seconds=24 * HOUR, clock=clock)
    fingerprint = _settle(ledger, _create("TX-1"), result={"dispatch_id": 4711, "labels": ["http://l/1.pdf"]},
                          reason="Trademax already had it (duplicate)")
    key = ledger.record_key("dispatch.create", "TX-1")
    full = ledger.get("dispatch.create", "TX-1")
    clock.advance(24 * HOUR - 1)
    assert settled.compact_due() == 0 and ledger.get("dispatch.create", "TX-1") == full
    ttl_before = client.pttl(key)

    clock.advance(2)
    assert settled.compact_due() == 1
    record = ledger.get("dispatch.create", "TX-1")
    assert record.compacted and not full.compacted
    assert (record.state, record.attempts, record.result) == ("delivered", 1, {"dispatch_id": 4711})
    assert [(h["to"], h["reason"]) for h in record.history] == [("delivered",
                                                                 "Trademax already had it (duplicate)")]
    assert record.history[0]["at"] == int(full.updated_at)
    assert record.attempts_log == () and record.event["fields"] == {} and record.created_at is None
    assert record.same_fingerprint(fingerprint) and not record.same_fingerprint("0" * 64)
    assert record.to_dict()["compacted"] is True
    # Small values: Redis keeps the hash as a listpack; the expiry is the one it had.
    assert client.object("encoding", key) == "listpack"
    assert 0 < ttl_before - client.pttl(key) < 60_000
    print(f"MEMORY USAGE of a compacted dispatch create: {client.memory_usage(key)} (full: see test_ledger)")
    assert client.memory_usage(key) <= 250
    assert settled.detailed() == 0


def test_a_compacted_record_still_recognises_its_event_and_refuses_another_payload(client):
    clock = Clock()
    ledger = _ledger(client, clock)
    event = _count(1)
    _settle(ledger, event)
    clock.advance(25 * HOUR)
    settled = SettledRecords(client, "wms", operations=OPS, detail_seconds=24 * HOUR, clock=clock)
    assert settled.compact_due() == 1
    known = ledger.accept(event)
    assert (known.status, known.state) == ("known", "delivered")
    again, claim = ledger.accept_and_claim(event, "w2")
    assert (again.status, claim.status) == ("known", "done")
    other = {**event, "fields": {**event["fields"], "quantity": 99}}
    assert ledger.accept(other).status == "conflict"
    assert ledger.accept_and_claim(other, "w3")[0].status == "conflict"
    assert ledger.claim("stock.adjust", event["key"], ledger.accept(other).fingerprint, "w4").status == \
        "conflict"
    assert ledger.get("stock.adjust", event["key"]).compacted  # nothing of that wrote to it


def test_only_settled_records_are_compacted_and_each_once(client):
    clock = Clock()
    ledger = _ledger(client, clock)
    _settle(ledger, _count(1), "delivered")
    _settle(ledger, _count(2), "superseded", reason="a newer absolute value was sent")
    _settle(ledger, _count(3), "dead", reason="permanent")
    accepted, _ = ledger.accept_and_claim(_count(4), "w1")  # sending
    ledger.accept(_count(5))  # accepted
    clock.advance(2 * HOUR)
    settled = SettledRecords(client, "wms", operations=OPS, detail_seconds=HOUR, clock=clock, batch=1)
    assert settled.compact_due() == 2
    assert settled.compact_due() == 0  # a rerun (a resend after a timeout) changes nothing
    states = {n: ledger.get("stock.adjust", f"E-{n:06d}") for n in range(1, 6)}
    assert {n: (r.state, r.compacted) for n, r in states.items()} == {
        1: ("delivered", True), 2: ("superseded", True), 3: ("dead", False), 4: ("sending", False),
        5: ("accepted", False)}
    assert states[2].history[-1]["reason"] == "a newer absolute value was sent"
    assert ledger.count_by_state()["dead"] == 1 and ledger.final_totals()["delivered"] == 1


def test_a_long_outcome_is_cut_to_one_short_line(client):
    clock = Clock()
    ledger = _ledger(client, clock)
    _settle(ledger, _count(1), reason="seen\nin the\tadmin: " + "å" * 40)
    clock.advance(2 * HOUR)
    SettledRecords(client, "wms", operations=OPS, detail_seconds=HOUR, clock=clock).compact_due()
    reason = ledger.get("stock.adjust", "E-000001").history[0]["reason"]  # read as UTF-8: cut between letters
    assert reason == "seen in the admin: " + "å" * 15
    assert client.object("encoding", "wms:event:stock.adjust:E-000001") == "listpack"


def test_records_settled_before_the_index_existed_are_found_and_compacted(client):
    """As an old store has them: settled, with an expiry, in no settled index."""
    clock = Clock()
    ledger = _ledger(client, clock)
    for n in range(30):
        _settle(ledger, _count(n))
    _settle(ledger, _count(99), "dead", reason="permanent")
    client.delete(ledger.settled_queue_key("stock.adjust"))
    other = _ledger(client, clock, KACHING)
    _settle(other, _count(7))  # another destination's record: its own walk finds it
    client.delete(other.settled_queue_key("stock.adjust"))
    clock.advance(2 * HOUR)
    settled = SettledRecords(client, "wms", operations=OPS, detail_seconds=HOUR, clock=clock)
    assert settled.compact_due() == 0  # not indexed: nothing known to compact
    found = 0
    while client.get("wms:ledger:settled:walk") != "done":
        found += settled.index_earlier(steps=1, count=5)
    assert found == 30 and settled.index_earlier() == 0
    assert settled.compact_due() == 30
    assert all(ledger.get("stock.adjust", f"E-{n:06d}").compacted for n in range(30))
    assert not ledger.get("stock.adjust", "E-000099").compacted
    assert not other.get("stock.adjust", "E-000007").compacted
    assert SettledRecords(client, KACHING, operations=OPS, detail_seconds=HOUR, clock=clock).tidy() == 1


def test_the_scheduler_compacts_every_destination_within_a_minute(client):
    """SETTLED_DETAIL_HOURS=0.001 (3.6 s): a record settled now is compact after the next run, at most
    COMPACT_SECONDS later."""
    clock = Clock()
    compaction = Compaction(client, detail_hours=0.001, clock=clock)
    first, kaching = _ledger(client, clock), _ledger(client, clock, KACHING)
    assert compaction() == 0
    _settle(first, _count(1))
    _settle(kaching, _count(1))
    clock.advance(5)
    assert compaction() == 0  # not due yet: it ran 5 s ago
    clock.advance(55)
    assert compaction() == 2
    assert first.get("stock.adjust", "E-000001").compacted
    assert kaching.get("stock.adjust", "E-000001").compacted


def test_a_compaction_cut_short_by_the_store_leaves_every_record_full_or_compact(redis_server):
    """One script per batch: a store killed right after a compaction (its append-only file a second
    behind) or frozen during one (the call times out, then is made again) leaves each record whole."""
    clock = Clock()
    client = redis_server.client(decode_responses=True)
    ledger = _ledger(client, clock)
    client.config_set("appendfsync", "always")  # the records are on disk before the test begins
    for n in range(400):
        _settle(ledger, _count(n))
    client.config_set("appendfsync", "everysec")
    clock.advance(2 * HOUR)
    settled = SettledRecords(client, "wms", operations=OPS, detail_seconds=HOUR, clock=clock, batch=50)
    settled.compact_due(max_batches=4)  # half of them; then the server dies without a SHUTDOWN
    redis_server.kill()
    redis_server.start()
    client = redis_server.client(decode_responses=True)
    ledger = _ledger(client, clock)
    records = [ledger.get("stock.adjust", f"E-{n:06d}") for n in range(400)]
    assert all(r is not None and r.state == "delivered" for r in records)
    compacted = sum(r.compacted for r in records)
    assert all(r.compacted or r.event["fields"]["artno"] == f"A-{n}" for n, r in enumerate(records))
    assert compacted <= 200
    # Frozen mid-call: the client gives up; the call made again finishes the work, once.
    frozen = redis_server.client(decode_responses=True, socket_timeout=0.5)
    settled = SettledRecords(frozen, "wms", operations=OPS, detail_seconds=HOUR, clock=clock, batch=50)
    redis_server.process.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(redis.TimeoutError):
            settled.compact_due()
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    settled.compact_due()
    records = [ledger.get("stock.adjust", f"E-{n:06d}") for n in range(400)]
    assert all(r.compacted and r.state == "delivered" for r in records)
    assert settled.detailed() == 0


def _due_soon(client, clock, n: int = 3):
    ledger = _ledger(client, clock)
    for i in range(n):
        _settle(ledger, _count(i))
        clock.advance(60)
    return ledger


def test_the_lists_entry_costs_a_tenth_of_a_sorted_set_entry(client):
    clock = Clock()
    ledger = _ledger(client, clock)
    for n in range(1000):
        _settle(ledger, _count(n))
    queue = ledger.settled_queue_key("stock.adjust")
    assert client.lrange(queue, 0, 2) == ["E-000000", "E-000001", "E-000002"] and client.llen(queue) == 1000
    client.zadd("wms:compare", {f"stock.adjust:E-{n:06d}": clock() + n for n in range(1000)})
    per_entry, per_member = client.memory_usage(queue) / 1000, client.memory_usage("wms:compare") / 1000
    print(f"settled index per record: list {per_entry:.1f} B, sorted set {per_member:.1f} B")
    assert per_entry <= 16 and per_member >= 4 * per_entry


def test_the_compaction_stops_at_the_first_record_not_due_and_takes_the_rest_later(client):
    clock = Clock()
    ledger = _due_soon(client, clock)  # settled at t, t + 60, t + 120; now t + 180
    settled = SettledRecords(client, "wms", operations=OPS, detail_seconds=150.0, clock=clock, batch=2)
    assert settled.compact_due() == 1  # only the first settled 150 s ago or more
    assert client.lrange(ledger.settled_queue_key("stock.adjust"), 0, -1) == ["E-000001", "E-000002"]
    assert settled.detailed() == 2
    clock.advance(100)
    assert settled.compact_due() == 2 and settled.detailed() == 0
    assert client.exists(ledger.settled_queue_key("stock.adjust")) == 0


def test_a_reopened_record_is_passed_over_and_compacted_by_when_it_settled_again(client):
    clock = Clock()
    ledger = _ledger(client, clock)
    _settle(ledger, _count(1), "discarded", reason="a person gave up on it")
    clock.advance(10)
    assert ledger.transition("stock.adjust", "E-000001", "accepted", reason="a person retried it",
                             expected_states=("discarded",))
    _settle(ledger, _count(2))
    settled = SettledRecords(client, "wms", operations=OPS, detail_seconds=HOUR, clock=clock)
    clock.advance(2 * HOUR)
    assert settled.compact_due() == 1  # E-1 is open: passed over (its entry taken); E-2 compacted
    assert not ledger.get("stock.adjust", "E-000001").compacted
    assert ledger.get("stock.adjust", "E-000002").compacted
    assert ledger.claim("stock.adjust", "E-000001", ledger.get("stock.adjust", "E-000001").fingerprint,
                        "w2").claimed
    assert ledger.transition("stock.adjust", "E-000001", "delivered", owner="w2", reason="sent again")
    clock.advance(HOUR - 1)
    assert settled.compact_due() == 0  # settled again an hour ago less a second: not due
    clock.advance(2)
    assert settled.compact_due() == 1
    record = ledger.get("stock.adjust", "E-000001")
    assert record.compacted and record.history[0]["reason"] == "sent again"


def test_a_dispatch_id_filled_in_later_does_not_put_the_compaction_off(client):
    clock = Clock()
    ledger = _ledger(client, clock)
    _settle(ledger, _create("TX-9"), result={"dispatch_id": None})
    settled_at = ledger.get("dispatch.create", "TX-9").updated_at
    clock.advance(30 * 60)
    assert ledger.fill_in_result("dispatch.create", "TX-9", "dispatch_id", 77, state="delivered",
                                 actor="ann", reason="set by hand") == ("added", 77)
    clock.advance(30 * 60 + 1)  # an hour after it settled, half an hour after the fill-in
    assert SettledRecords(client, "wms", operations=OPS, detail_seconds=HOUR, clock=clock).compact_due() == 1
    record = ledger.get("dispatch.create", "TX-9")
    assert record.compacted and record.result == {"dispatch_id": 77}
    assert record.history[0]["at"] == int(settled_at) and record.history[0]["reason"] == "set by hand"


def test_a_batch_made_again_after_it_ran_changes_nothing(client):
    """The store-call rule: the script is given the entries read at the list's head; once they are gone
    (its first run took them, or another scheduler did) it does nothing."""
    from worker.store.settled_records import COMPACT

    clock = Clock()
    ledger = _due_soon(client, clock, 4)
    clock.advance(2 * HOUR)
    queue = ledger.settled_queue_key("stock.adjust")
    batch = client.lrange(queue, 0, 1)
    compact = client.register_script(COMPACT)
    keys = [queue, *(ledger.record_key("stock.adjust", key) for key in batch)]
    assert compact(keys=keys, args=[f"{clock() - HOUR:.3f}", "list", *batch]) == [2, 2, 1]
    assert compact(keys=keys, args=[f"{clock() - HOUR:.3f}", "list", *batch]) == [0, 0, 0]
    assert client.lrange(queue, 0, -1) == ["E-000002", "E-000003"]
    compacted = [ledger.get("stock.adjust", f"E-{n:06d}").compacted for n in range(4)]
    assert compacted == [True, True, False, False]


def test_a_store_with_the_sorted_set_the_lists_replaced_is_drained_from_it(client):
    """As issue 21's first index left a store: every settled record in ``<ns>:ledger:settled`` by the time
    it settled, no lists."""
    clock = Clock()
    ledger = _due_soon(client, clock, 5)
    queue = ledger.settled_queue_key("stock.adjust")
    client.zadd("wms:ledger:settled", {f"stock.adjust:{key}": ledger.get("stock.adjust", key).updated_at
                                       for key in client.lrange(queue, 0, -1)})
    client.delete(queue)
    settled = SettledRecords(client, "wms", operations=OPS, detail_seconds=200.0, clock=clock, batch=2)
    assert settled.detailed() == 5
    assert settled.compact_due() == 2  # settled 300 s and 240 s ago
    assert client.zcard("wms:ledger:settled") == 3
    clock.advance(HOUR)
    assert settled.compact_due() == 3 and client.exists("wms:ledger:settled") == 0
    assert all(ledger.get("stock.adjust", f"E-{n:06d}").compacted for n in range(5))
