"""worker.delivery.run_ids: an id unique to one run of a delivery, without a random draw per run."""
from __future__ import annotations

import os
import threading

import pytest

from worker.delivery.run_ids import run_id


def test_ids_are_unique_across_threads():
    found: list[str] = []

    def draw() -> None:
        found.extend(run_id() for _ in range(2000))

    threads = [threading.Thread(target=draw) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == len(found) == 16000


def test_a_short_id_keeps_the_process_token_s_prefix():
    long, short = run_id(), run_id(8)
    token = long.split(".")[0]
    assert len(token) == 32 and short.split(".")[0] == token[:8]
    assert int(short.split(".")[1]) == int(long.split(".")[1]) + 1


def test_another_process_draws_other_ids():
    """A new process (a restart that may reuse the pid) and a forked child both draw another token:
    the counter alone would name the dead run's owner again."""
    import subprocess
    import sys

    mine = run_id().split(".")[0]
    code = "from worker.delivery.run_ids import run_id; print(run_id())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}).stdout.strip()
    assert other.split(".")[0] != mine and other.endswith(".1")
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its id and leave at once
        os.write(write, run_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert child.split(".")[0] != mine and child.endswith(".1")
