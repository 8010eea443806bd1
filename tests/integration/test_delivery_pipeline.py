"""The delivery pipeline end to end: a real valkey-server, real worker processes, the real scheduler and
the sandbox Trademax over loopback (issue 4, "What it must show" 1–9)."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.fixtures.pipeline import POOLS, wait_until

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str, **changes) -> dict:
    return {**json.loads((EXAMPLES / f"{name}.json").read_text()), **changes}


def api_requests(pipeline, method: str, path_part: str) -> list[dict]:
    return [r for r in pipeline.sandbox.requests()
            if r["method"] == method and path_part in r["path"] and not r["path"].startswith("/_sandbox")]


@pytest.mark.parametrize("pipeline", POOLS, indirect=True)
def test_every_operation_is_delivered_and_the_sandbox_state_matches(pipeline):
    pipeline.start_worker()
    create = example("dispatch.create")
    txid = create["transaction_id"]
    pipeline.enqueue("dispatch.create", create)
    assert pipeline.wait_for_state("dispatch.create", txid, "delivered") == "delivered"
    dispatch_id = pipeline.record("dispatch.create", txid).result["dispatch_id"]

    update = example("dispatch.update")
    publish = example("dispatch.publish")
    receipt = example("receipt.create")
    count = example("stock.adjust", quantity=77)
    relative = example("stock.adjust", event_id="rel-1", type="relative", quantity=-7, reason=2,
                       occurred_at="2030-01-01T00:00:00Z")
    packages = example("inventory.update_packages")
    locks = example("order.lock_lines")
    vendor = example("vendor_dispatch.create")
    pipeline.enqueue("dispatch.update", update)
    pipeline.wait_for_state("dispatch.update", update["event_id"], "delivered")
    for operation, event in [("receipt.create", receipt), ("stock.adjust", count),
                             ("inventory.update_packages", packages), ("order.lock_lines", locks),
                             ("vendor_dispatch.create", vendor)]:
        pipeline.enqueue(operation, event)
    pipeline.wait_for_state("stock.adjust", count["event_id"], "delivered")
    pipeline.enqueue("stock.adjust", relative)   # after the count: 77 - 7
    pipeline.enqueue("dispatch.publish", publish)
    for operation, key in [("receipt.create", receipt["transaction_id"]), ("stock.adjust", "rel-1"),
                           ("inventory.update_packages", packages["event_id"]),
                           ("order.lock_lines", locks["event_id"]),
                           ("vendor_dispatch.create", vendor["event_id"]),
                           ("dispatch.publish", publish["event_id"])]:
        pipeline.wait_for_state(operation, key, "delivered")

    # A second draft shipment, created and then withdrawn.
    draft = example("dispatch.create", transaction_id="DRAFT-2", draft=True)
    delete = example("dispatch.delete", transaction_id="DRAFT-2", event_id="del-2")
    pipeline.enqueue("dispatch.create", draft)
    pipeline.wait_for_state("dispatch.create", "DRAFT-2", "delivered")
    pipeline.enqueue("dispatch.delete", delete)
    pipeline.wait_for_state("dispatch.delete", "del-2", "delivered")

    state = pipeline.sandbox.state()
    dispatches = {d.get("transaction_id"): d for d in state["dispatches"]}
    assert dispatches[txid]["dispatch_id"] == dispatch_id
    assert dispatches[txid]["draft"] is False                      # published
    assert {p["package_id"] for p in dispatches[txid]["packages"]} >= {
        p["package_id"] for p in update["packages"]}                 # the update's packages were added
    assert "DRAFT-2" not in dispatches                               # deleted
    assert [r["transaction_id"] for r in state["receipts"]] == [receipt["transaction_id"]]
    stock = {(s["warehouse_id"], s["artno"]): s["quantity"] for s in state["stock"]}
    assert stock[(count["warehouse_id"], count["artno"])] == 70
    assert any(p["artno"] == packages["artno"] for p in state["package_data"])
    assert {lock["line_no"] for lock in state["line_locks"]} == {line["line_no"] for line in locks["lines"]}
    assert pipeline.record("receipt.create", receipt["transaction_id"]).result["receipt_id"]


def test_one_event_published_fifty_times_to_two_workers_is_applied_once(pipeline):
    pipeline.start_worker()
    pipeline.start_worker()
    event = example("receipt.create", transaction_id="DUP-50")
    lines = pipeline.enqueue("receipt.create", [event] * 50)
    assert len(lines) == 50
    pipeline.wait_for_state("receipt.create", "DUP-50", "delivered")
    # Let every copy run through the workers before counting.
    wait_until(lambda: pipeline.redis().llen("trademax.receipt") == 0, 30, "the receipt queue to drain")
    wait_until(lambda: pipeline.redis().hlen("unacked") == 0, 30, "all copies acknowledged")
    posts = api_requests(pipeline, "POST", "receipt")
    assert len(posts) == 1, posts
    assert [r["transaction_id"] for r in pipeline.sandbox.state()["receipts"]] == ["DUP-50"]


def test_transient_failures_are_retried_from_the_sorted_set_then_delivered(pipeline):
    pipeline.start_worker()
    pipeline.sandbox.set_faults(fail_rate=1.0)
    event = example("receipt.create", transaction_id="FLAKY-1")
    pipeline.enqueue("receipt.create", event)
    r = pipeline.redis()
    seen = wait_until(lambda: [m for m in r.zrange("wms:retry:due", 0, -1) if b"FLAKY-1" in m], 30,
                      "a retry entry in the sorted set")
    assert seen
    assert pipeline.state("receipt.create", "FLAKY-1") in ("retrying", "sending", "accepted")
    pipeline.sandbox.set_faults(fail_rate=0.0)
    pipeline.wait_for_state("receipt.create", "FLAKY-1", "delivered")
    record = pipeline.record("receipt.create", "FLAKY-1")
    assert record.attempts >= 2
    assert any(a["outcome"] == "transient" for a in record.attempts_log)
    assert len(pipeline.sandbox.state()["receipts"]) == 1


def test_permanent_refusal_and_invalid_event_become_dead_letters_and_nothing_invalid_is_sent(pipeline):
    from worker.destinations.table import delivery_ref
    from worker.store.dead_letters import DeadLetters

    pipeline.start_worker()
    refused = example("stock.adjust", event_id="unknown-art", artno="UNKNOWN-1")
    pipeline.enqueue("stock.adjust", refused)
    pipeline.wait_for_state("stock.adjust", "unknown-art", "dead")

    invalid = json.loads((EXAMPLES / "invalid-receipt.json").read_text())
    lines = pipeline.enqueue("receipt.create", invalid)
    assert lines[0]["state"] == "dead"

    letters = DeadLetters(pipeline.redis(), delivery_ref=delivery_ref).list()
    by_reason = {letter["reason"]: letter for letter in letters}
    assert set(by_reason) >= {"permanent", "invalid"}
    assert by_reason["permanent"]["messages"], "Trademax's messages are kept"
    invalid_text = json.dumps(by_reason["invalid"]["messages"])
    assert "received_date" in invalid_text or "quantity" in invalid_text
    assert api_requests(pipeline, "POST", "receipt") == []             # the invalid receipt: never sent
    # The refused one: sent once, not retried.
    assert len(api_requests(pipeline, "PATCH", "UNKNOWN-1")) == 1


def test_dispatch_update_before_its_create_waits_then_goes_out_with_the_right_dispatch_id(pipeline):
    pipeline.start_worker()
    update = example("dispatch.update")
    pipeline.enqueue("dispatch.update", update)
    pipeline.wait_for_state("dispatch.update", update["event_id"], "waiting")
    assert api_requests(pipeline, "PATCH", "dispatch") == []
    create = example("dispatch.create")
    pipeline.enqueue("dispatch.create", create)
    pipeline.wait_for_state("dispatch.update", update["event_id"], "delivered")
    dispatch_id = pipeline.record("dispatch.create", create["transaction_id"]).result["dispatch_id"]
    patches = api_requests(pipeline, "PATCH", "dispatch")
    assert [p["path"] for p in patches] == [f"/api/dispatch/{dispatch_id}"]


def test_an_older_absolute_count_after_a_newer_one_is_superseded(pipeline):
    pipeline.start_worker()
    newer = example("stock.adjust", event_id="count-new", quantity=50, occurred_at="2024-05-14T10:00:00Z")
    older = example("stock.adjust", event_id="count-old", quantity=99, occurred_at="2024-05-14T08:00:00Z")
    pipeline.enqueue("stock.adjust", newer)
    pipeline.wait_for_state("stock.adjust", "count-new", "delivered")
    pipeline.enqueue("stock.adjust", older)
    pipeline.wait_for_state("stock.adjust", "count-old", "superseded")
    stock = pipeline.sandbox.state()["stock"]
    assert [s["quantity"] for s in stock if s["artno"] == newer["artno"]] == [50]
    assert len(api_requests(pipeline, "PATCH", "stock-adjustment")) == 1


def test_relative_adjustment_that_times_out_after_being_applied_is_uncertain_and_sent_once(pipeline):
    pipeline.start_worker()
    pipeline.sandbox.set_faults(timeout_after_apply_rate=1.0)
    event = example("stock.adjust", event_id="rel-timeout", type="relative", quantity=5, reason=2)
    pipeline.enqueue("stock.adjust", event)
    pipeline.wait_for_state("stock.adjust", "rel-timeout", "uncertain", timeout=60)
    pipeline.sandbox.set_faults(timeout_after_apply_rate=0.0)
    assert len(api_requests(pipeline, "PATCH", "stock-adjustment")) == 1
    assert len(pipeline.sandbox.state()["stock_adjustments"]) == 1


@pytest.mark.parametrize("pipeline", POOLS, indirect=True)
def test_a_worker_killed_while_sending_still_ends_delivered_and_applied_once(pipeline):
    pipeline.sandbox.set_faults(latency_ms=1500)
    victim = pipeline.start_worker()
    event = example("dispatch.create", transaction_id="KILLED-1")
    pipeline.enqueue("dispatch.create", event)
    pipeline.wait_for_state("dispatch.create", "KILLED-1", "sending", timeout=30)
    pipeline.kill(victim, signal.SIGKILL)
    pipeline.sandbox.set_faults(latency_ms=0)
    pipeline.start_worker()
    pipeline.wait_for_state("dispatch.create", "KILLED-1", "delivered", timeout=90)
    dispatches = [d for d in pipeline.sandbox.state()["dispatches"] if d["transaction_id"] == "KILLED-1"]
    assert len(dispatches) == 1


def test_nothing_is_lost_when_the_redis_server_restarts_between_enqueue_and_delivery(pipeline):
    events = [example("receipt.create", transaction_id=f"RESTART-{i}") for i in range(5)]
    pipeline.enqueue("receipt.create", events)
    pipeline.redis_server.restart()
    pipeline.start_worker()
    for i in range(5):
        pipeline.wait_for_state("receipt.create", f"RESTART-{i}", "delivered", timeout=60)
    assert sorted(r["transaction_id"] for r in pipeline.sandbox.state()["receipts"]) == sorted(
        e["transaction_id"] for e in events)
