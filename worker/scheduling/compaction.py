"""The scheduler's compaction chore: every destination's settled records that have kept their details for
SETTLED_DETAIL_HOURS are compacted (worker.store.settled_records) — at most every :data:`COMPACT_SECONDS`,
in bounded batches (what is left waits for the next run), so the retries it runs beside are never held up
for long.  Every destination's ledger, on or off: a destination switched off still has its records."""
from __future__ import annotations

import logging
from typing import Callable

from worker.destinations.table import DESTINATIONS, ROWS
from worker.store.settled_records import SettledRecords

log = logging.getLogger("wms_relay.compaction")

COMPACT_SECONDS = 30.0


class Compaction:
    """One scheduler's compaction chore (a housekeeping job: call it often, it decides when it is due)."""

    def __init__(self, redis_client, *, detail_hours: float, clock: Callable[[], float],
                 interval: float = COMPACT_SECONDS) -> None:
        self._clock = clock
        self._interval = interval
        self._last = float("-inf")
        # Every operation of the table for every ledger: one list each to look at (a missing one costs a
        # read of nothing), none forgotten.
        operations = tuple(dict.fromkeys(operation for _, operation in ROWS))
        self._ledgers = [SettledRecords(redis_client, target.namespace, operations=operations,
                                        detail_seconds=detail_hours * 3600.0, clock=clock)
                         for target in DESTINATIONS.values()]

    def __call__(self) -> int:
        """Compact what is due, if a run is due; how many records were compacted."""
        now = self._clock()
        if now - self._last < self._interval:
            return 0
        self._last = now
        compacted = sum(ledger.tidy() for ledger in self._ledgers)
        if compacted:
            log.info("compacted %d settled records (their details kept the set time)", compacted)
        return compacted
