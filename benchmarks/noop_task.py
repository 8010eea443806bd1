"""Benchmark-only tasks on wms-relay's own Celery app, and a worker launcher that registers them.

``python -m benchmarks.noop_task worker ...`` is ``wms-relay worker ...`` with two more tasks registered.
Both take the event as a delivery task does:

* ``benchmark.noop`` does nothing — what Celery itself costs per task on this broker;
* ``benchmark.bare_post`` POSTs the event to the sandbox with a pooled ``requests.Session`` and nothing
  else (no validation, ledger, signing or classification) — "bare Celery + requests".

The throughput benchmark runs its baselines and the real pipeline through this one launcher, so they
differ only in what the task does: same broker, same settings, same worker command.  Production task
modules never import this.
"""
from __future__ import annotations

import sys
import threading

from worker.celery import app

NOOP_TASK = "benchmark.noop"
BARE_POST_TASK = "benchmark.bare_post"

_session = None
_session_lock = threading.Lock()


@app.task(name=NOOP_TASK)
def noop(event=None) -> None:
    """Nothing: what Celery itself costs per task (receive, run, acknowledge) on this broker."""
    return None


@app.task(name=BARE_POST_TASK)
def bare_post(event=None) -> int:
    """One unsigned POST to the sandbox (answered 401 after its latency): Celery + requests, no pipeline."""
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                import requests
                from requests.adapters import HTTPAdapter

                from worker.settings import Settings

                session = requests.Session()
                session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=64))
                session.base_url = Settings.from_env().trademax_base_url  # the benchmark worker's env
                _session = session
    return _session.post(_session.base_url + "receipt", json=event, timeout=(5, 30)).status_code


if __name__ == "__main__":
    from worker.cli import main

    sys.exit(main())
