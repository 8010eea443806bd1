"""Metrics: a worker's attempt tally reaches the store intact (and survives a failed flush); a scrape of
``/metrics`` — parsed back with prometheus-client's own parser — reports what the store holds right then
(events by state, dead letters and the oldest one's age, uncertain, retries scheduled and the most overdue,
queue depths, workers alive, the scheduler's last tick, Redis memory), the workers' attempts and
latency histogram and the desk's sign-in counts; with no store to read it says ``wms_relay_store_up 0``
instead of failing."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from worker.commands.metrics import serve
from worker.observe.metrics import AttemptTally
from worker.destinations.table import DESTINATIONS, delivery_ref
from worker.settings import Settings
from worker.store.attempt_counts import AttemptCounts
from worker.store.catalog import Catalog
from worker.store.dead_letters import DeadLetters
from worker.store.heartbeats import Heartbeats
from worker.store.ledger import Ledger
from worker.store.retry_schedule import RetrySchedule
from worker.store.sign_ins import SignIns

ROOT = Path(__file__).resolve().parents[3]


def test_the_tally_reaches_the_store_as_counters_and_a_cumulative_histogram(store_client):
    tally = AttemptTally()
    tally.record("trademax", "stock.adjust", "delivered", 200, 0.04)
    tally.record("trademax", "stock.adjust", "delivered", 200, 0.3)
    tally.record("trademax", "stock.adjust", "transient", 503, 12.0)
    tally.record("trademax", "receipt.create", "transient", None, None)  # connect failure: not timed
    tally.flush(store_client)
    tally.flush(store_client)  # nothing new: adds nothing
    tally.record("trademax", "stock.adjust", "delivered", 200, 0.04)
    tally.flush(store_client)
    counts = AttemptCounts(store_client)
    assert counts.attempts() == {("trademax", "stock.adjust", "delivered", "200"): 3,
                                 ("trademax", "stock.adjust", "transient", "503"): 1,
                                 ("trademax", "receipt.create", "transient", "none"): 1}
    [histogram] = counts.latency()
    buckets = dict(histogram.buckets)
    assert [buckets[le] for le in ("0.05", "0.5", "10.0", "30.0", "+Inf")] == [2, 3, 3, 4, 4]
    assert histogram.count == 4 and histogram.sum == pytest.approx(12.38)


def test_a_failed_flush_keeps_the_counts_for_the_next_one(store_client):
    class Down:
        def register_script(self, body):
            def run(**_):
                raise ConnectionError("store away")
            return run

    tally = AttemptTally()
    tally.record("trademax", "stock.adjust", "delivered", 200, 0.1)
    with pytest.raises(ConnectionError):
        tally.flush(Down())
    tally.record("trademax", "stock.adjust", "delivered", 200, 0.1)
    tally.flush(store_client)
    assert AttemptCounts(store_client).attempts() == {("trademax", "stock.adjust", "delivered", "200"): 2}
    assert AttemptCounts(store_client).latency()[0].count == 2


def test_a_batch_resent_after_a_store_timeout_is_counted_once(store_client):
    """The store-call rule (worker.store.requests): a batch resent with its request id is a replay."""
    from worker.store.requests import replayable

    counts = AttemptCounts(store_client)
    batch = {("trademax", "stock.adjust", "delivered", "200"): 3}
    latency = {("trademax", "stock.adjust"): ([1] + [0] * 10, 0.04, 1)}
    for _ in range(2):  # the same logical call, twice (redis-py's resend after a timeout)
        with replayable("flush-1"):
            counts.add(batch, latency)
    assert counts.attempts() == {("trademax", "stock.adjust", "delivered", "200"): 3}
    assert counts.latency()[0].count == 1 and counts.latency()[0].sum == pytest.approx(0.04)


def scrape_body(port: int) -> str:
    """What one scrape of ``/metrics`` answers (the exposition text)."""
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()


def scrape(port: int) -> dict:
    """{(family name, sample name, labels as a sorted tuple): value} of one scrape."""
    body = scrape_body(port)
    return {(family.name, sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body) for sample in family.samples}


def test_a_scrape_reports_what_the_store_holds(redis_server):
    r = redis_server.client(decode_responses=True)
    now = time.time()
    settings = Settings(redis_url=redis_server.url)
    ledger = Ledger.from_settings(r, settings)
    for key in ("adj-1", "adj-2"):
        ledger.accept({"operation": "stock.adjust", "key": key, "fields": {"artno": "A", "quantity": 1}})
    ledger.transition("stock.adjust", "adj-2", "uncertain", reason="read timeout")
    # a shipment Trademax answered 452 without its dispatch id, and one update waiting for a person
    ledger.accept({"operation": "dispatch.create", "key": "TX-1", "fields": {"transaction_id": "TX-1"}})
    ledger.transition("dispatch.create", "TX-1", "delivered", reason="452 without an id", result={})
    from worker.store.dispatch_waiters import DispatchWaiters

    waiters = DispatchWaiters(r, ledger)
    waiters.mark_id_unknown("TX-1", now)
    waiters.wait_for("TX-1", "dispatch.update:U-1")
    # ka-ching's own ledger (its namespace): counted under its destination, not Trademax's
    ledger.sibling(DESTINATIONS["kaching"].namespace).accept(
        {"operation": "stock.adjust", "key": "adj-1", "fields": {"artno": "A", "quantity": 1}})
    letters = DeadLetters(r, clock=lambda: now - 600, delivery_ref=delivery_ref)
    letters.add("receipt.create", "R-1", {}, "permanent", ["refused"])
    Catalog(r, DESTINATIONS["stock2shop"].namespace).wait_for_row("stock2shop/stock.adjust:adj-1", "A", now)
    retry = {"task": "trademax.receipt.create", "event": {}}
    RetrySchedule(r).schedule("receipt.create:R-2", retry, now - 90)
    r.rpush("trademax.stock", "m1", "m2")
    Heartbeats(r).beat("worker", "relay-1@h")
    Heartbeats(r, clock=lambda: now - 4).beat("scheduler", "scheduler-1@h")
    tally = AttemptTally()
    tally.record("trademax", "stock.adjust", "transient", 503, 0.2)
    tally.flush(r)
    sign_ins = SignIns(r, "k" * 40, per_name=2)
    sign_ins.signed_in(sign_ins.attempt("olga", "192.0.2.1"))
    for _ in range(3):
        attempt = sign_ins.attempt("nobody", "192.0.2.2")
        if not attempt.blocked:
            sign_ins.refused(attempt)

    server, thread = serve(settings, "127.0.0.1", 0)
    try:
        got = scrape(server.server_port)
    finally:
        server.shutdown()
    assert got[("wms_relay_store_up", "wms_relay_store_up", ())] == 1
    events = {(dest, state): got[("wms_relay_events", "wms_relay_events",
                                  (("destination", dest), ("state", state)))]
              for dest in ("trademax", "kaching") for state in ("accepted", "uncertain")}
    assert got[("wms_relay_dispatch_id_unknown_shipments",) * 2 + ((),)] == 1
    assert got[("wms_relay_dispatch_id_unknown_waiting",) * 2 + ((),)] == 1
    assert events == {("trademax", "accepted"): 1, ("trademax", "uncertain"): 1,
                      ("kaching", "accepted"): 1, ("kaching", "uncertain"): 0}
    trademax, kaching = (("destination", "trademax"),), (("destination", "kaching"),)
    assert got[("wms_relay_dead_letters_open", "wms_relay_dead_letters_open", trademax)] == 1
    assert got[("wms_relay_dead_letters_open", "wms_relay_dead_letters_open", kaching)] == 0
    assert 600 <= got[("wms_relay_dead_letter_oldest_age_seconds",) * 2 + (trademax,)] < 660
    assert got[("wms_relay_dead_letter_oldest_age_seconds",) * 2 + (kaching,)] == 0
    assert got[("wms_relay_uncertain_oldest_age_seconds",) * 2 + (trademax,)] >= 0
    from worker import __version__
    assert got[("wms_relay_build_info",) * 2 + ((("version", __version__),),)] == 1
    unmapped = {dest: got[("wms_relay_unmapped_deliveries",) * 2 + ((("destination", dest),),)]
                for dest in ("kaching", "stocktrim", "stock2shop")}
    assert unmapped == {"kaching": 0, "stocktrim": 0, "stock2shop": 1}
    assert got[("wms_relay_retries_scheduled",) * 2 + ((),)] == 1
    assert 90 <= got[("wms_relay_retry_most_overdue_seconds",) * 2 + ((),)] < 150
    assert got[("wms_relay_queue_depth", "wms_relay_queue_depth", (("queue", "trademax.stock"),))] == 2
    assert got[("wms_relay_workers_alive",) * 2 + ((),)] == 1
    assert 4 <= got[("wms_relay_scheduler_last_tick_age_seconds",) * 2 + ((),)] < 60
    assert got[("wms_relay_redis_used_memory_bytes",) * 2 + ((),)] > 0
    labels = (("destination", "trademax"), ("operation", "stock.adjust"), ("outcome", "transient"),
              ("status", "503"))
    assert got[("wms_relay_attempts", "wms_relay_attempts_total", labels)] == 1
    latency = (("destination", "trademax"), ("operation", "stock.adjust"))
    assert got[("wms_relay_destination_latency_seconds", "wms_relay_destination_latency_seconds_bucket",
                tuple(sorted(latency + (("le", "0.25"),))))] == 1
    assert got[("wms_relay_destination_latency_seconds", "wms_relay_destination_latency_seconds_count",
                latency)] == 1
    sign_in_totals = {outcome: got[("wms_relay_desk_sign_ins", "wms_relay_desk_sign_ins_total",
                                    (("outcome", outcome),))]
                      for outcome in ("signed_in", "refused", "blocked")}
    assert sign_in_totals == {"signed_in": 1, "refused": 2, "blocked": 1}
    assert got[("wms_relay_desk_sign_in_lockouts", "wms_relay_desk_sign_in_lockouts_total", ())] == 1


def test_without_a_store_a_scrape_says_so(tmp_path):
    server, _ = serve(Settings(var_dir=tmp_path / "var"), "127.0.0.1", 0)
    try:
        got = scrape(server.server_port)
    finally:
        server.shutdown()
    assert got == {("wms_relay_store_up", "wms_relay_store_up", ()): 0}
    assert not (tmp_path / "var").exists()  # it never starts one


def test_the_metrics_command_serves_and_stops_on_sigterm(redis_server, tmp_path):
    from tests.fixtures.ports import free_port

    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_server.url, "WMS_RELAY_VAR_DIR": str(tmp_path / "var")}
    proc = subprocess.Popen([sys.executable, "-m", "worker.cli", "metrics", "--port", str(port)], cwd=ROOT,
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert f"http://127.0.0.1:{port}/metrics" in line and "(REDIS_URL)" in line
        assert scrape(port)[("wms_relay_store_up", "wms_relay_store_up", ())] == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_scrape_reports_each_destinations_flow_state(redis_server):
    """Issue 22.5: the circuit (one-hot by state), parked deliveries and pending batches per destination,
    each read from the store (a pause's gauge: tests/integration/test_state_from_the_store.py)."""
    from worker.flow.batches import LEVEL, BatchItem
    from worker.flow.circuit import Circuit
    from worker.flow.controls import FlowControls

    r = redis_server.client(decode_responses=True)
    settings = Settings(redis_url=redis_server.url)
    schedule = RetrySchedule(r)
    flow = FlowControls(r, settings, schedule)
    assert Circuit(r, DESTINATIONS["trademax"].namespace, failures=1).report("failed") == "opened"
    stock = {"warehouse_id": "nw", "artno": "A", "quantity": 4, "event_id": "E1", "type": "absolute",
             "occurred_at": "2024-05-01T10:00:00.000000Z"}
    flow.parking("stocktrim").park("stock.adjust:E1", {"task": "stocktrim.stock.adjust", "event": stock})
    flow.parking("stocktrim").park("stock.adjust:E2", {"task": "stocktrim.stock.adjust", "event": stock})
    assert flow.batches("kaching").add(BatchItem(
        ref="stock.adjust:E1", kind=LEVEL, operation="stock.adjust", key="E1", fingerprint="f" * 64,
        message=stock, enqueued_at=time.time())).status == "added"

    server, thread = serve(settings, "127.0.0.1", 0)
    try:
        got = scrape(server.server_port)
    finally:
        server.shutdown()

    def gauge(name: str, **labels: str) -> float | None:
        return got.get((f"wms_relay_{name}",) * 2 + (tuple(sorted(labels.items())),))

    assert {state: gauge("circuit_state", destination="trademax", state=state)
            for state in ("closed", "open", "half_open")} == {"closed": 0, "open": 1, "half_open": 0}
    assert {state: gauge("circuit_state", destination="kaching", state=state)
            for state in ("closed", "open", "half_open")} == {"closed": 1, "open": 0, "half_open": 0}
    assert {name: gauge("parked_deliveries", destination=name) for name in DESTINATIONS} == {
        name: (2 if name == "stocktrim" else 0) for name in DESTINATIONS}
    assert gauge("batch_pending", destination="kaching") == 1
    assert gauge("batch_pending", destination="stock2shop") == 0
    assert gauge("batch_pending", destination="trademax") is None  # not a bulk destination
    assert {name: gauge("destination_paused", destination=name) for name in DESTINATIONS} == {
        name: 0 for name in DESTINATIONS}
