"""One rate limit, two processes: two real processes of eight threads each, sharing one 20 rps limit
through a real valkey-server, are given slots that are never closer than 1/20 s — so at most 20 (+1 on a
window's edge) fall in any one-second window — and both processes get their share."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.fixtures.pipeline import ROOT

pytestmark = pytest.mark.integration

MAX_RPS = 20.0


def test_two_processes_share_one_limit(redis_server):
    child = [sys.executable, "-m", "tests.integration.rate_limit_child", redis_server.url, "8", "2.5",
             str(MAX_RPS)]
    children = [subprocess.Popen(child, cwd=ROOT, stdout=subprocess.PIPE, text=True)
                for _ in range(2)]
    given = [json.loads(child.communicate(timeout=120)[0]) for child in children]
    assert all(child.returncode == 0 for child in children)
    assert all(len(slots) >= 10 for slots in given), [len(s) for s in given]  # each process got its share
    slots = sorted(s for process in given for s in process)
    gaps = [b - a for a, b in zip(slots, slots[1:])]
    assert min(gaps) >= 1 / MAX_RPS - 1e-4
    busiest = max(sum(1 for s in slots if start <= s < start + 1.0) for start in slots)
    assert busiest <= MAX_RPS + 1
