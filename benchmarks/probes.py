"""What one Kubernetes probe costs in CPU: ``wms-relay health worker --liveness`` / ``--readiness`` (this
pod's own probe files) against ``wms-relay health worker`` (the store's heartbeat, redis-py) and against
the floor every probe pays — a bare ``python -c pass`` of the same interpreter.

Run: ``python benchmarks/probes.py`` (the checkout's virtualenv; ~20 s).  Each probe runs ROUNDS times as
a child process; its CPU (user + system, from ``resource.getrusage(RUSAGE_CHILDREN)``) is summed per run,
and the table shows the median and the best run, with the ratio of the median to the floor's.  The budget
is 50 ms of CPU per probe (issue 22).  A probe runs every few seconds on every pod, so this is CPU the
cluster spends all day.

The files are those of a live fake process (made here, fresh), so the probes answer "OK" as they would on
a running pod; the store probe asks a real valkey-server started here (the embedded binary)."""
from __future__ import annotations

import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.redis_server import RedisServer  # noqa: E402
from worker.observe.probe_files import ProbeFiles  # noqa: E402
from worker.store.heartbeats import Heartbeats  # noqa: E402

ROUNDS = 15
BUDGET_MS = 50.0


def cpu_ms(argv: list[str], env: dict) -> list[float]:
    """CPU milliseconds of each of ROUNDS runs of ``argv`` (each must exit 0)."""
    spent = []
    for _ in range(ROUNDS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stdout}{done.stderr}")
        spent.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
    return spent


def main() -> None:
    bin_dir = Path(sys.executable).parent
    relay = str(bin_dir / "wms-relay")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "valkey").mkdir()
        server = RedisServer(Path(tmp) / "valkey").start()
        try:
            name = f"relay-bench@{socket.gethostname()}"
            ProbeFiles(Path(tmp) / "var", "worker", name).ready()
            Heartbeats(server.client()).beat("worker", name)
            env = {**os.environ, "WMS_RELAY_VAR_DIR": str(Path(tmp) / "var"), "REDIS_URL": server.url}
            rows = [("python -c pass (the floor)", [sys.executable, "-c", "pass"]),
                    ("health worker --liveness", [relay, "health", "worker", "--liveness"]),
                    ("health worker --readiness", [relay, "health", "worker", "--readiness"]),
                    ("health worker (the store)", [relay, "health", "worker"])]
            results = [(label, cpu_ms(argv, env)) for label, argv in rows]
        finally:
            server.kill()
    floor = statistics.median(results[0][1])
    print(f"CPU per probe, {ROUNDS} runs each ({sys.executable}; budget {BUDGET_MS:g} ms)")
    print(f"{'probe':32} {'median ms':>10} {'best ms':>8} {'x floor':>8}")
    for label, spent in results:
        median = statistics.median(spent)
        print(f"{label:32} {median:10.0f} {min(spent):8.0f} {median / floor:8.1f}")


if __name__ == "__main__":
    main()
