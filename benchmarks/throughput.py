"""Pipeline throughput and latency through the real processes, each against a baseline from the same run.

Run: ``python benchmarks/throughput.py`` (or ``make bench``; ~6 minutes).  Two scenarios, each with its own
valkey-server, sandbox Trademax and ``wms-relay worker`` process(es) (threads pool, or ``--pool gevent``
for gevent's green threads — the baselines' workers run the same pool as the pipeline's, so that the ratio
compares the pipeline with Celery, not two pools; ``--workers N`` splits the threads over N processes),
started through ``benchmarks.noop_task`` so that the baseline tasks and the delivery tasks run in the same
worker command with the same settings (the service's defaults, LOG_LEVEL=INFO):

* **0 ms** — the sandbox answers at once; 16 threads.  Baseline: Celery no-op tasks (given the same
  events) drained from the same queues.  Target: the pipeline delivers ≥ 50% of the no-op rate.
* **200 ms** — every sandbox answer takes 200 ms; 64 threads.  Baseline: Little's law, 64 / 0.2 s =
  320/s.  Target: ≥ 85% of it.  Also measured for reference: "bare Celery + requests" (one unsigned
  POST per task, nothing else).

Throughput is a *drain*: N messages are queued while no worker runs (the events through the real
``wms-relay enqueue``), then the worker starts; the rate is N over the time from the first message taken
to the last one acknowledged.  Baseline and pipeline drains alternate, ``--rounds`` of each (default 3);
the medians are compared.  Latency (enqueue → delivered, from the ledger's own timestamps) is measured
separately at a steady, paced load of half the measured rate: at a full drain it would only measure the
queue.  Memory: ``MEMORY USAGE`` of every ledger record (and of the ledger's indexes) after the first 0 ms
drain, per delivered event; target ≤ 1 KiB.  The event mix: dispatch creates, receipts, relative and
absolute stock adjustments, a quarter each.

Store work per delivered event (``benchmarks.store_calls``): for every drain the commands the store ran
(``INFO commandstats`` before and after, the benchmark's own taken out; commands our Lua scripts run count
too), of which ``EVALSHA`` (our scripts); and, counted in the worker processes, client round trips and
commands sent — in one more drain of each kind after the timed rounds, whose rate is printed but not
compared: counting wraps every command the worker sends, and a counted worker is a slower one (more so
the pipeline's, which sends more).  Targets (issue 21): ≤ 45 commands and ≤ 4 of our script calls per
delivered event.

The baseline tasks run from their own queue (``benchmarks.noop_task``): the relay's queues dead-letter any
task that is not the relay's, and a baseline drain that leaves a dead letter stops the run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import RelayRun, wait_until  # noqa: E402
from benchmarks.noop_task import BARE_POST_TASK, BENCH_QUEUE, NOOP_TASK  # noqa: E402
from benchmarks.store_calls import COUNTS_ENV, CommandStats, CountedClient, read_counts  # noqa: E402

from worker.destinations.table import QUEUES  # noqa: E402
# The service's own defaults (RelayRun(short_timeouts=False)), logging as in production.
BENCH_SETTINGS = {"LOG_LEVEL": "INFO"}
LAUNCHER = "benchmarks.noop_task"
WATCHED = (*QUEUES, BENCH_QUEUE.name)
# Issue 21's targets for the store work of one delivered event (Trademax only).
COMMANDS_TARGET, SCRIPTS_TARGET = 45, 4


def events(count: int, tag: str) -> list[tuple[str, dict]]:
    """``count`` independent events (no waits, no superseding), a quarter of each kind."""
    made = []
    for i in range(count):
        at = f"2024-05-14T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
        kind = i % 4
        if kind == 0:
            made.append(("dispatch.create", {
                "transaction_id": f"{tag}-D{i}", "warehouse_id": "nw", "order_no": f"FO{i}",
                "order_type": "SO",
                "occurred_at": at, "packages": [{"package_id": 1, "weight": 12.5, "volume": 0.4,
                                                 "products": [{"line_no": 1000, "artno": f"A{i % 97}"}]}],
                "products": [{"line_no": 1000, "artno": f"A{i % 97}", "quantity": 2}]}))
        elif kind == 1:
            made.append(("receipt.create", {
                "transaction_id": f"{tag}-R{i}", "warehouse_id": "nw", "order_no": f"IO{i}",
                "order_type": "PO",
                "received_date": "2024-05-13", "occurred_at": at,
                "products": [{"line_no": 1000 * (n + 1), "artno": f"A{n}", "quantity": 3}
                             for n in range(3)]}))
        else:
            stock = {"event_id": f"{tag}-S{i}", "warehouse_id": "nw", "artno": f"{tag}-{i}",
                     "occurred_at": at}
            if kind == 2:
                stock.update(type="relative", quantity=-2, reason=2)
            else:
                stock.update(type="absolute", quantity=40)
            made.append(("stock.adjust", stock))
    return made


def publisher(relay: RelayRun):
    """A Celery client on the run's broker, configured as the service configures itself."""
    from celery import Celery

    from worker.broker.celery_config import celery_config
    from worker.settings import Settings

    app = Celery("bench-wms", set_as_current=False)
    app.conf.update(celery_config(Settings(), broker_url=relay.valkey.url))
    return app


