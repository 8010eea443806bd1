"""A sandbox API served over real loopback HTTP inside the test process (a thread, port 0), driven with
``requests`` and read with the shared control client."""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from worker.sandbox.control import SandboxControl
from worker.sandbox.faults import FaultPlan
from worker.sandbox.server import SandboxApi, SandboxServer


@contextlib.contextmanager
def serving(api: SandboxApi, plan: FaultPlan | None = None) -> Iterator[tuple[str, SandboxControl]]:
    """``with serving(api) as (base_url, control): ...`` — stopped and closed on exit."""
    server = SandboxServer(("127.0.0.1", 0), api, plan=plan or FaultPlan(), seed=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.base_url, SandboxControl(server.root_url, timeout=10)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
