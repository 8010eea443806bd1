"""One process of tests/integration/test_rate_limit_processes.py: THREADS threads take slots of one shared
20 rps limit for SECONDS seconds, each sleeping until its slot as a worker would, and the process prints
the slots it was given (JSON) — the test merges them with the other process's.

    python -m tests.integration.rate_limit_child REDIS_URL THREADS SECONDS MAX_RPS"""
from __future__ import annotations

import json
import sys
import threading
import time

import redis

from worker.flow.rate_limit import RateLimit


def main(url: str, threads: int, seconds: float, max_rps: float) -> None:
    limit = RateLimit(redis.Redis.from_url(url), "wms:flowtest")
    slots: list[float] = []
    lock = threading.Lock()
    stop_at = time.time() + seconds

    def run() -> None:
        while time.time() < stop_at:
            slot = limit.take(max_rps, max_wait=1.0)
            if not slot.taken:
                time.sleep(0.05)
                continue
            with lock:
                slots.append(slot.at)
            time.sleep(slot.wait)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(json.dumps(slots))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
