"""The scheduler process: moves due retries from the retry schedule back to their queues.

Each tick takes the due entries atomically (each entry once, even with two schedulers running), publishes
each as a Celery task, and confirms it; an entry whose publish fails is put back and tried again.  Entries
a crashed scheduler had taken but not confirmed are recovered once their lease passes.  Publishing an
entry twice is harmless: the ledger's claim sends an event once."""
from __future__ import annotations

import logging
import threading
from typing import Callable, Sequence

from worker.store.retry_schedule import RetrySchedule

log = logging.getLogger("wms_relay.scheduler")

Publish = Callable[[dict], None]

PUT_BACK_DELAY_SECONDS = 5.0
HOUSEKEEPING_SECONDS = 5.0


class Scheduler:
    def __init__(self, schedule: RetrySchedule, publish: Publish, *, clock: Callable[[], float],
                 batch: int = 500, sweep: Callable[[], int] | None = None,
                 sweep_interval: float = 60.0, housekeeping: Sequence[Callable[[], object]] = (),
                 housekeeping_interval: float = HOUSEKEEPING_SECONDS,
                 heartbeat: Callable[[], object] | None = None, heartbeat_interval: float = 1.0,
                 purge: Callable[[], object] | None = None, purge_interval: float = 3600.0,
                 alive: Callable[[], object] | None = None) -> None:
        self._schedule = schedule
        self._publish = publish
        self._clock = clock
        self._batch = batch
        self._sweep = sweep  # worker.scheduling.stranded.StrandedSweep.sweep: housekeeping, once a minute
        self._sweep_interval = sweep_interval
        self._last_sweep = float("-inf")
        # Heartbeats.beat("scheduler", name): written after a tick completed, at most once a
        # ``heartbeat_interval``, so "last tick 2 s ago" in `wms-relay status` means a tick that worked.
        self._heartbeat = heartbeat
        self._heartbeat_interval = heartbeat_interval
        self._last_beat = float("-inf")
        # ProbeFiles.alive: called on every turn of the loop, store or no store (the liveness probe's file).
        self._alive = alive
        # Retention (closed dead letters past DEAD_LETTER_RETENTION_DAYS): once an ``purge_interval``.
        self._purge = purge
        self._purge_interval = purge_interval
        self._last_purge = float("-inf")
        # The destinations' periodic jobs (StockTrim's forecast run): each decides itself whether it is due.
        self._housekeeping = tuple(housekeeping)
        self._housekeeping_interval = housekeeping_interval
        self._last_housekeeping = float("-inf")

    def tick(self) -> int:
        """Move every due entry once; return how many were published."""
        now = self._clock()
        self._schedule.recover_stale(now)
        if self._sweep is not None and now - self._last_sweep >= self._sweep_interval:
            self._last_sweep = now
            self._sweep()
        if self._housekeeping and now - self._last_housekeeping >= self._housekeeping_interval:
            self._last_housekeeping = now
            for job in self._housekeeping:
                try:
                    job()
                except Exception as exc:  # noqa: BLE001 — a destination's job must not stop the retries
                    log.warning("housekeeping %r failed (%s: %s)", job, type(exc).__name__, exc)
        published = 0
        while True:
            due = self._schedule.take_due(now, self._batch)
            for ref, message in due:
                try:
                    self._publish(message)
                except Exception as exc:  # the broker is down or refused: keep the entry, try later
                    log.warning("could not publish retry %s (%s); put back", ref, exc)
                    self._schedule.put_back(ref, now + PUT_BACK_DELAY_SECONDS)
                else:
                    self._schedule.confirm(ref)
                    published += 1
            if len(due) < self._batch:
                break
        if self._purge is not None and now - self._last_purge >= self._purge_interval:
            self._last_purge = now
            try:
                self._purge()
            except Exception as exc:  # housekeeping: never let it hold up the retries
                log.warning("retention purge failed (%s: %s); next try in %.0f s", type(exc).__name__, exc,
                            self._purge_interval)
        if self._heartbeat is not None and now - self._last_beat >= self._heartbeat_interval:
            self._heartbeat()
            self._last_beat = now
        return published

    def run(self, stop: threading.Event, *, interval: float = 0.25) -> None:
        log.info("scheduler running: moving due retries every %.2f s", interval)
        while not stop.is_set():
            if self._alive is not None:
                try:
                    self._alive()
                except OSError as exc:  # a full or read-only disk: the probe will say so
                    log.warning("liveness file not touched (%s)", exc)
            try:
                moved = self.tick()
                if moved:
                    log.info("moved %d due retries back to their queues", moved)
            except Exception as exc:  # Redis restarting: wait and go on, nothing is lost
                log.warning("scheduler tick failed (%s: %s); retrying", type(exc).__name__, exc)
                stop.wait(1.0)
            stop.wait(interval)
