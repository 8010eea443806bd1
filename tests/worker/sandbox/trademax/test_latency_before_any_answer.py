"""The sandbox's latency comes before every answer of its API, a refusal included (issue 21.1): the
throughput benchmark's "bare Celery + requests" baseline sends unsigned requests, answered 401 — if the
401 came at once, the baseline at 200 ms would run faster than Little's law allows and every ratio against
it would be wrong.  (A lower bound on the answer's time, which is the behaviour: no speed is asserted.)"""
from __future__ import annotations

import time

import requests

LATENCY_MS = 300


def test_an_unsigned_request_is_refused_after_the_latency(sandbox):
    running = sandbox(latency_ms=LATENCY_MS)
    started = time.monotonic()
    # what benchmarks/noop_task.py's bare_post sends
    answer = requests.post(running.base_url + "receipt", json={"receipt_no": "R-1"}, timeout=30)
    took = time.monotonic() - started
    assert answer.status_code == 401
    assert took >= LATENCY_MS / 1000
    assert [entry["status"] for entry in running.requests()] == [401]
