"""Every stock channel end to end: a real valkey-server, real worker processes, the real scheduler and the
four sandboxes (Trademax, ka-ching, StockTrim, Stock2Shop) as processes over loopback.

1. One absolute count per warehouse and product reaches every destination that lists the warehouse, a
   relative adjustment reaches Trademax and ka-ching only, and the four sandboxes' stock agrees with the
   counts; StockTrim's forecast is run once for the whole burst, not per event.
2. A ka-ching outage (its sandbox process gone, connections refused) delays only ka-ching: Trademax's
   deliveries of the same events are delivered while ka-ching's keep failing and retrying, none of them is
   sent to Trademax twice, and once ka-ching is back every one of its deliveries lands (the adjustment
   added once)."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.pipeline import make_pipeline, wait_until
from tests.fixtures.sandbox import relay_environment, start_destination_sandbox

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
OUTAGE_SECONDS = 12  # with RETRY_CAP_SECONDS=1 every ka-ching delivery fails ~10 times meanwhile


def count(event_id: str, artno: str, warehouse: str, quantity: int, at: str, kind: str = "absolute") -> dict:
    event = {"event_id": event_id, "occurred_at": at, "artno": artno, "warehouse_id": warehouse,
             "quantity": quantity, "type": kind}
    if kind == "relative":
        event["reason"] = 2
    return event


def import_stock2shop_catalog(pipeline, artnos) -> None:
    """Stock2Shop's catalog is required (its strict sandbox ignores a product without a title or with a
    wrong product/variant relation): the artnos' rows through `wms-relay catalog import`, as variants of one
    product named as themselves."""
    rows = "".join(f"{a},P-A,{a},Product A,true\n" for a in artnos)
    done = subprocess.run([sys.executable, "-m", "worker.cli", "catalog", "import", "stock2shop", "-"],
                          cwd=ROOT, env=pipeline.env, input="artno,product_code,variant_code,title,active\n"
                          + rows, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and f"added {len(artnos)}" in done.stdout, done.stdout + done.stderr


@pytest.fixture
def others():
    started = {}

    def start(api: str, *args: str, port: int = 0):
        running = started[api] = start_destination_sandbox(api, *args, port=port)
        return running

    yield start, started
    for running in started.values():
        running.stop()


def test_one_count_per_warehouse_reaches_all_four_and_their_states_agree(redis_server, sandbox, tmp_path,
                                                                         others):
    start, _ = others
    kaching, stocktrim = start("kaching"), start("stocktrim")
    stock2shop = start("stock2shop", "--max-rps", "0")
    env = {**relay_environment(kaching), **relay_environment(stocktrim), **relay_environment(stock2shop),
           "KACHING_LOCATIONS": "nw=shop-nw,se=shop-se", "STOCKTRIM_LOCATIONS": "nw=NW,se=SE",
           "STOCK2SHOP_LOCATIONS": "nw=Main"}
    pipeline = make_pipeline(redis_server, sandbox(), tmp_path, **env)
    try:
        pipeline.start_scheduler()
        pipeline.start_worker()
        artnos = ["A-1", "A-2"]
        import_stock2shop_catalog(pipeline, artnos)
        counts = [count(f"c-{w}-{a}", a, w, q, "2024-05-14T08:00:00Z")
                  for (w, a), q in zip([(w, a) for w in ("nw", "se") for a in artnos], (10, 20, 30, 40))]
        pipeline.enqueue("stock.adjust", counts)
        expected_routes = {"nw": ("trademax", "kaching", "stocktrim", "stock2shop"),
                           "se": ("trademax", "kaching", "stocktrim")}
        for event in counts:
            for destination in expected_routes[event["warehouse_id"]]:
                pipeline.wait_for_state("stock.adjust", event["event_id"], "delivered",
                                        destination=destination)
            if event["warehouse_id"] == "se":
                assert pipeline.record("stock.adjust", event["event_id"], "stock2shop") is None
        # After the count has landed everywhere: an adjustment (Trademax and ka-ching only).
        relative = count("r-nw-A-1", "A-1", "nw", -3, "2024-05-14T09:00:00Z", kind="relative")
        pipeline.enqueue("stock.adjust", relative)
        for destination in ("trademax", "kaching"):
            pipeline.wait_for_state("stock.adjust", "r-nw-A-1", "delivered", destination=destination)
        assert pipeline.record("stock.adjust", "r-nw-A-1", "stocktrim") is None

        want = {(e["warehouse_id"], e["artno"]): e["quantity"] for e in counts}
        want[("nw", "A-1")] -= 3
        trademax_stock = {(s["warehouse_id"], s["artno"]): s["quantity"]
                          for s in pipeline.sandbox.state()["stock"]}
        assert trademax_stock == want
        kaching_stock = kaching.state()["stock"]
        assert {(w, a): kaching_stock[f"shop-{w}"][a] for w, a in want} == want
        stocktrim_stock = stocktrim.state()["stock"]
        assert {(w, a): stocktrim_stock[w.upper()][a] for w, a in want if (w, a) != ("nw", "A-1")} == \
            {k: v for k, v in want.items() if k != ("nw", "A-1")}
        assert stocktrim_stock["NW"]["A-1"] == 10  # levels only: the adjustment is not StockTrim's
        assert stock2shop.state()["stock"] == {"Main": {"A-1": 10, "A-2": 20}}
        assert stock2shop.state()["ignored"] == [] and kaching.state()["failed"] == []
        # One forecast run for the whole burst (the scheduler's housekeeping, every few seconds).
        wait_until(lambda: stocktrim.state()["forecast_runs"]["count"] >= 1, 30, "StockTrim's forecast run")
        time.sleep(6)  # a housekeeping round later: still one
        assert stocktrim.state()["forecast_runs"]["count"] == 1
    finally:
        pipeline.stop()


def test_a_kaching_outage_delays_only_kaching(redis_server, sandbox, tmp_path, others):
    start, started = others
    kaching = start("kaching")
    port = int(kaching.base_url.rstrip("/").rsplit(":", 1)[1])
    env = {**relay_environment(kaching), "KACHING_LOCATIONS": "nw=shop-nw"}
    pipeline = make_pipeline(redis_server, sandbox(), tmp_path, **env)
    try:
        pipeline.start_scheduler()
        pipeline.start_worker()
        kaching.stop()  # ka-ching is down: connections refused
        down_at = time.monotonic()
        first = [count(f"o-{i}", f"B-{i}", "nw", i, "2024-05-14T08:00:00Z") for i in range(6)]
        # An adjustment of a product without a count here: ka-ching applies an adjustment and a count of
        # one product in the order they arrive (as Trademax does), which an outage may reorder.
        adjustment = count("o-adj", "D-0", "nw", 5, "2024-05-14T09:00:00Z", kind="relative")
        pipeline.enqueue("stock.adjust", first + [adjustment])
        events = first + [adjustment]
        for event in events:  # Trademax gets every one while ka-ching is down
            pipeline.wait_for_state("stock.adjust", event["event_id"], "delivered", timeout=60)
        trademax_done = time.monotonic() - down_at
        # More events during the outage flow just the same.
        later = [count(f"o-later-{i}", f"C-{i}", "nw", 100 + i, "2024-05-14T08:00:00Z") for i in range(3)]
        pipeline.enqueue("stock.adjust", later)
        events += later
        for event in later:
            pipeline.wait_for_state("stock.adjust", event["event_id"], "delivered", timeout=60)
        states = {pipeline.state("stock.adjust", e["event_id"], "kaching") for e in events}
        assert states <= {"accepted", "sending", "retrying"}, states
        remaining = OUTAGE_SECONDS - (time.monotonic() - down_at)
        if remaining > 0:
            time.sleep(remaining)
        tried = [pipeline.record("stock.adjust", e["event_id"], "kaching").attempts for e in first]
        assert min(tried) >= 3, tried  # ka-ching kept being retried through the outage
        # ka-ching is back where the relay looks for it.
        start("kaching", port=port)
        for event in events:
            pipeline.wait_for_state("stock.adjust", event["event_id"], "delivered", destination="kaching",
                                    timeout=60)
        stock = started["kaching"].state()["stock"]["shop-nw"]
        assert stock == {**{f"B-{i}": i for i in range(6)}, "D-0": 5, **{f"C-{i}": 100 + i for i in range(3)}}
        # Trademax was sent each event exactly once, whatever ka-ching went through.
        for event in events:
            assert pipeline.record("stock.adjust", event["event_id"]).attempts == 1
        sent = [r for r in pipeline.sandbox.requests() if "stock-adjustment" in r["path"]]
        assert len(sent) == len(events)
        print(f"Trademax delivered {len(first) + 1} events {trademax_done:.1f} s into a ka-ching outage; "
              f"ka-ching attempts during the outage: {tried}")
    finally:
        pipeline.stop()
