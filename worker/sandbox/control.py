"""A client for a running sandbox's SANDBOX-ONLY endpoints (``/_sandbox/...``, see worker.sandbox.server):
what it applied, every request it saw, its fault plan.  The demo, the tests and the benchmarks all drive a
sandbox — any of the four APIs — through this one class.  The real APIs have no such endpoints.

    control = SandboxControl("http://127.0.0.1:8765/")   # the sandbox's root, or its .../api/ base URL
    control.set_faults(fail_rate=1.0); ...; control.set_faults(fail_rate=0)
"""
from __future__ import annotations

import json
import re
import select
import subprocess
import time
import urllib.request
from typing import Any

# The ready line, as text or inside a JSON log line (LOG_FORMAT=json): the URL ends at a quote.
_READY = re.compile(rb'sandbox listening on (http://[^\s"]+)')


def ready_line(base_url: str) -> str:
    """What ``wms-relay sandbox`` prints once it listens (and :func:`wait_for_ready_line` looks for)."""
    return f"sandbox listening on {base_url}"


def wait_for_ready_line(process: subprocess.Popen, timeout: float) -> str:
    """The base URL a starting ``wms-relay sandbox --port 0`` process announces on its stdout (a pipe).
    RuntimeError if it exits or stays silent for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([process.stdout], [], [], 0.1)[0]:
            line = process.stdout.readline()
            if match := _READY.search(line):
                return match.group(1).decode()
            if not line:
                break  # EOF: the process exited
    raise RuntimeError(f"the sandbox did not start (exit code {process.poll()})")


class SandboxControl:
    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        root = url if url.endswith("/") else url + "/"
        self.root_url = root[: -len("api/")] if root.endswith("/api/") else root
        self.timeout = timeout

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.root_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read())

    def state(self) -> dict:
        """``GET /_sandbox/state``: ``{"stock": {location: {product: qty}}, ...}`` and what else the API
        keeps."""
        return self._call("GET", "_sandbox/state")

    def requests(self) -> list[dict]:
        """``GET /_sandbox/requests``: every API request seen (method, path, params, status, fault...)."""
        return self._call("GET", "_sandbox/requests")

    def faults(self) -> dict:
        """``GET /_sandbox/faults``: the current fault plan."""
        return self._call("GET", "_sandbox/faults")

    def set_faults(self, **plan: float) -> dict:
        """``POST /_sandbox/faults``, e.g. ``set_faults(fail_rate=1.0)`` then ``set_faults(fail_rate=0)``."""
        return self._call("POST", "_sandbox/faults", plan)

    def reset(self) -> None:
        """``POST /_sandbox/reset``: forget state and requests; faults back to their start-up values."""
        self._call("POST", "_sandbox/reset", {})

    def answering(self) -> bool:
        """Whether the sandbox answers its control endpoints yet."""
        try:
            self.faults()
        except (OSError, ValueError):  # urllib's URLError is an OSError
            return False
        return True
