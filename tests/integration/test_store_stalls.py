"""What the worker knows survives the store stalling or stopping (issue 9):

- the store frozen (SIGSTOP) longer than the store socket timeout in the middle of claims and transitions:
  no event parked ``uncertain`` that was never sent, every event sent exactly once and delivered, no
  attempt entry logged twice — a timed-out store call is replayed by its request id, never run twice;
- the store stopped between Trademax's 200 and the ledger write: the event ends ``delivered`` with
  Trademax's answer (kept in the worker until the store is back), not ``uncertain``.

Real valkey-server, real worker, the sandbox over loopback; relative stock adjustments and vendor
dispatches, the two kinds that may not be resent blind."""
from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import pytest

from tests.fixtures.pipeline import ROOT, wait_until
from worker.store.connection import STORE_SOCKET_TIMEOUT_SECONDS

pytestmark = pytest.mark.integration

EXAMPLES = ROOT / "examples"
# Leases and redelivery longer than the outages: what is tested is the store calls, not lease expiry.
LONG_LEASES = {"CLAIM_LEASE_SECONDS": "40", "VISIBILITY_TIMEOUT_SECONDS": "60",
               "STRANDED_AFTER_SECONDS": "200"}


def relative(n: int) -> dict:
    event = json.loads((EXAMPLES / "stock.adjust.json").read_text())
    return {**event, "event_id": f"rel-{n}", "type": "relative", "quantity": 1, "artno": "STALL-1",
            "reason": 2}


def vendor(n: int) -> dict:
    event = json.loads((EXAMPLES / "vendor_dispatch.create.json").read_text())
    return {**event, "event_id": f"vd-{n}", "order_no": f"VD{n}"}


def api_calls(pipeline, method: str, path_part: str) -> list[dict]:
    return [r for r in pipeline.sandbox.requests() if r["method"] == method and path_part in r["path"]
            and not r["path"].startswith("/_sandbox")]


def assert_each_attempt_logged_once(record) -> None:
    numbers = Counter(entry["attempt"] for entry in record.attempts_log)
    assert all(n == 1 for n in numbers.values()), record.to_dict()
    assert [e["outcome"] for e in record.attempts_log].count("delivered") == 1, record.to_dict()


def test_a_store_frozen_past_the_socket_timeout_runs_no_claim_or_transition_twice(pipeline):
    pipeline.env.update(LONG_LEASES)
    pipeline.sandbox.set_faults(latency_ms=300)
    worker = pipeline.start_worker()
    events = [("stock.adjust", relative(n)) for n in range(24)]
    events += [("vendor_dispatch.create", vendor(n)) for n in range(16)]
    client = pipeline.redis()
    from worker.destinations.table import QUEUES  # noqa: F401  (the queues the messages go to)
    from benchmarks.poison import celery_message

    for operation, event in events:
        queue = "trademax.stock" if operation == "stock.adjust" else "trademax.dispatch"
        client.lpush(queue, celery_message(f"trademax.{operation}", event, queue))
    wait_until(lambda: len(api_calls(pipeline, "PATCH", "stock-adjustment")) >= 3, 60, "sends under way")
    pid = pipeline.redis_server.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(STORE_SOCKET_TIMEOUT_SECONDS + 3)
    finally:
        os.kill(pid, signal.SIGCONT)
    for operation, event in events:
        pipeline.wait_for_state(operation, event["event_id"], ("delivered", "uncertain", "dead"), timeout=180)

    states = Counter(pipeline.state(operation, event["event_id"]) for operation, event in events)
    assert states == Counter({"delivered": len(events)}), (states, pipeline.logs())
    for operation, event in events:
        assert_each_attempt_logged_once(pipeline.record(operation, event["event_id"]))
    assert len(api_calls(pipeline, "PATCH", "stock-adjustment")) == 24          # each sent once
    assert len(api_calls(pipeline, "POST", "vendor/dispatch")) == 16
    stock = {(s["warehouse_id"], s["artno"]): s["quantity"] for s in pipeline.sandbox.state()["stock"]}
    assert stock[("nw", "STALL-1")] == 24
    assert worker.poll() is None


def test_a_store_stopped_between_the_200_and_the_ledger_write_still_ends_delivered(pipeline):
    pipeline.env.update(LONG_LEASES)
    worker = pipeline.start_worker()
    pipeline.sandbox.set_faults(latency_ms=1500)
    event = relative(1000)
    pipeline.enqueue("stock.adjust", event)
    pipeline.wait_for_state("stock.adjust", event["event_id"], "sending", timeout=60)
    pipeline.redis_server.stop()          # the request is on the wire; its 200 comes while the store is down
    wait_until(lambda: api_calls(pipeline, "PATCH", "stock-adjustment"), 30, "Trademax to have it")
    time.sleep(2)
    pipeline.redis_server.start()

    assert pipeline.wait_for_state("stock.adjust", event["event_id"], ("delivered", "uncertain"),
                                   timeout=120) == "delivered", pipeline.logs()
    record = pipeline.record("stock.adjust", event["event_id"])
    assert record.result and "new_quantity" in json.dumps(record.result), record.to_dict()
    assert_each_attempt_logged_once(record)
    assert record.attempts_log[0]["status"] == 200
    assert len(api_calls(pipeline, "PATCH", "stock-adjustment")) == 1
    assert worker.poll() is None
