"""What the liveness and readiness probes read: two files per process on the process's own disk.

    VAR_DIR/health/<role>/<node name>.alive   touched by the process's loop: a worker's consumer loop every
                                              5 s (and, while the broker connection is lost, by the wait
                                              for it), the scheduler's loop on every tick
    VAR_DIR/health/<role>/<node name>.ready   touched after each heartbeat the store accepted

``wms-relay health worker --liveness`` asks "is this process's loop running?" — it reads the ``.alive``
file's age and nothing else: no Redis, so a Redis outage never makes a liveness probe fail (restarting
every worker cannot bring Redis back).  ``--readiness`` asks "can this process work?" — the ``.ready``
file's age, which stops growing fresher the moment the store stops accepting the process's heartbeats:
during a Redis outage the pod is taken out of service (unready), not restarted.  The store's own
heartbeats (:mod:`worker.store.heartbeats`) stay what ``status`` and ``health`` without a flag read.

Both probes answer from one ``stat``: this module imports only the standard library's ``os`` and
``time``, so a probe costs a Python start and no more (docs/benchmarks.md, "Probes").  A clean stop
removes both files; a crashed process's files go stale.  Freshness is judged on the reader's clock, on
the same machine as the writer."""
from __future__ import annotations

import os
import time

KINDS = ("alive", "ready")


def _directory(var_dir, role: str) -> str:
    return os.path.join(os.fspath(var_dir), "health", role)


def _host_of(name: str) -> str:
    return name.rpartition("@")[2]


class ProbeFiles:
    """One process's two files (``role``: worker or scheduler; ``name``: its node name)."""

    def __init__(self, var_dir, role: str, name: str) -> None:
        if "/" in name or name.startswith("."):
            raise ValueError(f"a node name usable as a file name, not {name!r}")
        self._directory = _directory(var_dir, role)
        self._paths = {kind: os.path.join(self._directory, f"{name}.{kind}") for kind in KINDS}
        self._left = False

    def _touch(self, kind: str) -> None:
        if self._left:  # a wait-for-broker thread racing the clean stop: stay removed
            return
        path = self._paths[kind]
        try:
            os.utime(path)
        except FileNotFoundError:
            os.makedirs(self._directory, mode=0o700, exist_ok=True)
            with open(path, "a"):
                pass

    def alive(self) -> None:
        """The process's loop ran just now."""
        self._touch("alive")

    def ready(self) -> None:
        """The store accepted this process's heartbeat just now (its loop ran too)."""
        self._touch("alive")
        self._touch("ready")

    def leave(self) -> None:
        """A clean stop: the process is no longer expected to answer its probes."""
        self._left = True
        for path in self._paths.values():
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def ages(var_dir, role: str, kind: str, *, name: str | None = None, host: str | None = None,
         now: float | None = None) -> list[tuple[str, float]]:
    """``(node name, seconds since its file of ``kind`` was touched)`` for the processes of ``role``
    under ``var_dir`` — only ``name``, or only those on ``host`` — freshest first."""
    directory = _directory(var_dir, role)
    suffix = f".{kind}"
    now = time.time() if now is None else now
    found = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    for entry in entries:
        if not entry.name.endswith(suffix):
            continue
        node = entry.name[:-len(suffix)]
        if (name is not None and node != name) or (host is not None and _host_of(node) != host):
            continue
        try:
            found.append((node, max(0.0, now - entry.stat().st_mtime)))
        except FileNotFoundError:  # removed by a clean stop meanwhile
            continue
    return sorted(found, key=lambda pair: pair[1])
