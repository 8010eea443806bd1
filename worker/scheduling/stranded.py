"""The scheduler's safety net: events that nothing will move any more are put back on their way.

Normally every open event has something that moves it: a message in a queue (accepted), a worker's claim
backed by an unacknowledged message (sending), or an entry in the retry schedule (retrying, waiting).  A
Redis server that dies without flushing its append-only file can lose the last second of writes — the
message but not the ledger record, or the retry entry but not the transition.  This sweep finds records
that have sat in an open state for longer than ``after_seconds`` with nothing to move them, and schedules
them now.  A spare copy is harmless: the ledger's claim sends an event once.  Every destination's ledger is
swept (a fanned-out delivery whose message was lost with its worker is found the same way)."""
from __future__ import annotations

import logging
from typing import Callable

from worker.destinations.table import DESTINATIONS, INTAKE, ROWS
from worker.store.ledger import Ledger
from worker.store.retry_schedule import RetrySchedule

log = logging.getLogger("wms_relay.stranded")

MOVING_STATES = ("accepted", "sending", "retrying", "waiting")


def message_of(record, destination: str = INTAKE.name) -> dict:
    """The task message ({"task", "event"}) that re-delivers a ledger record's event to ``destination``
    (the record is from that destination's ledger)."""
    event = record.event
    body = dict(event["fields"])
    if event.get("event_id") is not None:
        body["event_id"] = event["event_id"]
    body["occurred_at"] = event["occurred_at"]
    return {"task": ROWS[destination, record.operation].task_name, "event": body}


class StrandedSweep:
    def __init__(self, ledger: Ledger, schedule: RetrySchedule, *, clock: Callable[[], float],
                 after_seconds: float, batch: int = 200) -> None:
        self._ledger = ledger
        self._schedule = schedule
        self._clock = clock
        self._after = after_seconds
        self._batch = batch

    def sweep(self) -> int:
        """Schedule every stranded delivery now (every destination's); return how many."""
        now = self._clock()
        return sum(self._sweep_state(destination, state, now)
                   for destination in DESTINATIONS.values() for state in MOVING_STATES)

    def _sweep_state(self, destination, state: str, now: float) -> int:
        """Page through ``state``, oldest first, until the records are younger than the threshold: the
        many events that are merely scheduled (retrying after an outage) must not hide a stranded one."""
        moved, offset = 0, 0
        ledger = self._ledger.sibling(destination.namespace)
        while True:
            page = ledger.list_in_state(state, self._batch, offset=offset)
            for record in page:
                if record.updated_at is None or record.updated_at > now - self._after:
                    return moved
                if state == "sending" and (record.lease_expires_at or 0) > now:
                    continue  # a live worker holds it
                if (destination.name, record.operation) not in ROWS:
                    continue  # not an operation it takes (any more): nothing could deliver it
                eid = destination.delivery_ref(record.operation, record.key)
                if self._schedule.get(eid) is not None:
                    continue
                self._schedule.schedule(eid, message_of(record, destination.name), now)
                log.warning("%s sat %s for %.0f s with nothing to move it; scheduled it again",
                            eid, state, now - record.updated_at)
                moved += 1
            if not page:
                return moved
            offset += self._batch
