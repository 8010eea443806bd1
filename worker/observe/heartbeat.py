"""The worker's heartbeat: a Celery consumer bootstep that writes ``wms:heartbeat:worker`` (see
:mod:`worker.store.heartbeats`) every few seconds, and removes it when the worker shuts down cleanly.

The beat runs on the consumer's own timer — the event loop that takes messages off the queues — so it
stops when that loop stops (a stuck or disconnected worker), not merely when the process dies; that is
what a liveness probe wants to know.  The step is stopped while the broker connection is lost and
started again with it.  Each beat also hands the attempts this process counted since the last one to
the store (:class:`worker.observe.metrics.AttemptTally`), where ``wms-relay metrics`` reads them, and
records the destinations' configuration the worker runs with (:mod:`worker.observe.configuration`: which
are on, their locations and flow limits — never a secret), where ``status``, the desk and the metrics
read it.

The same loop keeps the worker's probe files (:mod:`worker.observe.probe_files`): ``.alive`` on every
beat, ``.ready`` on every beat the store accepted.  While the broker connection is lost, Celery stops
the step and its consumer waits for the broker; a thread of the step then keeps ``.alive`` fresh until
the connection is back (the process is doing what it should: waiting for Redis, which a restart cannot
bring back), and ``.ready`` goes stale: the pod is unready, not restarted.

Registered on the service's Celery app (``worker.celery``), so ``wms-relay worker`` and ``celery -A
worker worker`` both beat."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from celery import bootsteps

from worker.observe.metrics import process_tally
from worker.observe.probe_files import ProbeFiles
from worker.store.heartbeats import BEAT_INTERVAL_SECONDS, Heartbeats

log = logging.getLogger("wms_relay.heartbeat")


def heartbeat_step(store_client: Callable[[], object], clock: Callable[[], float] = time.time,
                   configuration: Callable[[], str] | None = None,
                   probe_files: Callable[[str], ProbeFiles] | None = None) -> type:
    """The bootstep class, beating through the Redis client ``store_client()`` returns (built once, on
    the step's first start: the worker's process builds it, not the module that registers the step),
    each beat recording ``configuration()`` (asked once, on the first start; None: nothing recorded),
    and keeping the probe files ``probe_files(node name)`` returns (None: none kept)."""

    class StoreHeartbeat(bootsteps.StartStopStep):
        """Beat under the worker's node name (``relay-123@host``) every BEAT_INTERVAL_SECONDS."""

        # Started only once the broker connection is up — also when the consumer restarts after a lost
        # connection.  Without it the step's place among the consumer's steps was left to set order (the
        # hash seed): started before the connection, :meth:`start` ended the wait-for-broker thread
        # while the consumer still waited, and the liveness file went stale in a Redis outage.
        requires = ("celery.worker.consumer:Connection",)

        def __init__(self, c, **kwargs) -> None:
            self._timer_entry = None
            self._failing = False
            self._client = None
            self._configuration: str | None = None
            self._files: ProbeFiles | None = None
            self._connected = threading.Event()  # set while the step runs; a stop() clears it
            self._shut = False
            super().__init__(c, **kwargs)

        def _store_client(self):
            if self._client is None:
                self._client = store_client()
            return self._client

        def _store(self) -> Heartbeats:
            return Heartbeats(self._store_client(), clock)

        def start(self, c) -> None:
            if self._configuration is None and configuration is not None:
                self._configuration = configuration()
            if self._files is None and probe_files is not None:
                self._files = probe_files(c.hostname)
            self._connected.set()  # ends a wait-for-broker thread
            self._beat(c)
            self._timer_entry = c.timer.call_repeatedly(BEAT_INTERVAL_SECONDS, self._beat, (c,), priority=10)

        def stop(self, c) -> None:
            """The broker connection is lost (or the worker stops): no beats until :meth:`start`."""
            if self._timer_entry is not None:
                self._timer_entry.cancel()
                self._timer_entry = None
            if self._files is not None and self._connected.is_set() and not self._shut:
                self._connected.clear()
                threading.Thread(target=self._wait_for_broker, name="probe-files-while-reconnecting",
                                 daemon=True).start()

        def _wait_for_broker(self) -> None:
            """Keep ``.alive`` fresh while the consumer waits for the broker (see the module's docstring)."""
            while not self._connected.wait(BEAT_INTERVAL_SECONDS):
                self._touch("alive")

        def shutdown(self, c) -> None:
            """A clean stop (SIGTERM, Ctrl-C): the worker is no longer expected to beat."""
            self._shut = True
            self.stop(c)
            self._connected.set()
            if self._files is not None:
                self._files.leave()
            try:
                process_tally().flush(self._store_client())
                self._store().leave("worker", c.hostname)
            except Exception as exc:  # noqa: BLE001 — the store is gone: the beat goes stale on its own
                log.warning("could not remove the worker's heartbeat (%s: %s)", type(exc).__name__, exc)

        def _beat(self, c) -> None:
            self._touch("alive")
            try:
                self._store().beat("worker", c.hostname, self._configuration)
                process_tally().flush(self._store_client())
            except Exception as exc:  # noqa: BLE001 — Redis away: say so once, beat again next time
                if not self._failing:
                    log.warning("heartbeat not written (%s: %s); the worker looks dead to `wms-relay health` "
                                "until the store answers again", type(exc).__name__, exc)
                self._failing = True
            else:
                self._touch("ready")
                if self._failing:
                    log.info("heartbeat written again")
                self._failing = False

        def _touch(self, kind: str) -> None:
            if self._files is None:
                return
            try:
                getattr(self._files, kind)()
            except OSError as exc:  # a full or read-only disk: the probe will say so
                log.warning("probe file not touched (%s)", exc)

    return StoreHeartbeat
