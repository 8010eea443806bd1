"""The ingest door's admission rate and latency, against ``wms-relay enqueue`` measured in the same run.

Run: ``python benchmarks/ingest.py`` (~1 minute; ``make bench`` runs it too).  One valkey-server (AOF
on, as in production) and one ``wms-relay ingest`` process (waitress, 8 threads, LOG_LEVEL=INFO: one log
line per request); no worker, so what is measured is admission alone — validate, record in the ledger,
publish to the Celery queue.

* **Rate** — the same event mix as the throughput benchmark (dispatch creates, receipts, relative and
  absolute stock adjustments), new keys every round:
  - baseline: ``wms-relay enqueue OPERATION FILE`` run in this process (``worker.cli.main``: its parsing,
    relay and Celery publisher; the interpreter's start-up is left out), one call per operation;
  - HTTP: the same events POSTed in batches of 100 (JSON arrays) by 4 client threads.
  Rounds alternate (``--rounds``, default 3) and medians are compared.  Target: HTTP ≥ 80% of enqueue.
* **Latency** — single-event POSTs at a steady 100 requests/s (open loop: each request is due at its
  slot and its latency counts from that slot, so a slow answer cannot hide the ones queued behind it),
  for ``--seconds`` (default 20).  Target: p99 ≤ 50 ms.
* **One full POST** — the answer to one POST of INGEST_MAX_EVENTS (1,000) stock counts, one client, new
  keys each time (``--bulk-rounds``, default 5; median and slowest).  Target: ≤ 2 s on the 2-core machine
  the project runs on (issue 23.7: 10,000 events took 37.6 s to answer when each event cost three round
  trips; the door now admits a request's events in pipelined chunks).  For comparison, the same with
  1,000 invalid items (each its own dead letter, one Sentry report): printed, no target.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from benchmarks._harness import START_TIMEOUT, Valkey, _stop, wait_until  # noqa: E402
from benchmarks.throughput import events  # noqa: E402
from worker.store.embedded import free_port  # noqa: E402

BATCH = 100
CLIENT_THREADS = 4


def start_ingest(workdir: Path, redis_url: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "REDIS_URL": redis_url, "WMS_RELAY_VAR_DIR": str(workdir / "var"),
           "LOG_LEVEL": "INFO", "PYTHONPATH": str(ROOT)}
    for name in ("INGEST_TOKENS_FILE", "INGEST_HMAC_SECRETS", "SENTRY_DSN"):
        env.pop(name, None)
    port = free_port()
    log = open(workdir / "ingest.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "worker.cli", "ingest", "--port", str(port)], cwd=ROOT,
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"ingest exited; see {workdir / 'ingest.log'}")
        try:
            return requests.get(f"{url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_until(ready, START_TIMEOUT, "the ingest door to answer")
    return process, url


def by_operation(made: list[tuple[str, dict]]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for operation, event in made:
        grouped[operation].append(event)
    return grouped


def enqueue_rate(workdir: Path, redis_url: str, made: list[tuple[str, dict]]) -> float:
    """``wms-relay enqueue`` of the events, one call per operation, in this process."""
    from worker.cli import main

    files = {}
    for operation, batch in by_operation(made).items():
        path = workdir / f"enqueue-{operation}.jsonl"
        path.write_text("\n".join(json.dumps(event) for event in batch))
        files[operation] = path
    os.environ["REDIS_URL"] = redis_url
    started = time.perf_counter()
    for operation, path in files.items():
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = main(["enqueue", operation, str(path), "--json"])
        states = [json.loads(line)["state"] for line in out.getvalue().splitlines()]
        if code != 0 or states != ["accepted"] * len(by_operation(made)[operation]):
            raise RuntimeError(f"enqueue {operation} exited {code}: {set(states)}")
    return len(made) / (time.perf_counter() - started)


def http_rate(url: str, made: list[tuple[str, dict]]) -> float:
    """The events POSTed in batches of BATCH by CLIENT_THREADS threads; every event must come back 202."""
    batches: queue.Queue = queue.Queue()
    for operation, grouped in by_operation(made).items():
        for start in range(0, len(grouped), BATCH):
            batches.put((operation, json.dumps(grouped[start:start + BATCH]).encode()))
    failures: list[str] = []

    def client() -> None:
        session = requests.Session()
        while True:
            try:
                operation, body = batches.get_nowait()
            except queue.Empty:
                return
            answer = session.post(f"{url}/v1/events/{operation}", data=body, timeout=120,
                                  headers={"Content-Type": "application/json"})
            if answer.status_code != 202:
                failures.append(f"{operation}: HTTP {answer.status_code} {answer.text[:300]}")

    threads = [threading.Thread(target=client) for _ in range(CLIENT_THREADS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} batches not admitted, e.g. {failures[0]}")
    return len(made) / elapsed


def paced_latency(url: str, tag: str, rate: float, seconds: float) -> list[float]:
    """Single-event POSTs due every 1/rate s; latency from each one's due time to its answer (ms)."""
    count = int(rate * seconds)
    made = [event for _, event in events(count * 4, tag) if "event_id" in event][:count]  # stock.adjust
    slots: queue.Queue = queue.Queue()
    for index, event in enumerate(made):
        slots.put((index, json.dumps(event).encode()))
    latencies: list[float] = []
    failures: list[int] = []
    lock = threading.Lock()
    begin = time.perf_counter() + 0.5

    def client() -> None:
        session = requests.Session()
        while True:
            try:
                index, body = slots.get_nowait()
            except queue.Empty:
                return
            due = begin + index / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            answer = session.post(f"{url}/v1/events/stock.adjust", data=body, timeout=30,
                                  headers={"Content-Type": "application/json"})
            took = (time.perf_counter() - due) * 1000
            with lock:
                latencies.append(took)
                if answer.status_code != 202:
                    failures.append(answer.status_code)

    # Enough senders that one slow answer does not hold back the next slot (open loop).
    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} single-event POSTs not admitted: {set(failures)}")
    return sorted(latencies)