def _backlog(watcher: CountedClient) -> int:
    return sum(watcher.lengths(WATCHED, unacked=True))


def _queued(watcher: CountedClient) -> int:
    return sum(watcher.lengths(WATCHED))


def drain(relay: RelayRun, count: int, concurrency: int, workers: int,
          counted: Path | None = None) -> tuple[float, dict]:
    """Start the workers on full queues; seconds from the first message taken to the last acknowledged,
    and the store work of the drain (commands the store ran, by name; with ``counted``, a directory, the
    workers' round trips and commands sent, counted in the workers), from the workers' start to their
    stop."""
    if counted is not None:
        relay.env[COUNTS_ENV] = str(counted)  # the workers count their store calls (benchmarks.store_calls)
    else:
        relay.env.pop(COUNTS_ENV, None)
    watcher = CountedClient(relay.redis())
    assert _backlog(watcher) == count, "the queues should hold exactly the prefilled messages"
    queued = _queued(watcher)
    stats = CommandStats(watcher)
    # All workers start together (each start waits for its own "ready"), while this thread watches for
    # the first message taken.
    options = {"concurrency": concurrency, "launcher": LAUNCHER}
    starting = [threading.Thread(target=relay.start_worker, kwargs=options) for _ in range(workers)]
    for thread in starting:
        thread.start()
    while _queued(watcher) == queued:
        time.sleep(0.002)
    started = time.monotonic()
    pids = [process.pid for process in relay.workers if process.poll() is None]  # this drain's
    cpu_before, switches_before = _cpu_seconds(pids), _switches(pids)
    while _backlog(watcher):
        time.sleep(0.005)
    seconds = time.monotonic() - started
    cpu_after, switches_after = _cpu_seconds(pids), _switches(pids)
    for thread in starting:
        thread.join()
    relay.stop_workers()
    work = {"ran": stats.delta(), "workers": workers, "seconds": seconds,
            "cpu": None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
            "switches": None if switches_before is None or switches_after is None
            else switches_after - switches_before}
    if counted is not None:
        trips, sent, processes = read_counts(counted)
        work.update(round_trips=trips, sent=sent, reported=processes)
        relay.env.pop(COUNTS_ENV)
    return seconds, work


