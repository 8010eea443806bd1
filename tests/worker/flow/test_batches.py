"""Pending counts of a bulk destination: the newest level per (warehouse, product) wins and the older is
superseded (also one older than a level already sent); adds are never coalesced; a batch is one kind,
oldest first, at most max_items, never passing a product's older item of the other kind; one batch is in
flight at a time and the next waits batch_seconds; settling puts what was not delivered back in its place
(superseded where a newer level came meanwhile); a batch whose flusher died is taken again as an orphan."""
from __future__ import annotations

import pytest

from worker.flow.batches import ADD, LEVEL, BatchItem, Batches


@pytest.fixture
def batches(store_client, clock):
    return Batches(store_client, "wms:kaching", clock=clock)


def item(ref, artno="A", quantity=1, second=0, kind=LEVEL, warehouse="nw"):
    return BatchItem(ref=ref, kind=kind, operation="stock.adjust", key=ref, fingerprint="f" * 64,
                     message={"warehouse_id": warehouse, "artno": artno, "quantity": quantity,
                              "event_id": ref, "type": "absolute" if kind == LEVEL else "relative",
                              "occurred_at": f"2024-05-01T10:00:{second:02d}.000000Z"}, enqueued_at=100.0)


def take(batches, max_items=500):
    return batches.take("holder-1", max_items=max_items, lease_seconds=30, batch_seconds=1)


def test_the_newest_level_of_a_product_wins(batches):
    assert batches.add(item("E1", quantity=5, second=1)).status == "added"
    newer = batches.add(item("E2", quantity=7, second=2))
    assert (newer.status, newer.replaced) == ("added", "E1")
    older = batches.add(item("E0", quantity=3, second=0))  # came late: older than the one pending
    assert (older.status, older.newer) == ("superseded", "2024-05-01T10:00:02.000000Z")
    assert batches.add(item("E2", quantity=7, second=2)).status == "known"
    assert batches.add(item("B1", artno="B", second=0)).status == "added"  # another product
    assert batches.add(item("N1", warehouse="se", second=0)).status == "added"  # another warehouse
    batch = take(batches).batch
    assert [i.ref for i in batch.items] == ["E2", "B1", "N1"] and batch.items[0].quantity == 7


def test_a_level_older_than_one_already_sent_is_superseded(batches):
    batches.add(item("E2", second=2))
    take(batches)
    assert batches.add(item("E1", second=1)).status == "superseded"
    assert batches.add(item("E3", second=3)).status == "added"


def test_adds_are_never_coalesced_and_go_one_per_product_a_batch(batches, clock):
    for n in range(3):
        assert batches.add(item(f"R{n}", quantity=-1, second=n, kind=ADD)).status == "added"
    batches.add(item("B0", artno="B", quantity=2, second=3, kind=ADD))
    taken = []
    for _ in range(3):
        batch = take(batches).batch
        assert batch.kind == ADD
        taken.append([i.ref for i in batch.items])
        batches.settle(batch, failures="reset", next_at=0)
    assert taken == [["R0", "B0"], ["R1"], ["R2"]]


def test_a_batch_is_one_kind_and_keeps_each_products_order(batches):
    batches.add(item("L-A", artno="A", second=1))
    batches.add(item("R-A", artno="A", second=2, kind=ADD))  # after A's count: must follow it
    batches.add(item("R-B", artno="B", second=3, kind=ADD))
    batches.add(item("L-B", artno="B", second=4))  # after B's adjustment: must wait for it
    batches.add(item("L-C", artno="C", second=5))
    first = take(batches).batch
    assert (first.kind, [i.ref for i in first.items]) == (LEVEL, ["L-A", "L-C"])
    batches.settle(first, failures="reset", next_at=0)
    second = take(batches).batch
    assert (second.kind, [i.ref for i in second.items]) == (ADD, ["R-A", "R-B"])
    batches.settle(second, failures="reset", next_at=0)
    assert [i.ref for i in take(batches).batch.items] == ["L-B"]


def test_at_most_max_items_oldest_first(batches):
    for n in range(7):
        batches.add(item(f"E{n}", artno=f"P{n}", second=n))
    assert [i.ref for i in take(batches, max_items=5).batch.items] == ["E0", "E1", "E2", "E3", "E4"]
    assert batches.pending_count() == 2


def test_one_batch_in_flight_and_the_next_waits(batches, clock):
    batches.add(item("E1", artno="A"))
    first = take(batches).batch
    batches.add(item("E2", artno="B"))
    assert take(batches).status == "busy"
    flight = batches.in_flight()
    assert (flight["id"], flight["size"], flight["kind"]) == (first.batch_id, 1, LEVEL)
    batches.settle(first, failures="reset")
    waiting = take(batches)
    assert waiting.status == "wait" and waiting.wait == pytest.approx(1.0)
    clock.advance(1)
    assert [i.ref for i in take(batches).batch.items] == ["E2"]


def test_a_batch_whose_flusher_died_is_taken_again_as_an_orphan(batches, clock):
    batches.add(item("E1"))
    first = take(batches).batch
    clock.advance(29)
    assert take(batches).status == "busy"
    assert batches.mark_sent(first)
    clock.advance(2)  # its lease (30 s) ran out
    again = take(batches)
    assert again.status == "orphan" and again.batch.orphan and again.batch.sent
    assert (again.batch.batch_id, again.batch.owner, [i.ref for i in again.batch.items]) == (
        first.batch_id, first.owner, ["E1"])
    assert take(batches).status == "busy"  # the new holder's lease


def test_settling_puts_back_in_place_unless_a_newer_level_came(batches, clock):
    batches.add(item("A1", artno="A", second=1))
    batches.add(item("B1", artno="B", second=1))
    batch = take(batches).batch
    batches.add(item("A2", artno="A", second=2))  # arrives while the batch is out
    batches.add(item("C1", artno="C", second=2))
    failures, superseded = batches.settle(batch, batch.items, next_at=clock() + 8, failures="add")
    assert (failures, superseded) == (1, ["A1"])
    assert batches.failures() == 1
    assert take(batches).status == "wait"
    clock.advance(8)
    again = take(batches).batch
    assert [i.ref for i in again.items] == ["B1", "A2", "C1"]  # B1 back in its old place, first
    assert batches.settle(again, failures="reset") == (0, [])


def test_settling_a_batch_no_longer_in_flight_does_nothing(batches, clock):
    batches.add(item("A1"))
    batch = take(batches).batch
    batches.settle(batch, failures="reset")
    assert batches.settle(batch, batch.items, failures="add") == (-1, [])
    assert batches.pending_count() == 0


def test_after_a_failed_batch_the_other_kind_goes_first(batches, clock):
    """A level whose request fails again and again must not hold back the adjustments behind it."""
    batches.add(item("L-A", artno="A", second=1))
    batches.add(item("R-B", artno="B", second=2, kind=ADD))
    first = take(batches).batch
    assert first.kind == LEVEL
    batches.settle(first, first.items, next_at=0, failures="add")  # it failed: back to pending
    second = take(batches).batch
    assert (second.kind, [i.ref for i in second.items]) == (ADD, ["R-B"])
    batches.settle(second, failures="reset", next_at=0)
    assert [i.ref for i in take(batches).batch.items] == ["L-A"]