def bulk_posts(url: str, tag: str, rounds: int, count: int = 1000, *, invalid: bool = False) -> list[float]:
    """Seconds to the answer of one POST of ``count`` stock counts (or invalid items), ``rounds`` times."""
    made = [event for _, event in events(count * 4 * (rounds + 1), tag) if "event_id" in event]
    took = []
    for round_ in range(rounds):
        batch = [0] * count if invalid else made[round_ * count:(round_ + 1) * count]
        body = json.dumps(batch).encode()
        started = time.perf_counter()
        answer = requests.post(f"{url}/v1/events/stock.adjust", data=body, timeout=120,
                               headers={"Content-Type": "application/json"})
        took.append(time.perf_counter() - started)
        wanted = 422 if invalid else 202
        if answer.status_code != wanted or len(answer.json()["events"]) != count:
            raise RuntimeError(f"a {count}-event POST was answered {answer.status_code}: {answer.text[:300]}")
    return took


def percentile(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=4000, help="events per round (default 4000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each (default 3; medians)")
    parser.add_argument("--seconds", type=float, default=20.0, help="paced latency run (default 20 s)")
    parser.add_argument("--rate", type=float, default=100.0, help="paced requests per second (default 100)")
    parser.add_argument("--bulk-rounds", type=int, default=5, help="1,000-event POSTs (default 5; median)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="wms-ingest-bench-") as tmp:
        workdir = Path(tmp)
        valkey = Valkey(workdir / "valkey").start()
        ingest = None
        try:
            ingest, url = start_ingest(workdir, valkey.url)
            # Warm-up, not counted: imports, connections, Lua scripts loaded, schema instances built.
            enqueue_rate(workdir, valkey.url, events(200, "WE"))
            http_rate(url, events(200, "WH"))
            http_rates, enqueue_rates = [], []
            for round_ in range(args.rounds):
                enqueue_rates.append(enqueue_rate(workdir, valkey.url, events(args.events, f"E{round_}")))
                http_rates.append(http_rate(url, events(args.events, f"H{round_}")))
                print(f"round {round_ + 1}: enqueue {enqueue_rates[-1]:.0f}/s, HTTP {http_rates[-1]:.0f}/s",
                      flush=True)
            latencies = paced_latency(url, "L", args.rate, args.seconds)
            bulk = bulk_posts(url, "K", args.bulk_rounds)
            bulk_invalid = bulk_posts(url, "X", max(1, args.bulk_rounds // 2), invalid=True)
        finally:
            _stop(ingest)
            valkey.kill()
    enqueue, http = statistics.median(enqueue_rates), statistics.median(http_rates)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print()
    print(f"machine: {platform.processor() or platform.machine()}, nproc {os.cpu_count()}, "
          f"Python {platform.python_version()}; load average before the run {load_before:.2f}, after "
          f"{os.getloadavg()[0]:.2f}")
    print(f"events per round {args.events}, {args.rounds} rounds, HTTP batches of {BATCH}, "
          f"{CLIENT_THREADS} client threads")
    print("| enqueue /s (median) | HTTP /s (median) | HTTP / enqueue | target |")
    print(f"| {enqueue:.0f} ({', '.join(f'{r:.0f}' for r in enqueue_rates)}) | "
          f"{http:.0f} ({', '.join(f'{r:.0f}' for r in http_rates)}) | **{http / enqueue:.0%}** | ≥ 80% |")
    print(f"single-event POST at {args.rate:.0f}/s for {args.seconds:.0f} s ({len(latencies)} requests): "
          f"p50 {p50:.1f} ms, p99 **{p99:.1f} ms**, max {latencies[-1]:.1f} ms (target p99 ≤ 50 ms)")
    print(f"one POST of 1,000 stock counts ({len(bulk)} rounds): median **{statistics.median(bulk):.2f} s**, "
          f"slowest {max(bulk):.2f} s (target ≤ 2 s); of 1,000 invalid items: median "
          f"{statistics.median(bulk_invalid):.2f} s (no target)")
    met = http / enqueue >= 0.8 and p99 <= 50 and statistics.median(bulk) <= 2.0
    print("targets met" if met else "TARGET MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