def _cpu_seconds(pids: list[int]) -> float | None:
    """CPU time (user + system) the processes ``pids`` have used so far, from /proc (Linux); None elsewhere
    or when one has gone."""
    try:
        ticks = 0
        for pid in pids:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (stat's 14th and 15th fields)
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _switches(pids: list[int]) -> int | None:
    """Voluntary context switches of the processes ``pids`` so far, every thread's (``/proc/PID/status``
    counts only the main thread's: each thread's own is under ``/proc/PID/task/``), Linux; None elsewhere
    or when a process has gone.  With OS threads most are a thread waiting for the GIL or a socket; with
    gevent's one OS thread, for a socket."""
    try:
        total = 0
        for pid in pids:
            for task in os.listdir(f"/proc/{pid}/task"):
                try:
                    with open(f"/proc/{pid}/task/{task}/status") as status:
                        total += next(int(line.split()[1]) for line in status
                                      if line.startswith("voluntary_ctxt_switches"))
                except FileNotFoundError:
                    continue  # a thread that ended just now
        return total
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _dead_letters(relay: RelayRun) -> int:
    return int(relay.redis().zcard("wms:dead:open") or 0)


def baseline_rate(relay: RelayRun, task: str, count: int, concurrency: int,
                  workers: int, counted: Path | None = None) -> tuple[float, dict]:
    """Tasks per second of a benchmark task (benchmarks.noop_task) given the same events, from its own
    queue; and the drain's store work."""
    app = publisher(relay)
    letters = _dead_letters(relay)
    for operation, event in events(count, "base"):
        app.send_task(task, args=[event], queue=BENCH_QUEUE)
    seconds, work = drain(relay, count, concurrency, workers, counted)
    assert _dead_letters(relay) == letters, (
        f"the {task} drain left dead letters: its tasks did not run (see the worker log)")
    return count / seconds, work


def pipeline_rate(relay: RelayRun, count: int, concurrency: int, workers: int,
                  tag: str, counted: Path | None = None) -> tuple[float, dict]:
    batch = events(count, tag)
    for operation in ("dispatch.create", "receipt.create", "stock.adjust"):
        relay.enqueue(operation, [e for op, e in batch if op == operation])
    before = relay.ledger().final_totals()["delivered"]
    seconds, work = drain(relay, count, concurrency, workers, counted)
    delivered = relay.ledger().final_totals()["delivered"] - before
    assert delivered == count, f"only {delivered} of {count} delivered"
    return count / seconds, work


def per_event(work: dict, count: int) -> dict:
    """A drain's store work divided by its events: commands the store ran (all, EVALSHA, the five most
    frequent), and for a counted drain the workers' round trips and commands sent (all, EVALSHA)."""
    ran = work["ran"]
    found = {"commands": sum(ran.values()) / count, "evalsha": ran.get("evalsha", 0) / count,
             "top": [(name, n / count) for name, n in ran.most_common(6)],
             "cpu_ms": None if work["cpu"] is None else 1000 * work["cpu"] / count,
             "cpu_share": None if work["cpu"] is None else work["cpu"] / work["seconds"],
             "switches": None if work.get("switches") is None else work["switches"] / count}
    if "sent" in work:
        sent = work["sent"]
        found.update(round_trips=work["round_trips"] / count, sent=sum(sent.values()) / count,
                     sent_evalsha=sent.get("EVALSHA", 0) / count,
                     complete=work["reported"] == work["workers"])
    return found


def paced_latency(relay: RelayRun, count: int, rate: float, concurrency: int, workers: int,
                  tag: str) -> tuple[float, float]:
    """Enqueue→delivered p50 and p99 (seconds) with events arriving steadily at ``rate`` per second,
    admitted and published as ``wms-relay enqueue`` does."""
    from worker.destinations.table import queue_for
    from worker.delivery.pipeline import admit
    from worker.delivery.relay import build_relay
    from worker.settings import Settings

    for _ in range(workers):
        relay.start_worker(concurrency=concurrency, launcher=LAUNCHER)
    app = publisher(relay)
    store = build_relay(Settings(redis_url=relay.valkey.url), sends=False)
    batch = events(count, tag)
    start = time.monotonic()
    for n, (operation, event) in enumerate(batch):
        pause = start + n / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        admission = admit(store, operation, event)
        task = f"trademax.{operation}"
        app.send_task(task, args=[admission.event.to_message()], queue=queue_for(task))
    ledger = relay.ledger()
    keys = [(op, e.get("transaction_id") if op != "stock.adjust" else e["event_id"]) for op, e in batch]
    wait_until(lambda: all(ledger.get(op, key).state == "delivered" for op, key in keys[-20:]), 120,
               "the paced events to be delivered")
    latencies = []
    for op, key in keys:
        record = wait_until(lambda: (r := ledger.get(op, key)) and r.state == "delivered" and r, 60, key)
        delivered_at = next(h["at"] for h in record.history if h["to"] == "delivered")
        latencies.append(delivered_at - record.created_at)
    relay.stop_workers()
    cuts = statistics.quantiles(latencies, n=100)
    return cuts[49], cuts[98]


def memory_per_event(relay: RelayRun) -> tuple[float, float, int]:
    """Average ``MEMORY USAGE`` of a delivered event's record, and with the ledger's indexes added."""
    client = relay.redis()
    records = list(client.scan_iter("wms:event:*", count=1000))
    record_bytes = sum(client.memory_usage(key, samples=0) or 0 for key in records)
    index_bytes = sum(client.memory_usage(key, samples=0) or 0 for key in client.scan_iter("wms:ledger:*"))
    return record_bytes / len(records), (record_bytes + index_bytes) / len(records), len(records)


def scenario(workdir: Path, *, latency_ms: int, threads: int, workers: int, count: int, rounds: int,
             say, pool: str = "threads") -> dict:
    """Alternating baseline and pipeline drains (``rounds`` of each; medians), then the paced latency.
    Every worker of the scenario — the baselines' and the pipeline's — runs Celery's ``pool``
    (WORKER_POOL), or the ratio would compare two pools rather than the pipeline with Celery."""
    concurrency = threads // workers
    settings = {**BENCH_SETTINGS, "WORKER_CONCURRENCY": str(concurrency), "WORKER_POOL": pool}
    result = {"latency_ms": latency_ms, "threads": threads, "workers": workers, "count": count, "pool": pool,
              "baseline_runs": [], "bare_runs": [], "runs": [], "baseline_work": [], "work": []}
    task, runs = (NOOP_TASK, "baseline_runs") if latency_ms == 0 else (BARE_POST_TASK, "bare_runs")
    with RelayRun(workdir, settings=settings, sandbox_faults={"latency_ms": latency_ms},
                  short_timeouts=False) as relay:
        for n in range(rounds):  # timed, not counted in the workers
            rate, work = baseline_rate(relay, task, count, concurrency, workers)
            result[runs].append(rate)
            result["baseline_work"].append(per_event(work, count))
            rate, work = pipeline_rate(relay, count, concurrency, workers, f"L{latency_ms}R{n}")
            result["runs"].append(rate)
            result["work"].append(per_event(work, count))
            if n == 0 and latency_ms == 0:
                result["memory"] = memory_per_event(relay)
            done = result["work"][-1]
            say(f"  round {n + 1}: baseline {result[runs][-1]:.0f}/s ({_cpu(result['baseline_work'][-1])}), "
                f"pipeline {rate:.0f} delivered/s ({_cpu(done)}); "
                f"per event {done['commands']:.1f} store commands ({done['evalsha']:.2f} EVALSHA)")
            relay.sandbox.reset()  # the request log is never trimmed otherwise
        # One more drain of each, counted in the workers: round trips and commands sent per event.
        counts = workdir / "counts"
        counts.mkdir(exist_ok=True)
        rate, work = baseline_rate(relay, task, count, concurrency, workers, counted=counts)
        result["baseline_counted"] = {"rate": rate, **per_event(work, count)}
        rate, work = pipeline_rate(relay, count, concurrency, workers, f"L{latency_ms}C", counted=counts)
        result["counted"] = done = {"rate": rate, **per_event(work, count)}
        relay.sandbox.reset()
        say(f"  counted drains (rates not compared): baseline {result['baseline_counted']['rate']:.0f}/s, "
            f"pipeline {rate:.0f}/s; per event {done['round_trips']:.1f} round trips, "
            f"{done['sent']:.1f} commands sent")
        result["baseline"] = (statistics.median(result["baseline_runs"]) if latency_ms == 0
                              else threads / (latency_ms / 1000.0))
        result["rate"] = statistics.median(result["runs"])
        result["paced_rate"] = paced = result["rate"] / 2
        result["p50"], result["p99"] = paced_latency(relay, int(min(count, paced * 20)), paced, concurrency,
                                                     workers, f"P{latency_ms}")
        say(f"  latency at {paced:.0f}/s: p50 {result['p50'] * 1000:.0f} ms, "
            f"p99 {result['p99'] * 1000:.0f} ms")
    return result


def _cpu(work: dict) -> str:
    """The workers' CPU per event and their share of a core while a drain ran."""
    if work.get("cpu_ms") is None:
        return "worker CPU unknown"
    switches = "" if work.get("switches") is None else f", {work['switches']:.1f} voluntary switches"
    return f"worker CPU {work['cpu_ms']:.2f} ms per event, {work['cpu_share']:.0%} of a core{switches}"


def target_of(r: dict) -> float:
    """The share of the baseline the pipeline should reach: ≥ 50% of the no-op at 0 ms, ≥ 90% of the
    ideal at 200 ms (issue 21)."""
    return 0.50 if r["latency_ms"] == 0 else 0.90


def _median_work(works: list[dict], name: str) -> float:
    return statistics.median(w[name] for w in works)


def report(results: list[dict]) -> str:
    pools = ", ".join(sorted({r.get("pool", "threads") for r in results}))
    lines = [f"machine: nproc={os.cpu_count()}, {_memory()}, Python {platform.python_version()}; "
             f"worker pool: {pools} (the baselines' workers and the pipeline's alike)", "",
             "| sandbox latency | workers × threads | events per drain | baseline /s | delivered /s (runs) "
             "| % of baseline | target | paced at /s | p50 ms | p99 ms |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        target = target_of(r)
        if r["latency_ms"] == 0:
            base = f"no-op {r['baseline']:.0f} ({_runs(r['baseline_runs'])})"
        else:
            bare = statistics.median(r["bare_runs"])
            base = (f"ideal {r['baseline']:.0f}; bare Celery + requests {bare:.0f} ({_runs(r['bare_runs'])}) "
                    f"= {bare / r['baseline']:.0%}")
        share = 100 * r["rate"] / r["baseline"]
        lines.append(f"| {r['latency_ms']} ms | {r['workers']} × {r['threads'] // r['workers']} "
                     f"| {r['count']} | {base} | {r['rate']:.0f} ({_runs(r['runs'])}) | {share:.0f}% "
                     f"| ≥ {target:.0%} | {r['paced_rate']:.0f} | {r['p50'] * 1000:.0f} "
                     f"| {r['p99'] * 1000:.0f} |")
    lines += ["", "Store work per event (store commands: medians of the timed drains, the store's count, "
              "which includes the commands run inside scripts; round trips and commands sent: the counted "
              "drain, counted in the worker processes):", "",
              "| sandbox latency | drain | store commands | of which EVALSHA | most frequent | client round "
              "trips | commands sent | EVALSHA sent |", "|---:|---|---:|---:|---|---:|---:|---:|"]
    for r in results:
        for drain_name, works, counted in (("baseline", r["baseline_work"], r["baseline_counted"]),
                                           ("pipeline", r["work"], r["counted"])):
            top = ", ".join(f"{name} {n:.1f}" for name, n in works[len(works) // 2]["top"])
            partial = "" if counted["complete"] else " (some workers did not report)"
            lines.append(f"| {r['latency_ms']} ms | {drain_name} | {_median_work(works, 'commands'):.1f} "
                         f"| {_median_work(works, 'evalsha'):.2f} | {top} "
                         f"| {counted['round_trips']:.1f}{partial} "
                         f"| {counted['sent']:.1f} | {counted['sent_evalsha']:.2f} |")
    lines += ["", "Worker CPU per event (user + system of the worker processes from the first message taken "
              "to the last acknowledged, /proc; medians of the timed drains) and voluntary context switches:",
              ""]
    for r in results:
        for drain_name, works in (("baseline", r["baseline_work"]), ("pipeline", r["work"])):
            known = [w for w in works if w.get("cpu_ms") is not None]
            if known:
                switched = [w for w in known if w.get("switches") is not None]
                switches = (f", {_median_work(switched, 'switches'):.1f} voluntary context switches per event"
                            if switched else "")
                lines.append(f"- {r['latency_ms']} ms, {drain_name}: {_median_work(known, 'cpu_ms'):.2f} ms, "
                             f"{_median_work(known, 'cpu_share'):.0%} of a core{switches}")
    for r in results:
        if "memory" in r:
            record, with_indexes, n = r["memory"]
            lines.append(f"\nRedis memory per delivered event ({n} events): {record:.0f} B (record), "
                         f"{with_indexes:.0f} B with the ledger's indexes; target ≤ 1024 B")
    lines.append("")
    lines += _missed(results)
    return "\n".join(lines)


def _missed(results: list[dict]) -> list[str]:
    said = []
    for r in results:
        target = target_of(r)
        if r["rate"] < target * r["baseline"]:
            said.append(f"MISSED: {r['latency_ms']} ms, {r['workers']} worker(s): "
                        f"{r['rate'] / r['baseline']:.0%} of baseline (target {target:.0%}; short by "
                        f"{target * r['baseline'] - r['rate']:.0f}/s)")
        if r["bare_runs"]:
            bare_share = statistics.median(r["bare_runs"]) / r["baseline"]
            if r["rate"] / r["baseline"] < bare_share - 0.05:
                said.append(f"MISSED: {r['latency_ms']} ms: {r['rate'] / r['baseline']:.0%} of the ideal, "
                            f"more than 5 points below bare Celery + requests ({bare_share:.0%})")
        commands, scripts = _median_work(r["work"], "commands"), _median_work(r["work"], "evalsha")
        if commands > COMMANDS_TARGET or scripts > SCRIPTS_TARGET:
            said.append(f"MISSED: {r['latency_ms']} ms: {commands:.1f} store commands and {scripts:.2f} "
                        f"script calls per delivered event (targets ≤ {COMMANDS_TARGET} and "
                        f"≤ {SCRIPTS_TARGET})")
    return said or ["every target met"]


def _runs(rates: list[float]) -> str:
    return ", ".join(f"{rate:.0f}" for rate in rates)


def _memory() -> str:
    try:
        kib = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1])
        return f"{kib / 1024 / 1024:.1f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        return "RAM unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description="pipeline throughput against same-run baselines")
    parser.add_argument("--events", type=int, default=4000, help="per drain (default 4000)")
    parser.add_argument("--rounds", type=int, default=3, help="drains of each kind per scenario (median)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes sharing the threads")
    parser.add_argument("--only", choices=("0", "200"), default=None, help="run one scenario")
    parser.add_argument("--pool", choices=("threads", "gevent"), default="threads",
                        help="Celery's pool in every worker, the baselines' too (WORKER_POOL; "
                             "default threads)")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="wms-bench-") as tmp:
        for latency, threads in ((0, 16), (200, 64)):
            if args.only is not None and int(args.only) != latency:
                continue
            print(f"scenario: sandbox latency {latency} ms, {args.workers} worker(s), "
                  f"{threads} threads in all, {args.pool} pool")
            results.append(scenario(Path(tmp) / f"l{latency}", latency_ms=latency, threads=threads,
                                    workers=args.workers, count=args.events, rounds=args.rounds, say=print,
                                    pool=args.pool))
    print(report(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
