"""Benchmark-only tasks on wms-relay's own Celery app, and a worker launcher that registers them.

``python -m benchmarks.noop_task worker ...`` is ``wms-relay worker ...`` with two more tasks registered,
consumed from one more queue (:data:`BENCH_QUEUE`).  Both take the event as a delivery task does:

* ``benchmark.noop`` does nothing — what Celery itself costs per task on this broker;
* ``benchmark.bare_post`` POSTs the event to the sandbox with a pooled ``requests.Session`` and nothing
  else (no validation, ledger, signing or classification) — "bare Celery + requests".

Their queue is not one of the relay's: the relay's queues pass the raw-message screen
(``tasks.raw_messages``), which dead-letters any task that is not one of ours as ``malformed_message``.
Published to ``trademax.stock`` (as they were until issue 21), both baselines measured the writing of
dead letters, not Celery — "bare Celery + requests 936/s" at 200 ms with 64 threads, where Little's law
allows 320/s.  The throughput benchmark checks after each baseline drain that it left no dead letter.

The throughput benchmark runs its baselines and the real pipeline through this one launcher, so they
differ only in what the task does (and in the screen, which only the relay's queues pass): same broker,
same settings, same worker command — and the same pool (``WORKER_POOL``: the launcher applies gevent's
patches first, as ``wms-relay worker`` does).  With ``WMS_BENCH_COUNTS`` set, the launcher counts the
process's store round trips and commands (``benchmarks.store_calls``).  Production task modules never
import this.
"""
from __future__ import annotations

import sys

if __name__ == "__main__":  # the launcher: WORKER_POOL=gevent's patches before Celery imports socket
    from worker.commands.worker_pool import patch_before_imports

    patch_before_imports(sys.argv[1:])

import threading  # noqa: E402

from celery.signals import celeryd_after_setup  # noqa: E402
from kombu import Queue  # noqa: E402

from worker.celery import app  # noqa: E402

NOOP_TASK = "benchmark.noop"
BARE_POST_TASK = "benchmark.bare_post"
BENCH_QUEUE = Queue("benchmark")  # not one of the relay's queues: not screened (see the docstring)

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


@celeryd_after_setup.connect
def _consume_the_benchmark_queue(sender=None, instance=None, **_: object) -> None:
    """The worker consumes :data:`BENCH_QUEUE` beside the relay's queues (Celery's documented way to add a
    queue a worker always consumes)."""
    instance.app.amqp.queues.select_add(BENCH_QUEUE.name)


if __name__ == "__main__":
    from benchmarks.store_calls import count_in_this_process
    from worker.cli import main

    count_in_this_process()

    sys.exit(main())
