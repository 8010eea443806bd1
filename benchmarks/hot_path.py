"""Where the store calls and the time of one delivered event go: the task's part, in one process.

Run: ``python benchmarks/hot_path.py [--events 400] [--profile]`` (~20 s).  A private valkey-server and
the sandbox Trademax (no latency); the events of the throughput benchmark (a quarter each of dispatch
creates, receipts, relative and absolute stock counts) are admitted as ``wms-relay enqueue`` admits
them, then each is delivered by ``worker.delivery.pipeline.deliver`` in this process — what a worker's
task does, without Celery.  Per kind of event it prints the store round trips and commands this process
sent (counted in redis-py, ``benchmarks.store_calls``), the commands the store ran (``INFO
commandstats``: those our scripts run inside included) and this process's CPU time per event
(``time.process_time``: the task's Python, without the store's and the sandbox's), after a warm-up
(:func:`warm_up`).
``--profile``: cProfile of the deliveries, the functions with the most time of their own and the store
calls by caller.

docs/benchmarks.md ("Store work per event") keeps the tables this printed before and after issue 21.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import store_calls  # noqa: E402
from benchmarks._harness import Sandbox, Valkey  # noqa: E402
from benchmarks.throughput import events  # noqa: E402

WARM_UP_SECONDS = 1.1  # longer than a worker's look at the flow is trusted (worker.flow.look)
KINDS = ("dispatch.create", "receipt.create", "stock.adjust relative", "stock.adjust absolute")
# Where a delivery's time goes (--profile): the functions whose inclusive time makes each part.
PARTS = (("store calls (redis-py: scripts, commands, pipelines)",
          (("redis/client.py", "_execute_command"), ("redis/client.py", "execute"))),
         ("the destination's HTTP call (requests)", (("requests/sessions.py", "request"),
                                                     ("worker/destinations/transport.py", "request"))),
         ("signing", (("signing/canonical.py", "sign"),)),
         ("validation (marshmallow)", (("tasks/events.py", "validate_event"),)),
         ("logging", (("logging/__init__.py", "_log"),)))


def kind_of(operation: str, event: dict) -> str:
    return f"{operation} {event['type']}" if operation == "stock.adjust" else operation


def measure(relay, batch, counter: store_calls.ClientCounter, watcher: store_calls.CountedClient,
            profile: cProfile.Profile | None) -> dict:
    from worker.delivery.pipeline import deliver

    found = {}
    for kind in KINDS:
        chosen = [(op, e) for op, e in batch if kind_of(op, e) == kind]
        stats = store_calls.CommandStats(watcher)
        before = counter.snapshot()
        started, cpu_started = time.perf_counter(), time.process_time()
        if profile is not None:
            profile.enable()
        for operation, event in chosen:
            state = deliver(relay, operation, event, owner=f"hot:{uuid.uuid4().hex[:8]}")
            assert state == "delivered", f"{operation} {event}: {state}"
        if profile is not None:
            profile.disable()
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        trips, sent = counter.since(before)
        ran = stats.delta()
        n = len(chosen)
        found[kind] = {"events": n, "ms": 1000 * seconds / n, "cpu_ms": 1000 * cpu_seconds / n,
                       "round_trips": trips / n,
                       "sent": {k: v / n for k, v in sent.most_common()},
                       "ran": {k: v / n for k, v in ran.most_common()}}
    return found


def report(found: dict) -> str:
    lines = ["| event | ms each | CPU ms each | round trips | commands sent (by name) | store commands run "
             "| of which |", "|---|---:|---:|---:|---|---:|---|"]
    for kind, f in found.items():
        sent = ", ".join(f"{name} {n:.2g}" for name, n in f["sent"].items())
        ran = ", ".join(f"{name} {n:.2g}" for name, n in list(f["ran"].items())[:8])
        lines.append(f"| {kind} | {f['ms']:.2f} | {f['cpu_ms']:.2f} | {f['round_trips']:.2f} | {sent} "
                     f"| {sum(f['ran'].values()):.1f} | {ran} |")
    everything = Counter()
    for f in found.values():
        everything.update(f["ran"])
    trips = sum(f["round_trips"] for f in found.values()) / len(found)
    evalsha = sum(f["sent"].get("EVALSHA", 0) for f in found.values()) / len(found)
    cpu = sum(f["cpu_ms"] for f in found.values()) / len(found)
    lines.append(f"\nmix average: {trips:.2f} round trips, {evalsha:.2f} EVALSHA sent, "
                 f"{sum(everything.values()) / len(found):.1f} store commands run per event; "
                 f"{cpu:.2f} ms of this process's CPU per event")
    return "\n".join(lines)


def time_report(stats: pstats.Stats, events: int) -> str:
    """The deliveries' time in parts (inclusive times of PARTS' functions; signing is inside the HTTP
    call's part, not beside it), and the Python function calls per delivery (cProfile's count: stable
    from run to run, however loaded the machine)."""
    def inclusive(file_part: str, name: str) -> float:
        return sum(row[3] for (file, _, function), row in stats.stats.items()
                   if function == name and file.endswith(file_part))

    total = inclusive("worker/delivery/pipeline.py", "deliver")
    lines = ["| part of a delivery (cProfile, one thread) | s | share |", "|---|---:|---:|"]
    counted = 0.0
    for title, functions in PARTS:
        seconds = sum(inclusive(*f) for f in functions)
        if title != "signing":
            counted += seconds
        lines.append(f"| {title} | {seconds:.2f} | {seconds / total:.0%} |")
    lines.append(f"| everything else (the pipeline's own Python) | {total - counted:.2f} "
                 f"| {(total - counted) / total:.0%} |")
    lines.append(f"| all of deliver() | {total:.2f} | 100% |")
    lines.append(f"\nPython function calls per delivery: {stats.total_calls / events:,.0f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="store calls and time of one delivered event, by kind")
    parser.add_argument("--events", type=int, default=400, help="events in all (a quarter of each kind)")
    parser.add_argument("--profile", action="store_true", help="cProfile the deliveries")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wms-hot-") as tmp:
        valkey = Valkey(Path(tmp) / "valkey").start()
        sandbox = Sandbox(Path(tmp) / "sandbox.log")
        try:
            os.environ.update({"REDIS_URL": valkey.url, "TRADEMAX_BASE_URL": sandbox.base_url,
                               "WMS_RELAY_VAR_DIR": str(Path(tmp) / "var"), **sandbox.env})
            from worker.delivery.pipeline import admit
            from worker.delivery.relay import build_relay
            from worker.settings import Settings

            from worker.observe.logs import configure

            settings = Settings.from_env({**os.environ, "LOG_LEVEL": "INFO"})
            log_sink = open(os.devnull, "w")
            configure(settings, stream=log_sink)  # the worker's log lines, formatted, written nowhere
            counter = store_calls.ClientCounter.install()
            relay = build_relay(settings)
            batch = events(args.events, "hot")
            for operation, event in batch:
                assert admit(relay, operation, event).state == "accepted"
            warm_up(relay)
            profile = cProfile.Profile() if args.profile else None
            found = measure(relay, batch, counter, store_calls.CountedClient(valkey_client(valkey)), profile)
            print(report(found))
            if profile is not None:
                print("\n" + time_report(pstats.Stats(profile), len(batch)))
                pstats.Stats(profile).sort_stats("tottime").print_stats(20)
        finally:
            sandbox.stop()
            valkey.kill()
    return 0


def warm_up(relay) -> None:
    """Deliver one event of each kind and wait out a worker's look at the flow (worker.flow.look, 1 s):
    a fresh store has no success in its circuit, so the first second's sends all ask the gate's script;
    a running worker's do not.  What follows is measured as a running worker delivers."""
    from worker.delivery.pipeline import deliver

    for operation, event in events(4, "warm"):
        deliver(relay, operation, event, owner=f"warm:{uuid.uuid4().hex[:8]}")
    time.sleep(WARM_UP_SECONDS)


def valkey_client(valkey: Valkey):
    import redis

    return redis.Redis.from_url(valkey.url)


if __name__ == "__main__":
    sys.exit(main())
