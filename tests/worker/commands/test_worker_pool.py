"""WORKER_POOL (worker.commands.worker_pool, worker.settings.worker_pool): gevent's patches are applied by
the ``wms-relay`` command itself, before anything imports socket or threading — ``app.worker_main`` (what
``wms-relay worker`` runs) is not patched by Celery (celery#8168) — only for the worker, only when asked;
a bad value or an unpatched process is refused with a clear message.  Each check runs in a fresh
interpreter: what a process imported before the patches is the point."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from worker.commands.worker_pool import require_patched
from worker.settings import Settings, SettingsError, worker_pool

ROOT = Path(__file__).resolve().parents[3]
LOW_LEVEL = ("socket", "ssl", "select", "selectors", "threading", "queue")


def _fresh(code: str, **env: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", **env})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_command_imports_nothing_gevent_must_patch_before_it_patches():
    imported = _fresh(f"import sys, worker.cli\nprint(sorted(set({LOW_LEVEL!r}) & set(sys.modules)))")
    assert imported == "[]"


@pytest.mark.parametrize("argv, pool, patched", [
    (["worker"], "gevent", "True"),
    (["worker", "--concurrency", "4"], "GEVENT ", "True"),
    (["worker"], "threads", "False"),
    (["worker"], "", "False"),             # the default: threads
    (["status"], "gevent", "False"),       # only the worker runs a pool
    ([], "gevent", "False"),
])
def test_gevent_patches_only_the_worker_and_only_when_asked(argv, pool, patched):
    code = ("import sys\nfrom worker.commands.worker_pool import patch_before_imports\n"
            f"patch_before_imports({argv!r})\n"
            "import socket, threading\nfrom gevent import monkey\n"
            "print(monkey.is_module_patched('socket') and monkey.is_module_patched('threading'))")
    assert _fresh(code, WORKER_POOL=pool) == patched


def test_a_bad_pool_is_refused_naming_the_setting_and_its_choices():
    assert worker_pool({}) == "threads" and worker_pool({"WORKER_POOL": " Gevent"}) == "gevent"
    with pytest.raises(SettingsError, match="WORKER_POOL must be 'threads' or 'gevent', got 'prefork'"):
        Settings.from_env({"WORKER_POOL": "prefork"})
    done = subprocess.run([sys.executable, "-m", "worker.cli", "worker"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "WORKER_POOL": "eventlet"})
    assert done.returncode == 2 and "WORKER_POOL must be 'threads' or 'gevent'" in done.stderr


def test_a_gevent_pool_is_refused_in_a_process_gevent_has_not_patched():
    require_patched("threads")  # nothing to check
    with pytest.raises(SettingsError, match="needs gevent's patches before anything imports socket"):
        require_patched("gevent")  # this test process imported socket long ago, unpatched
