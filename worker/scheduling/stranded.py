"""The scheduler's safety net: events that nothing will move any more are put back on their way.

Normally every open event has something that moves it: a message in a queue (accepted), a worker's claim
backed by an unacknowledged message (sending), or an entry in the retry schedule (retrying, waiting).  A
Redis server that dies without flushing its append-only file can lose the last second of writes — the
message but not the ledger record, or the retry entry but not the transition.  This sweep finds records
that have sat in an open state for longer than ``after_seconds`` and schedules them now — but only those
for which no message can still be queued or held by a worker (issue 21): age alone cannot tell "lost"
from "waiting behind a long queue" (a destination held back by its flow control, an outage's backlog),
and a copy for each of those only makes the queue longer (the chaos run once grew one to 33,000 copies).

What it knows (``worker.store.broker_queues``), once per sweep — the queues and the unacknowledged set
read at one instant (a message a restore moves from the one to the other is seen in one of them):

- *the queues*: a queue is FIFO and our messages carry their publish time, so the oldest one still queued
  says that every message published before it has left (an empty queue: every message published before
  now).  A record's message was published when it entered its state (the door and the fan-out write
  both together) or, for a retry, when the scheduler published it (the retry schedule notes that time:
  ``RetrySchedule.published_at``); the later of the two counts.  A record whose message may still be
  queued — published less than ``CLOCK_MARGIN_SECONDS`` before the oldest queued one, or after — is
  left alone; so is every record of a queue whose oldest messages say nothing (a WMS's own messages);
- *the unacknowledged set*: a record whose message a worker holds (prefetched, or running, or of a dead
  worker, which Celery puts back on its queue after the visibility timeout) is left alone;
- *a bulk destination's batches* (``worker.flow.batches``), read when a record of that destination is
  left after the above: a count pending there has the batch flusher to move it, however long it waits (a
  paused destination); a count carried by the batch in flight has that batch's flusher, and once its lease
  runs out the next take of the orphaned batch (a flusher takes it at its next look).  Such a count sits
  ``sending`` under its batch's claim — the claim's own lease is short, the batch's ``LEASE_SECONDS`` long
  — and a copy of it would find it claimed and do nothing (the chaos run once made 2% of its events in
  such copies, one every sweep per count of a killed worker's batch).  So a count in the batch in flight
  is left alone while the batch's lease lives and for ``after_seconds`` after it ran out; a batch still in
  flight that long after its lease is one nothing takes (no flusher runs for it: the workers no longer
  batch that destination, and a copy goes their per-event way), and its counts are swept like any other
  record.  (Its gate holding it — a destination paused after a flusher died mid-batch — looks the same
  from here: those copies find their counts claimed and do nothing until the resume.)

A spare copy stays harmless (the ledger's claim sends an event once): the rule only keeps the queues from
growing by the sweep's own copies.  Every destination's ledger is swept (a fanned-out delivery whose
message was lost with its worker is found the same way)."""
from __future__ import annotations

import logging
from typing import Callable

from tasks.events import InvalidEvent, validate_event
from worker.destinations.table import DESTINATIONS, QUEUES, ROWS, TASKS, WMS_DESTINATION
from worker.flow.batches import Batches
from worker.store.broker_queues import broker_snapshot
from worker.store.ledger import Ledger
from worker.store.retry_schedule import RetrySchedule

log = logging.getLogger("wms_relay.stranded")

MOVING_STATES = ("accepted", "sending", "retrying", "waiting")
# Publishers' clocks differ a little (and a publish follows its record's write by a moment): a message
# counts as gone from its queue only if it was published this much before the oldest one still queued.
CLOCK_MARGIN_SECONDS = 5.0
# Publish times of retries are kept at most this long when a queue says nothing (so the set stays bounded).
PUBLISHED_KEPT_SECONDS = 86400.0


def message_of(record, destination: str = WMS_DESTINATION.name) -> dict:
    """The task message ({"task", "event"}) that re-delivers a ledger record's event to ``destination``
    (the record is from that destination's ledger)."""
    event = record.event
    body = dict(event["fields"])
    if event.get("event_id") is not None:
        body["event_id"] = event["event_id"]
    body["occurred_at"] = event["occurred_at"]
    return {"task": ROWS[destination, record.operation].task_name, "event": body}


def unacked_refs(messages: list[tuple[str, list]]) -> set[str]:
    """The deliveries whose messages workers hold (``broker_queues.broker_snapshot``)."""
    refs = set()
    for task, args in messages:
        row = TASKS.get(task)
        if row is None or not args:
            continue
        try:
            key = validate_event(row.name, args[0]).key
        except InvalidEvent:
            continue
        refs.add(DESTINATIONS[row.destination].delivery_ref(row.name, key))
    return refs


