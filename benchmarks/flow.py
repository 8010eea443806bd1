"""Flow control measured through real processes (docs/flow-control.md, docs/benchmarks.md "Flow control").

    python benchmarks/flow.py [--only bulk|limit|outage] [--outage-seconds 120] [--rate 1000] [--seconds 30]

- **bulk**: absolute counts at ``--rate`` per second over 100 SKUs for ``--seconds`` into the ka-ching,
  StockTrim and Stock2Shop sandboxes (Stock2Shop's at 1 request/s, the relay's limit 1; its catalog loaded
  first through ``wms-relay catalog import``), batched (the defaults: 500 a request, one a second); two
  ``wms-relay worker`` processes flush them.  The counts enter as the WMS's task hands them on —
  ``worker.delivery.pipeline.fan_out``: accepted in each destination's ledger and added to its batch —
  called by this process's four threads at the given rate (a Celery task per count could not be fed at
  1,000/s on this 2-core machine: the whole pipeline runs ~325 events/s per worker process, "Throughput"
  above).  Reported per destination: requests per count, whether its final levels equal the newest counts,
  and enqueue→delivered p50/p99 of the delivered counts (from the ledger's own times) against BATCH_SECONDS
  + 2 × the sandbox's latency, that latency measured in the same run (the median latency of the batch
  requests, from the workers' attempt lines).
- **limit**: 2 worker processes × 16 threads against Trademax's sandbox with ``TRADEMAX_MAX_RPS=20``: the
  requests the sandbox received in its busiest one-second window, and the achieved rate; the baseline is the
  same workload, same workers, without the limit.
- **outage**: the Trademax sandbox answers 500 to everything for ``--outage-seconds`` while 2,000 events are
  queued and two workers run: requests it received during the outage against the probes sent; after it, every
  event delivered and the attempts counted beyond one per event.  Baseline: the same with the circuit breaker
  off (``TRADEMAX_CIRCUIT_FAILURES`` = 10⁹), 500 events, a third of the outage.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import RelayRun, catalog_rows, wait_until  # noqa: E402

BULK = ("kaching", "stocktrim", "stock2shop")
FEEDERS = 4  # threads feeding the counts (100 SKUs: 25 each, so each SKU's counts come in order)
LOCATIONS = {"KACHING_LOCATIONS": "nw=shop-1", "STOCKTRIM_LOCATIONS": "nw=NW",
             "STOCK2SHOP_LOCATIONS": "nw=Main"}
STOCK_PATHS = {"kaching": "/imports/stock", "stocktrim": "/api/inventory", "stock2shop": "/v1/products/queue"}
LEVEL_OF = {"kaching": ("shop-1",), "stocktrim": ("NW",), "stock2shop": ("Main",)}


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def relative(event_id: str, i: int) -> dict:
    """A relative stock adjustment (Trademax only: no other destination is on in these runs)."""
    return {"event_id": event_id, "occurred_at": iso(time.time()), "artno": f"A-{i % 50}",
            "warehouse_id": "nw", "quantity": 1, "type": "relative", "reason": 2}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def busiest_second(moments: list[float]) -> int:
    moments, best, low = sorted(moments), 0, 0
    for high, moment in enumerate(moments):
        while moments[low] <= moment - 1.0:
            low += 1
        best = max(best, high - low + 1)
    return best


def _states(client, namespace: str, operation: str, keys: list[str]) -> list:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hget(f"{namespace}:event:{operation}:{key}", "s")
    return pipe.execute()


# -- bulk -------------------------------------------------------------------------------------------------
def bulk(workdir: Path, rate: float, seconds: float, skus: int = 100) -> list[str]:
    from worker.delivery.pipeline import fan_out
    from worker.delivery.relay import build_relay
    from worker.destinations.table import DESTINATIONS
    from worker.settings import Settings
    from tasks.events import validate_event

    others = {"kaching": (), "stocktrim": (), "stock2shop": ("--max-rps", "1")}
    with RelayRun(workdir, others=others, settings={**LOCATIONS, "STOCK2SHOP_MAX_RPS": "1"},
                  short_timeouts=False) as run:
        # Stock2Shop's catalog is required (its strict sandbox ignores a product without a title): the SKUs'
        # rows through the real `wms-relay catalog import`, every artno a variant named as itself.
        run.import_catalog("stock2shop", catalog_rows(f"SKU-{k}" for k in range(skus)))
        run.start_worker()
        run.start_worker()
        relay = build_relay(Settings.from_env(run.env), sends=False)
        newest: dict[str, int] = {}
        total, started = int(rate * seconds), time.time() + 0.5

        def feed(part: int) -> None:  # count i goes to feeder i % FEEDERS: each feeder has its own SKUs
            for i in range(part, total, FEEDERS):
                due = started + i / rate
                if due > time.time():
                    time.sleep(due - time.time())
                artno, quantity = f"SKU-{i % skus}", (i * 7919) % 1000
                event = validate_event("stock.adjust", {
                    "event_id": f"B-{i}", "occurred_at": iso(time.time()), "artno": artno,
                    "warehouse_id": "nw", "quantity": quantity, "type": "absolute"})
                fan_out(relay, event)
                newest[artno] = quantity

        feeders = [threading.Thread(target=feed, args=(part,)) for part in range(FEEDERS)]
        for feeder in feeders:
            feeder.start()
        for feeder in feeders:
            feeder.join()
        fed = time.time() - started
        client = run.redis(decode_responses=True)
        keys = [f"B-{i}" for i in range(total)]
        final = {"delivered", "superseded", "dead", "uncertain"}
        for name in BULK:
            namespace = DESTINATIONS[name].namespace
            wait_until(lambda: all(s in final for s in _states(client, namespace, "stock.adjust", keys)),
                       120, f"{name}'s counts to settle", 1.0)
        lines = [f"fed {total} counts in {fed:.1f} s ({total / fed:.0f}/s) over {skus} SKUs"]
        latencies = _batch_latencies(workdir)
        for name in BULK:
            lines.append(_bulk_line(run, client, name, keys, newest, total, latencies.get(name, [])))
        return lines


def _batch_latencies(workdir: Path) -> dict[str, list[float]]:
    """Latency (s) of every batch request each destination answered, from the workers' attempt lines."""
    import re

    found: dict[str, list[float]] = {}
    line = re.compile(r"attempt destination=(\w+) operation=stock\.adjust key=batch:.*?latency_ms=([\d.]+)")
    for log in workdir.glob("worker*.log"):
        for match in line.finditer(log.read_text(errors="replace")):
            found.setdefault(match.group(1), []).append(float(match.group(2)) / 1000)
    return found


