"""Every request the sandbox saw, in arrival order, for tests, demos and benchmarks to count.

Entries hold the method, path, params without ``signature``, the answer's status and error_code and the
injected fault (if any).  Nothing is trimmed — tests count exact numbers — so a long benchmark run
should call ``POST /_sandbox/reset`` between rounds to free the memory.
"""
from __future__ import annotations

import threading
from typing import Any, Mapping


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def record(self, *, method: str, path: str, params: Mapping[str, Any], status: int,
               error_code: int | None, fault: str | None) -> None:
        entry = {
            "method": method,
            "path": path,
            "params": {k: v for k, v in params.items() if k != "signature"},
            "status": status,
            "error_code": error_code,
            "fault": fault,
        }
        with self._lock:
            entry["seq"] = len(self._entries) + 1
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