class StrandedSweep:
    def __init__(self, ledger: Ledger, schedule: RetrySchedule, *, broker, clock: Callable[[], float],
                 after_seconds: float, batch: int = 1000,
                 batches: Callable[[str], Batches | None] | None = None) -> None:
        """``broker``: the broker's Redis client (the store's: the queues and the unacknowledged set).
        ``batches(destination)``: that destination's pending counts and batch in flight
        (worker.flow.batches) where it takes its counts in batches, None where it does not: what they
        move is left alone (the module docstring)."""
        self._ledger = ledger
        self._schedule = schedule
        self._broker = broker
        self._clock = clock
        self._after = after_seconds
        self._batch = batch
        self._batches = batches
        self._carried: dict[str, tuple[float | None, frozenset[str]]] = {}  # this sweep's batches in flight
        self.left_queued = 0  # records of the last sweep left alone because their message may be queued

    def sweep(self) -> int:
        """Schedule every stranded delivery now (every destination's); return how many."""
        now = self._clock()
        gone_before, holding = broker_snapshot(self._broker, QUEUES, now)
        held = unacked_refs(holding)
        known = [w for w in gone_before.values() if w is not None]
        forget = min(known) if len(known) == len(gone_before) else now - PUBLISHED_KEPT_SECONDS
        self._schedule.forget_published(min(forget, now) - CLOCK_MARGIN_SECONDS)
        self.left_queued = 0
        self._carried.clear()
        return sum(self._sweep_state(destination, state, now, gone_before, held)
                   for destination in DESTINATIONS.values() for state in MOVING_STATES)

    def _sweep_state(self, destination, state: str, now: float, gone_before: dict, held: set) -> int:
        """Page through ``state``'s index, oldest first, until the records are younger than the threshold:
        the many events that are merely scheduled (retrying after an outage) must not hide a stranded one.
        A page costs three round trips (the index, the publish times, the schedule); only the records
        left after those are read."""
        moved, offset = 0, 0
        ledger = self._ledger.sibling(destination.namespace)
        while True:
            page = ledger.entered_state(state, self._batch, offset=offset)
            old = [(operation, key, at) for operation, key, at in page if at <= now - self._after]
            candidates = [(operation, key, at, destination.delivery_ref(operation, key))
                          for operation, key, at in old if (destination.name, operation) in ROWS]
            published = self._schedule.published_at([ref for *_, ref in candidates])
            unqueued = [(operation, key, ref) for (operation, key, at, ref), retried_at
                        in zip(candidates, published)
                        if self._left_its_queue(destination, operation, ref, at, retried_at, gone_before)]
            self.left_queued += len(candidates) - len(unqueued)
            scheduled = self._schedule.scheduled([ref for *_, ref in unqueued])
            # A retry entry moves it; a worker holds its message.
            unmoved = [(operation, key, ref) for (operation, key, ref), in_schedule
                       in zip(unqueued, scheduled) if not in_schedule and ref not in held]
            records = ledger.get_many([(operation, key) for operation, key, _ in unmoved])
            for (operation, key, ref), record in zip(unmoved, records):
                if record is None or record.state != state:
                    continue  # moved on since the page was read
                if state == "sending" and (record.lease_expires_at or 0) > now:
                    continue  # a live worker holds it
                if self._batch_moves(destination.name, ref, now):
                    continue
                self._schedule.schedule(ref, message_of(record, destination.name), now)
                log.warning("%s sat %s for %.0f s with nothing to move it; scheduled it again",
                            ref, state, now - (record.updated_at or now))
                moved += 1
            if len(old) < len(page) or len(page) < self._batch:
                return moved
            offset += self._batch

    def _batch_moves(self, destination: str, ref: str, now: float) -> bool:
        """Will ``destination``'s batches move delivery ``ref``: pending there, or carried by the batch in
        flight under a live lease or one that ran out less than ``after_seconds`` ago?  The batch in flight
        is read once per destination per sweep (a round trip), and only for a record left after every
        other question."""
        batches = self._batches(destination) if self._batches is not None else None
        if batches is None:
            return False
        if destination not in self._carried:
            self._carried[destination] = batches.carried()
        lease, refs = self._carried[destination]
        if ref in refs and lease is not None and lease > now - self._after:
            return True
        return batches.holds(ref)

    @staticmethod
    def _left_its_queue(destination, operation: str, ref: str, entered_at: float,
                        retried_at: float | None, gone_before: dict) -> bool:
        """Has every message published for the record certainly left its queue?  Its message was
        published when it entered its state, or (a retry) when the scheduler published it, whichever is
        later."""
        left_before = gone_before.get(ROWS[destination.name, operation].queue)
        published = max(entered_at, retried_at or 0.0)
        return left_before is not None and published < left_before - CLOCK_MARGIN_SECONDS
