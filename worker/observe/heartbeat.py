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

Registered on the service's Celery app (``worker.celery``), so ``wms-relay worker`` and ``celery -A
worker worker`` both beat."""
from __future__ import annotations

import logging
import time
from typing import Callable

from celery import bootsteps

from worker.observe.metrics import process_tally
from worker.store.heartbeats import BEAT_INTERVAL_SECONDS, Heartbeats

log = logging.getLogger("wms_relay.heartbeat")


def heartbeat_step(store_client: Callable[[], object], clock: Callable[[], float] = time.time,
                   configuration: Callable[[], str] | None = None) -> type:
    """The bootstep class, beating through the Redis client ``store_client()`` returns (built once, on
    the step's first start: the worker's process builds it, not the module that registers the step),
    each beat recording ``configuration()`` (asked once, on the first start; None: nothing recorded)."""

    class StoreHeartbeat(bootsteps.StartStopStep):
        """Beat under the worker's node name (``relay-123@host``) every BEAT_INTERVAL_SECONDS."""

        def __init__(self, c, **kwargs) -> None:
            self._timer_entry = None
            self._failing = False
            self._client = None
            self._configuration: str | None = None
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
            self._beat(c)
            self._timer_entry = c.timer.call_repeatedly(BEAT_INTERVAL_SECONDS, self._beat, (c,), priority=10)

        def stop(self, c) -> None:
            if self._timer_entry is not None:
                self._timer_entry.cancel()
                self._timer_entry = None

        def shutdown(self, c) -> None:
            """A clean stop (SIGTERM, Ctrl-C): the worker is no longer expected to beat."""
            self.stop(c)
            try:
                process_tally().flush(self._store_client())
                self._store().leave("worker", c.hostname)
            except Exception as exc:  # noqa: BLE001 — the store is gone: the beat goes stale on its own
                log.warning("could not remove the worker's heartbeat (%s: %s)", type(exc).__name__, exc)

        def _beat(self, c) -> None:
            try:
                self._store().beat("worker", c.hostname, self._configuration)
                process_tally().flush(self._store_client())
            except Exception as exc:  # noqa: BLE001 — Redis away: say so once, beat again next time
                if not self._failing:
                    log.warning("heartbeat not written (%s: %s); the worker looks dead to `wms-relay health` "
                                "until the store answers again", type(exc).__name__, exc)
                self._failing = True
            else:
                if self._failing:
                    log.info("heartbeat written again")
                self._failing = False

    return StoreHeartbeat
