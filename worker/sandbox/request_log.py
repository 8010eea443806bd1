"""Every request the sandbox saw, in arrival order, for tests, demos and benchmarks to count.

Entries hold the method, path, params without the API's credentials (``hidden`` names, at any depth:
Trademax's ``signature``, ka-ching's ``apikey``, Stock2Shop's ``token`` and ``password``...), the answer's
status and error_code and the injected fault (if any).  Nothing is trimmed — tests count exact numbers —
so a long benchmark run should call ``POST /_sandbox/reset`` between rounds to free the memory.
"""
from __future__ import annotations

import threading
from typing import Any, Iterable, Mapping


def _without(value: Any, hidden: frozenset[str]) -> Any:
    if isinstance(value, Mapping):
        return {k: _without(v, hidden) for k, v in value.items() if k not in hidden}
    if isinstance(value, (list, tuple)):
        return [_without(v, hidden) for v in value]
    return value


class RequestLog:
    def __init__(self, hidden: Iterable[str] = ("signature",)) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._hidden = frozenset(hidden) | {"signature"}

    def record(self, *, method: str, path: str, params: Mapping[str, Any], status: int,
               error_code: int | None, fault: str | None) -> None:
        entry = {
            "method": method,
            "path": path,
            "params": _without(params, self._hidden),
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
