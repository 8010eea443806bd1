"""The scheduler's safety net: events that nothing will move any more are put back on their way.

Normally every open event has something that moves it: a message in a queue (accepted), a worker's claim
backed by an unacknowledged message (sending), or an entry in the retry schedule (retrying, waiting).  A
Redis server that dies without flushing its append-only file can lose the last second of writes — the
message but not the ledger record, or the retry entry but not the transition.  This sweep finds records
that have sat in an open state for longer than ``after_seconds`` with nothing to move them, and schedules
them now.  A spare copy is harmless: the ledger's claim sends an event once."""
from __future__ import annotations

import logging
from typing import Callable

from worker.encoding import event_ref
from tasks.events import task_message
from worker.store.ledger import Ledger
from worker.store.retry_schedule import RetrySchedule

log = logging.getLogger("wms_relay.stranded")

MOVING_STATES = ("accepted", "sending", "retrying", "waiting")


def message_of(record) -> dict:
    """The task message ({"task", "event"}) that re-delivers a ledger record's event."""
    event = record.event
    body = dict(event["fields"])
    if event.get("event_id") is not None:
        body["event_id"] = event["event_id"]
    body["occurred_at"] = event["occurred_at"]
    return task_message(record.operation, body)


class StrandedSweep:
    def __init__(self, ledger: Ledger, schedule: RetrySchedule, *, clock: Callable[[], float],
                 after_seconds: float, batch: int = 200) -> None:
        self._ledger = ledger
        self._schedule = schedule
        self._clock = clock
        self._after = after_seconds
        self._batch = batch

    def sweep(self) -> int:
        """Schedule every stranded event now; return how many."""
        now = self._clock()
        return sum(self._sweep_state(state, now) for state in MOVING_STATES)

    def _sweep_state(self, state: str, now: float) -> int:
        """Page through ``state``, oldest first, until the records are younger than the threshold: the
        many events that are merely scheduled (retrying after an outage) must not hide a stranded one."""
        moved, offset = 0, 0
        while True:
            page = self._ledger.list_in_state(state, self._batch, offset=offset)
            for record in page:
                if record.updated_at is None or record.updated_at > now - self._after:
                    return moved
                if state == "sending" and (record.lease_expires_at or 0) > now:
                    continue  # a live worker holds it
                eid = event_ref(record.operation, record.key)
                if self._schedule.get(eid) is not None:
                    continue
                self._schedule.schedule(eid, message_of(record), now)
                log.warning("%s %s sat %s for %.0f s with nothing to move it; scheduled it again",
                            record.operation, record.key, state, now - record.updated_at)
                moved += 1
            if not page:
                return moved
            offset += self._batch
