"""The worker's pool (``WORKER_POOL``): Celery's ``threads`` pool (OS threads) or its ``gevent`` pool
(green threads: one OS thread, a switch at every wait on a socket, no fight for the GIL).

gevent works by monkey-patching the standard library (``socket``, ``ssl``, ``select``, ``threading``,
``time.sleep``, ...), and the patches must be in place before anything imports those modules: a module
that took ``socket.socket`` or ``threading.Lock`` before would keep blocking the one OS thread, and every
green thread with it.  ``celery worker -P gevent`` patches in Celery's own entry point
(``celery.__main__``: ``maybe_patch_concurrency`` reads ``-P``/``--pool`` from ``sys.argv``); a worker
started through ``app.worker_main`` — as ``wms-relay worker`` starts it — is not patched by Celery
(celery/celery#8168: such a worker receives tasks and hangs).  So the ``wms-relay`` command calls
:func:`patch_before_imports` first thing (``worker.cli.main``), before it imports any command module.

Nothing here imports more than the settings module (which imports no socket, ssl or threading:
``tests/worker/commands/test_worker_pool.py`` checks it in a fresh interpreter).
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

from worker.settings import SettingsError, worker_pool

GEVENT = "gevent"


def patch_before_imports(argv: Sequence[str], env: Mapping[str, str] = os.environ) -> str | None:
    """For ``wms-relay worker ...`` (``argv`` without the program's name): the pool WORKER_POOL names, with
    gevent's patches applied when it is ``gevent``.  Any other command: None, nothing patched.  A bad
    WORKER_POOL patches nothing: the worker's start reads the settings again and names the problem."""
    if not argv or argv[0] != "worker":
        return None
    try:
        pool = worker_pool(env)
    except SettingsError:
        return None
    if pool == GEVENT:
        try:
            from gevent import monkey
        except ImportError:
            return pool  # the worker's start says what to install (require_patched)
        if not monkey.is_module_patched("socket"):  # once (a launcher may have patched already)
            monkey.patch_all()
    return pool


def require_patched(pool: str) -> None:
    """Refuse to start a gevent pool in a process gevent has not patched (say, ``run_worker`` called from
    Python without ``worker.cli.main``): its blocking sockets would stop every green thread at once."""
    if pool != GEVENT:
        return
    try:
        from gevent import monkey
    except ImportError:
        raise SettingsError("WORKER_POOL=gevent needs the gevent package: pip install 'wms-relay[gevent]'") \
            from None
    if not (monkey.is_module_patched("socket") and monkey.is_module_patched("threading")):
        raise SettingsError("WORKER_POOL=gevent needs gevent's patches before anything imports socket or "
                            "threading: start the worker with `wms-relay worker` (or `celery -A worker "
                            "worker -P gevent`), not from a Python process that has already imported them")
