"""Which shared rate limiter: the ``limits`` library with its Redis storage (moving window, fixed window)
or our Lua GCRA (worker.flow.rate_limit)?  Measured in one run against one private valkey-server.

1. **Cost of one decision**: N calls in a row that are all allowed (limit far above the rate), µs per call
   (best of three rounds, the limiters interleaved).
2. **Under contention**: 2 processes × 16 threads want to send as fast as they may through a 20 rps limit
   for D seconds.  Each thread does what a worker would: ask; if allowed, "send" (record the moment);
   if not, wait as long as the limiter says (GCRA: the reserved slot; ``limits``: until the window's
   reset time that ``get_window_stats`` reports) and ask again.  Reported: requests "sent", the busiest
   one-second window (sliding, over the send moments), the achieved rate (sends over the time from the
   first to the last), and Redis calls per request sent.

    python benchmarks/rate_limiters.py [--calls 5000] [--seconds 10]

Needs the ``limits`` package (``pip install 'limits[redis]'``; not a runtime dependency of wms-relay).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._harness import Valkey  # noqa: E402

MAX_RPS = 20
STRATEGIES = ("gcra", "limits-moving", "limits-fixed")


class Counting:
    """Counts the Redis commands a limiter sends (monkeypatch-free: a wrapper around execute_command)."""

    def __init__(self, client) -> None:
        self.calls = 0
        original = client.execute_command

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        client.execute_command = counted


def limiter(strategy: str, url: str, rps: int, key: str):
    """``ask() -> (allowed, wait_seconds)`` and the counter of Redis calls."""
    import redis

    if strategy == "gcra":
        from worker.flow.rate_limit import RateLimit

        client = redis.Redis.from_url(url)
        counter = Counting(client)
        limit = RateLimit(client, key)

        def ask():
            slot = limit.take(rps, max_wait=1.0)
            return slot.taken, slot.wait
        return ask, counter
    from limits import RateLimitItemPerSecond, storage, strategies

    store = storage.RedisStorage(url)
    counter = Counting(store.storage)
    cls = (strategies.MovingWindowRateLimiter if strategy == "limits-moving"
           else strategies.FixedWindowRateLimiter)
    chosen, item = cls(store), RateLimitItemPerSecond(rps)

    def ask():
        if chosen.hit(item, key):
            return True, 0.0
        stats = chosen.get_window_stats(item, key)
        return False, max(0.001, stats.reset_time - time.time())
    return ask, counter


def cost(strategy: str, url: str, calls: int) -> float:
    ask, _ = limiter(strategy, url, 10_000_000, f"cost-{strategy}")
    for _ in range(200):
        ask()
    started = time.perf_counter()
    for _ in range(calls):
        ask()
    return (time.perf_counter() - started) / calls * 1e6


def contend(strategy: str, url: str, threads: int, seconds: float, key: str) -> dict:
    """One process's part of the contention run (run twice, in two processes)."""
    ask, counter = limiter(strategy, url, MAX_RPS, key)
    sent: list[float] = []
    lock = threading.Lock()
    stop_at = time.time() + seconds

    def run():
        while time.time() < stop_at:
            allowed, wait = ask()
            if allowed:
                if wait > 0:
                    time.sleep(wait)
                with lock:
                    sent.append(time.time())
            else:
                time.sleep(min(wait, 1.0))

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {"sent": sent, "redis_calls": counter.calls}


def busiest_second(moments: list[float]) -> int:
    moments = sorted(moments)
    best, low = 0, 0
    for high, moment in enumerate(moments):
        while moments[low] <= moment - 1.0:
            low += 1
        best = max(best, high - low + 1)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--child", nargs=4, metavar=("STRATEGY", "URL", "SECONDS", "KEY"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        strategy, url, seconds, key = args.child
        print(json.dumps(contend(strategy, url, 16, float(seconds), key)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        valkey = Valkey(Path(tmp) / "valkey")
        valkey.start()
        try:
            rows = []
            # Best of three, the strategies interleaved: the machine is shared, and a busy moment must not
            # land on one strategy only.
            per_calls = {strategy: float("inf") for strategy in STRATEGIES}
            for _ in range(3):
                for strategy in STRATEGIES:
                    per_calls[strategy] = min(per_calls[strategy], cost(strategy, valkey.url, args.calls))
            for strategy in STRATEGIES:
                per_call = per_calls[strategy]
                key = f"contend-{strategy}"
                children = [subprocess.Popen([sys.executable, __file__, "--child", strategy, valkey.url,
                                              str(args.seconds), key], stdout=subprocess.PIPE, text=True)
                            for _ in range(2)]
                parts = [json.loads(child.communicate()[0]) for child in children]
                sent = [m for p in parts for m in p["sent"]]
                calls = sum(p["redis_calls"] for p in parts)
                span = max(sent) - min(sent) if len(sent) > 1 else float("inf")
                rows.append((strategy, per_call, len(sent), busiest_second(sent), (len(sent) - 1) / span,
                             calls / max(len(sent), 1)))
        finally:
            valkey.kill()
    print(f"{args.calls} allowed calls each; contention: 2 processes x 16 threads, {MAX_RPS} rps, "
          f"{args.seconds:g} s\n")
    print("| limiter | µs per decision | sent | busiest 1-s window | achieved rps (% of limit) "
          "| Redis calls per send |")
    print("|---|---:|---:|---:|---:|---:|")
    for strategy, per_call, sent, busiest, rate, calls in rows:
        print(f"| {strategy} | {per_call:.0f} | {sent} | {busiest} | {rate:.1f} ({rate / MAX_RPS:.0%}) "
              f"| {calls:.1f} |")


if __name__ == "__main__":
    main()
