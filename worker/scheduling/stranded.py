"""The scheduler's safety net: events that nothing will move any more are put back on their way.

Normally every open event has something that moves it: a message in a queue (accepted), a worker's claim
backed by an unacknowledged message (sending), or an entry in the retry schedule (retrying, waiting).  A
Redis server that dies without flushing its append-only file can lose the last second of writes — the
message but not the ledger record, or the retry entry but not the transition.  This sweep finds records
that have sat in an open state for longer than ``after_seconds`` with nothing to move them, and schedules
them now.  A spare copy is harmless: the ledger's claim sends an event once.  One it has sent again is not
sent again before another ``after_seconds`` have passed: its copy may simply be waiting in a long queue
(a destination held back by its flow control), and a copy every sweep would only make the queue longer —
the chaos run with flow control on grew one to 33,000 copies of ~300 events that way.  Every destination's
ledger is swept (a fanned-out delivery whose message was lost with its worker is found the same way)."""
from __future__ import annotations

import logging
from typing import Callable

from worker.destinations.table import DESTINATIONS, ROWS, WMS_DESTINATION
from worker.store.ledger import Ledger
from worker.store.retry_schedule import RetrySchedule

log = logging.getLogger("wms_relay.stranded")

MOVING_STATES = ("accepted", "sending", "retrying", "waiting")


def message_of(record, destination: str = WMS_DESTINATION.name) -> dict:
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
                 after_seconds: float, batch: int = 200,
                 waits_in_batch: Callable[[str, str], bool] | None = None) -> None:
        """``waits_in_batch(destination, ref)``: is that delivery pending in its destination's batches
        (worker.flow.batches)?  Such a delivery has something to move it — the batch flusher — however
        long it waits (a paused destination)."""
        self._ledger = ledger
        self._schedule = schedule
        self._clock = clock
        self._after = after_seconds
        self._batch = batch
        self._waits_in_batch = waits_in_batch
        self._sent_again: dict[str, float] = {}  # ref -> when this sweep last scheduled it

    def sweep(self) -> int:
        """Schedule every stranded delivery now (every destination's); return how many."""
        now = self._clock()
        self._sent_again = {ref: at for ref, at in self._sent_again.items() if at > now - self._after}
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
                ref = destination.delivery_ref(record.operation, record.key)
                if self._schedule.get(ref) is not None:
                    continue
                if self._waits_in_batch is not None and self._waits_in_batch(destination.name, ref):
                    continue
                if ref in self._sent_again:
                    continue  # sent again less than after_seconds ago: its copy may still be queued
                self._schedule.schedule(ref, message_of(record, destination.name), now)
                self._sent_again[ref] = now
                log.warning("%s sat %s for %.0f s with nothing to move it; scheduled it again",
                            ref, state, now - record.updated_at)
                moved += 1
            if not page:
                return moved
            offset += self._batch
