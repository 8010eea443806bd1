"""A Redis outage makes the worker and the scheduler unready, never dead: through an outage longer than
the probes' window, ``health worker|scheduler --liveness`` answers 0 at every look (restarting them
cannot bring Redis back), ``--readiness`` turns 1 and the store's own check exits 3; when Redis is back,
both are ready again — the same processes, never restarted.  Real processes: valkey-server (stopped and
started again on its port), a worker, the scheduler."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.fixtures.pipeline import ROOT, wait_until

pytestmark = pytest.mark.integration

WITHIN = "12"  # the probes' window, seconds (30 by default): a short outage still outlasts it
# How long the outage lasts at least, in windows: past one window a worker whose loop stopped beating (every
# 5 s) while it waits for the broker would be dead to --liveness; 1.75 windows (21 s) leave 9 s past that.
OUTAGE_WINDOWS = 1.75


def probe(pipeline, role: str, *flags: str) -> int:
    done = subprocess.run([sys.executable, "-m", "worker.cli", "health", role, *flags, "--within", WITHIN],
                          cwd=ROOT, env=pipeline.env, capture_output=True, text=True, timeout=60)
    return done.returncode


def test_an_outage_makes_worker_and_scheduler_unready_and_never_dead(pipeline):
    worker = pipeline.start_worker()
    roles = ("worker", "scheduler")
    for role in roles:
        wait_until(lambda: probe(pipeline, role, "--readiness") == 0, 60, f"the {role} to be ready")
        assert probe(pipeline, role, "--liveness") == 0

    pipeline.redis_server.stop()
    down = time.monotonic()
    unready = set()
    while time.monotonic() - down < OUTAGE_WINDOWS * float(WITHIN) or len(unready) < len(roles):
        assert time.monotonic() - down < 120, f"still ready during the outage: {set(roles) - unready}"
        for role in roles:
            outage = time.monotonic() - down
            assert probe(pipeline, role, "--liveness") == 0, f"{role} dead after {outage:.0f} s of outage"
            if probe(pipeline, role, "--readiness") == 1:
                unready.add(role)
        time.sleep(1)
    assert probe(pipeline, "worker") == 3  # the store's own check: it does not answer

    pipeline.redis_server.start()
    for role in roles:
        wait_until(lambda: probe(pipeline, role, "--readiness") == 0, 90, f"the {role} to be ready again")
    assert worker.poll() is None and pipeline.scheduler.poll() is None, pipeline.logs()