def _bulk_line(run, client, name, keys, newest, total, latencies) -> str:
    from worker.destinations.table import DESTINATIONS
    from worker.store.records import parse_record

    namespace = DESTINATIONS[name].namespace
    states = _states(client, namespace, "stock.adjust", keys)
    delivered = [key for key, state in zip(keys, states) if state == "delivered"]
    pipe = client.pipeline(transaction=False)
    for key in delivered:
        pipe.hgetall(f"{namespace}:event:stock.adjust:{key}")
    waits = []
    for key, raw in zip(delivered, pipe.execute()):
        record = parse_record("stock.adjust", key, raw)
        times = {step["to"]: step["at"] for step in record.history if "to" in step}
        waits.append(times["delivered"] - record.created_at)
    sandbox = run.others[name]
    requests = [r for r in sandbox.requests() if r["path"].lower() == STOCK_PATHS[name]]
    stock = sandbox.state()["stock"]
    level = stock.get(LEVEL_OF[name][0], {})
    wrong = [artno for artno, quantity in newest.items() if level.get(artno) != quantity]
    latency = statistics.median(latencies) if latencies else float("nan")
    budget = 1.0 + 2 * latency
    p50, p99 = percentile(waits, 50), percentile(waits, 99)
    return (f"| {DESTINATIONS[name].title} | {len(requests)} | {len(requests) / total:.4f} | "
            f"{'yes' if not wrong else f'NO ({len(wrong)} differ)'} | {len(delivered)} | "
            f"{p50 * 1000:.0f} / {p99 * 1000:.0f} ms | {latency * 1000:.1f} ms | {budget * 1000:.0f} ms | "
            f"{'met' if p99 <= budget else 'MISSED'} |")


