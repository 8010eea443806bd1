"""Every process of the Procfile stops on SIGTERM when it is PID 1 — as in a container without an init,
or with the image's entry point replaced (a Kubernetes ``command:``).  The kernel delivers a signal to a
PID namespace's init only if that process handles it: a process relying on SIGTERM's default action
ignores it there, and is killed after the grace period (``wms-relay ingest`` did: 10 s, then SIGKILL).

Each Procfile line runs as PID 1 of its own PID namespace (util-linux ``unshare --pid --fork
--mount-proc``, as root), against a real store started outside the namespace; once it is up, SIGTERM is
sent to it from outside: it exits 0, well within the bound below.  Skipped with the reason where
``unshare`` cannot make a PID namespace (not root, or a sandbox that forbids it)."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.pipeline import ROOT, wait_until
from tests.fixtures.ports import free_port

pytestmark = pytest.mark.integration

# A guard against a process that never stops (the bug: it ignores SIGTERM), not a speed limit.
STOP_BOUND_SECONDS = 30
START_BOUND_SECONDS = 90
# What each process says once its SIGTERM handler is in place and it is serving.
READY = {
    "worker": "ready.",
    "scheduler": "scheduler running",
    "flower": "Visit me at",
    "metrics": "Metrics on http://",
    "desk": "listening on http://",
    "sandbox": "http://127.0.0.1",
    "ingest": "listening on http://",
}


def _unshare_works() -> str | None:
    """None when ``unshare`` can make a PID namespace here, else why not."""
    if shutil.which("unshare") is None:
        return "util-linux's unshare is not installed"
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True,
                           text=True, timeout=30)
    if probe.returncode != 0:
        return f"unshare cannot make a PID namespace here (needs root): {probe.stderr.strip()}"
    return None


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))


def expand(command: str, env: dict) -> list[str]:
    """A Procfile line as honcho's shell would run it: ``${NAME:-default}`` from ``env``."""
    expanded = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m[1]) or m[2], command)
    return shlex.split(expanded)


def test_the_procfile_lists_every_process():
    assert set(procfile()) == set(READY)


def _pid_one(unshare: subprocess.Popen) -> int:
    """The pid (seen from here) of unshare's child: PID 1 of the new namespace."""
    children = Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children")
    pid = wait_until(lambda: children.read_text().split(), 30, "unshare's child")[0]
    status = Path(f"/proc/{pid}/status").read_text()
    namespaced = next(line for line in status.splitlines() if line.startswith("NSpid:")).split()
    assert namespaced[-1] == "1", status  # its own pid in its namespace
    return int(pid)


@pytest.mark.parametrize("name", sorted(READY))
def test_each_procfile_process_stops_on_sigterm_as_pid_1(name, redis_server, tmp_path):
    reason = _unshare_works()
    if reason:
        pytest.skip(reason)
    env = {**os.environ, "REDIS_URL": redis_server.url, "WMS_RELAY_VAR_DIR": str(tmp_path / "var"),
           "TRADEMAX_API_KEY": "pid1-key", "TRADEMAX_SECRET": "pid1-secret-not-real",
           "METRICS_PORT": str(free_port()), "DESK_PORT": str(free_port()),
           "SANDBOX_PORT": str(free_port()), "INGEST_PORT": str(free_port())}
    env.pop("SENTRY_DSN", None)
    env.pop("FLOWER_BASIC_AUTH", None)
    argv = expand(procfile()[name], env)
    assert argv[0] == "wms-relay"
    argv[0] = str(Path(sys.executable).with_name("wms-relay"))  # the console script, as installed
    if name == "flower":
        argv += ["--port", str(free_port())]  # its default 5555 may be taken on a shared machine
    log_path = tmp_path / f"{name}.log"
    with open(log_path, "wb") as log:
        unshare = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--", *argv], cwd=ROOT,
                                   env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        pid = _pid_one(unshare)
        wait_until(lambda: READY[name] in log_path.read_text(errors="replace") or unshare.poll() is not None,
                   START_BOUND_SECONDS, f"{name} to start")
        assert unshare.poll() is None, log_path.read_text(errors="replace")[-3000:]
        sent = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        code = unshare.wait(timeout=STOP_BOUND_SECONDS)
        took = time.monotonic() - sent
    finally:
        if unshare.poll() is None:
            os.killpg(unshare.pid, signal.SIGKILL)  # the namespace's processes die with its init
            unshare.wait()
    assert code == 0, f"{name} exited {code} after SIGTERM:\n{log_path.read_text(errors='replace')[-3000:]}"
    print(f"{name}: stopped {took:.1f} s after SIGTERM as PID 1")
