"""A worker stopped with SIGTERM (Kubernetes, docker stop, honcho) stops gracefully in the middle of sends:
the sends in flight finish and are recorded, the messages it had taken but not started go back to their
queue at once, it exits 0 and removes its heartbeat and its probe files — and every event is delivered
exactly once, the rest by the next worker.  Real processes: valkey-server, the sandbox Trademax (1.5 s per
request), workers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.fixtures.pipeline import POOLS, ROOT, wait_until
from tests.integration.test_delivery_pipeline import api_requests, example

pytestmark = pytest.mark.integration

EVENTS = 12


@pytest.mark.parametrize("pipeline", POOLS, indirect=True)
def test_sigterm_mid_send_finishes_in_flight_events_and_loses_none(pipeline):
    pipeline.env["WORKER_CONCURRENCY"] = "4"
    pipeline.sandbox.set_faults(latency_ms=1500)
    worker = pipeline.start_worker()
    keys = [f"R-TERM-{n}" for n in range(EVENTS)]
    pipeline.enqueue("receipt.create", [example("receipt.create", transaction_id=key) for key in keys])
    ledger = pipeline.ledger()
    wait_until(lambda: sum(ledger.get("receipt.create", k).state == "sending" for k in keys) >= 2, 60,
               "sends in flight")
    in_flight = {k for k in keys if ledger.get("receipt.create", k).state == "sending"}

    os.killpg(worker.pid, signal.SIGTERM)
    assert worker.wait(timeout=60) == 0, pipeline.logs()
    states = {k: ledger.get("receipt.create", k).state for k in keys}
    assert all(states[k] == "delivered" for k in in_flight), states  # finished, not abandoned
    assert "sending" not in states.values(), states                  # nothing left half-sent
    undelivered = [k for k, s in states.items() if s != "delivered"]
    assert undelivered, "the test needs work left over for the next worker"
    assert pipeline.redis().hlen("unacked") == 0                     # handed back, not held
    probe = subprocess.run([sys.executable, "-m", "worker.cli", "health", "worker", "--any-host"], cwd=ROOT,
                           env=pipeline.env, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 1 and "stopped cleanly" in probe.stdout  # its heartbeat went with it
    files = subprocess.run([sys.executable, "-m", "worker.cli", "health", "worker", "--liveness"], cwd=ROOT,
                           env=pipeline.env, capture_output=True, text=True, timeout=60)
    assert files.returncode == 1 and "stopped cleanly" in files.stdout  # and its probe files

    pipeline.sandbox.set_faults(latency_ms=0)
    pipeline.start_worker()
    for key in keys:
        pipeline.wait_for_state("receipt.create", key, "delivered")
    posts = [r["params"]["transaction_id"] for r in api_requests(pipeline, "POST", "receipt")]
    assert sorted(posts) == sorted(keys)                             # each sent exactly once
    assert len(pipeline.sandbox.state()["receipts"]) == EVENTS