# -- limit ------------------------------------------------------------------------------------------------
def limit(workdir: Path, events: int = 600) -> list[str]:
    lines = []
    with RelayRun(workdir, settings={"WORKER_CONCURRENCY": "16"}, short_timeouts=False) as run:
        run.start_scheduler()
        for label, max_rps in (("baseline: no limit", "0"), ("TRADEMAX_MAX_RPS=20", "20")):
            run.env["TRADEMAX_MAX_RPS"] = max_rps
            run.sandbox.reset()
            tag = max_rps
            batch = [relative(f"L{tag}-{i}", i) for i in range(events)]
            run.enqueue("stock.adjust", batch)
            run.start_worker(concurrency=16)
            run.start_worker(concurrency=16)
            client = run.redis(decode_responses=True)
            keys = [e["event_id"] for e in batch]
            wait_until(lambda: all(s == "delivered" for s in _states(client, "wms", "stock.adjust", keys)),
                       300, "every event delivered", 0.5)
            run.stop_workers()
            moments = [r["at"] for r in run.sandbox.requests() if r["method"] == "PATCH"]
            achieved = (len(moments) - 1) / (max(moments) - min(moments))
            lines.append(f"| {label} | {len(moments)} | {busiest_second(moments)} | {achieved:.1f} rps"
                         + (f" ({achieved / 20:.0%} of 20)" if max_rps != "0" else "") + " |")
    return lines


# -- outage -----------------------------------------------------------------------------------------------
def outage(workdir: Path, outage_seconds: float, events: int = 2000) -> list[str]:
    lines = []
    for label, failures, count, down in (
            ("baseline: circuit off", "1000000000", events // 4, outage_seconds / 3),
            ("circuit breaker (10 in a row, probe every 30 s)", "10", events, outage_seconds)):
        with RelayRun(workdir / label.split(":")[0].split(" ")[0], short_timeouts=False,
                      settings={"TRADEMAX_CIRCUIT_FAILURES": failures, "RETRY_CAP_SECONDS": "30"}) as run:
            run.sandbox.set_faults(fail_rate=1.0)
            batch = [relative(f"O-{i}", i) for i in range(count)]
            run.enqueue("stock.adjust", batch)
            run.start_scheduler()
            run.start_worker()
            run.start_worker()
            time.sleep(down)
            during = run.sandbox.requests()
            run.sandbox.set_faults(fail_rate=0.0)
            healed = time.time()
            client = run.redis(decode_responses=True)
            keys = [e["event_id"] for e in batch]
            wait_until(lambda: all(s == "delivered" for s in _states(client, "wms", "stock.adjust", keys)),
                       600, "every event delivered after the outage", 1.0)
            after = time.time() - healed
            ledger = run.ledger()
            attempts = sum(ledger.get("stock.adjust", key).attempts for key in keys)
            probes = sum(1 for r in during if r["method"] == "GET")
            sends = sum(1 for r in during if r["method"] == "PATCH")
            lines.append(f"| {label} | {count} | {down:.0f} s | {len(during)} ({sends} sends, {probes} "
                         f"probes) | {attempts - count} | {after:.0f} s |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("bulk", "limit", "outage"))
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--outage-seconds", type=float, default=600.0)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wms-flow-") as tmp:
        workdir = args.workdir or Path(tmp)
        if args.only in (None, "bulk"):
            print("| destination | requests | per count | final levels = newest | delivered counts | "
                  "enqueue→delivered p50 / p99 | sandbox latency | budget | p99 |")
            print("|---|---:|---:|---|---:|---|---:|---:|---|")
            print("\n".join(bulk(workdir / "bulk", args.rate, args.seconds)))
        if args.only in (None, "limit"):
            print("\n| run | requests | busiest 1-s window | achieved |\n|---|---:|---:|---|")
            print("\n".join(limit(workdir / "limit")))
        if args.only in (None, "outage"):
            print("\n| run | events | outage | requests during it | attempts beyond one per event | "
                  "all delivered after |\n|---|---:|---:|---|---:|---:|")
            print("\n".join(outage(workdir / "outage", args.outage_seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
