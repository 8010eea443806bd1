"""Stock counts of a bulk destination (ka-ching, StockTrim, Stock2Shop) delivered in batches.

In: a count for a destination that batches (``<DEST>_BATCH_MAX`` > 0) is accepted in its ledger and added
to its pending counts (:func:`add_to_batch`; worker.flow.batches coalesces them: an older level becomes
``superseded`` here).  It stays ``accepted`` until a batch carries it.  Where the destination's catalog is
required, a count whose artno has no row does not join: it waits (``unmapped``, worker.delivery.catalog_wait)
until an import releases it.

Out: each worker process's flow keeper (worker.delivery.flow_keeper) runs a :class:`BatchFlusher` per bulk
destination.  One batch per destination is in flight at a time, at most one every ``<DEST>_BATCH_SECONDS``,
up to ``<DEST>_BATCH_MAX`` items, through the destination's gate (paused or open: it waits; the rate
limit: one slot per request).  For the batch, every item is claimed in its ledger under the batch's owner
(one attempt each), the request is sent, and the outcome is written on every delivery it carried (the
result names the batch: id, size, status, answer, and the catalog row the count was sent with — ``wms-relay
event`` shows it).  Each count's part of the request is built with its artno's catalog row, looked up for
the whole batch in one store call; a count whose row is gone (a ``--replace`` import removed it) waits
``unmapped`` instead of being sent:

- delivered → ``delivered``;
- refused for its content (StockTrim's 400) → split in halves until the refused items stand alone
  (worker.flow.split): they become dead letters, the rest is delivered;
- refused otherwise (401, an unknown location...) → every item a dead letter;
- transient (5xx, 429, no connection) → ``retrying``: back to pending in their old place (a newer count
  that came meanwhile supersedes them there), the next batch after the backoff; exhausted → dead letter;
- answer lost (read timeout) → levels go back to pending and are sent again (setting a level twice is
  harmless); adds (ka-ching's relative adjustments) become ``uncertain``: adding twice is not;
- answered without confirming all it carried (ka-ching initiated fewer values than sent: UnconfirmedError)
  → every count of that request ``uncertain``, the answer kept: which were applied is not known.

A flusher that dies mid-batch leaves it in flight; after its lease another takes it as an orphan: if a
request of it may have left, its answer is lost (as above), else it is simply sent.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from tasks.events import Delivery, DeliveryEvent
from tasks.schemas import stock
from worker.delivery import catalog_wait
from worker.delivery.failures import dead
from worker.delivery.relay import Relay
from worker.destinations.contract import Classification, classification_of
from worker.destinations.table import DESTINATIONS, ROWS, split_delivery_ref
from worker.errors import DestinationError, OutcomeUnknownError, PermanentError, UnconfirmedError
from worker.flow.batches import ADD, LEVEL, Batch, BatchItem
from worker.flow.gate import PARK
from worker.flow.split import Part, send_in_halves
from worker.store.records import AttemptEntry

log = logging.getLogger("wms_relay.batches")

IDLE_SECONDS = 0.05  # how often an idle flusher looks for pending counts
PARKED_LOOK_SECONDS = 1.0  # how often a flusher of a paused or open destination looks again
LEASE_SECONDS = 60.0  # a batch's lease, renewed before every request of it
LEAD_SECONDS = 0.25  # wake this long before the rate limit's slot: take and claim the batch meanwhile


class NotNow(Exception):
    """The gate said no in the middle of a split: the parts not sent yet go back to pending."""

    def __init__(self, reason: str, wait: float) -> None:
        super().__init__(reason)
        self.wait = wait


def batch_item(delivery: Delivery, fingerprint: str, enqueued_at: float) -> BatchItem:
    kind = LEVEL if delivery.fields.get("type") == stock.ABSOLUTE else ADD
    return BatchItem(ref=delivery.ref, kind=kind, operation=delivery.operation, key=delivery.key,
                     fingerprint=fingerprint, message=delivery.to_message(), enqueued_at=enqueued_at)


def add_to_batch(relay: Relay, delivery: Delivery, accepted: Any) -> str:
    """Make an accepted delivery pending in its destination's batches; the state it is in after that (it
    waits instead where its artno needs a catalog row it has not)."""
    batches = relay.flow.batches(delivery.destination)
    ledger = relay.ledger_of(delivery.destination)
    if catalog_wait.may_wait(relay, delivery.row):
        if catalog_wait.row_of(relay, delivery) is None:
            return catalog_wait.wait_for_row(relay, delivery)
        if accepted.state == "waiting":  # released by an import (or its re-check found the row)
            catalog_wait.found_row(relay, delivery, accepted.state)
            ledger.transition(delivery.operation, delivery.key, "accepted", expected_states=("waiting",),
                              reason="its catalog row is there now; pending in the next batch")
    added = batches.add(batch_item(delivery, accepted.fingerprint, relay.clock()))
    if added.status == "superseded":
        ledger.transition(delivery.operation, delivery.key, "superseded",
                          expected_states=("accepted", "retrying", "waiting"),
                          reason=f"a newer absolute value (occurred_at {added.newer}) was recorded for "
                                 "sending")
        return "superseded"
    if added.replaced:
        _supersede(relay, delivery.destination, added.replaced, delivery.occurred_at)
    return "accepted"


def _supersede(relay: Relay, destination: str, ref: str, newer: str) -> None:
    found = split_delivery_ref(ref)
    if found is None:
        return
    _, operation, key = found
    relay.ledger_of(destination).transition(
        operation, key, "superseded", expected_states=("accepted", "retrying", "waiting"),
        reason=f"a newer absolute value (occurred_at {newer}) replaced it in the pending batch")


def delivery_of(destination: str, item: BatchItem) -> Delivery:
    message = dict(item.message)
    event_id = message.pop("event_id", None)
    occurred_at = message.pop("occurred_at")
    return Delivery(ROWS[destination, item.operation],
                    DeliveryEvent(item.operation, item.key, message, occurred_at, event_id))


@dataclass(frozen=True)
class _Carried:
    """An item claimed for this batch: its delivery, claim and request entry."""

    item: BatchItem
    delivery: Delivery
    attempt: int
    round_attempt: int
    entry: Any = None
    catalog_row: Any = None


class _Request:
    """What one request of the batch looks like to the observer's attempt line: the operation of the
    counts it carries."""

    def __init__(self, destination: str, batch: Batch, size: int) -> None:
        self.destination, self.key = destination, f"batch:{batch.batch_id} ({size} items)"
        self.operation = ",".join(dict.fromkeys(item.operation for item in batch.items))


class BatchFlusher:
    """Sends one bulk destination's batches from this process (see the module docstring)."""

    def __init__(self, relay: Relay, destination: str, *, holder: str | None = None) -> None:
        self.relay = relay
        self.destination = destination
        self.title = DESTINATIONS[destination].title
        self.limits = relay.settings.flow_of(destination)
        self.batches = relay.flow.batches(destination)
        self.gate = relay.flow.gate(destination)
        self.sender = DESTINATIONS[destination].batch
        self.holder = holder or f"{os.getpid()}:{threading.get_ident()}"

    # -- the loop's one step ----------------------------------------------------------------------------
    def flush_once(self) -> float:
        """Send the next batch if one is due; seconds until it is worth looking again."""
        now = self.relay.clock()
        pending, lease, next_at = self.batches.peek()
        if lease is not None and lease > now:
            return min(lease - now, 0.5)  # another flusher's batch is out
        if lease is None:
            if pending == 0:
                return IDLE_SECONDS
            if next_at is not None and next_at > now:
                return next_at - now
        verdict = self.gate.admit(lead=LEAD_SECONDS)
        if not verdict.sends:
            if verdict.action == PARK:
                return PARKED_LOOK_SECONDS
            return max(min(verdict.wait, 1.0), IDLE_SECONDS)
        taken = self.batches.take(self.holder, max_items=self.limits.batch_max, lease_seconds=LEASE_SECONDS,
                                  batch_seconds=self.limits.batch_seconds)
        if taken.batch is None:
            self.gate.report(ticket=verdict.ticket, sent=False)
            return taken.wait or IDLE_SECONDS
        if taken.batch.orphan:
            log.warning("%s: took batch %s (%d count(s)) again: the flusher that had it stopped before "
                        "settling it (its lease ran out)", self.title, taken.batch.batch_id,
                        len(taken.batch.items))
        if taken.batch.orphan and taken.batch.sent and taken.batch.kind == ADD:
            self.gate.report(ticket=verdict.ticket, sent=False)
            self._answer_lost(taken.batch)
            return 0.0
        self.send(taken.batch, verdict.ticket, at=verdict.at)
        return 0.0

    # -- one batch ---------------------------------------------------------------------------------------
    def send(self, batch: Batch, ticket: str = "", *, at: float = 0.0) -> None:
        """Claim, send (splitting a refusal for content), record, settle.  The first request leaves at
        ``at`` (its rate-limit slot), not before."""
        carried = self._claim(batch)
        if not carried:
            self.gate.report(ticket=ticket, sent=False)
            self.batches.settle(batch, failures="keep")
            return
        client = self.relay.client_of(self.destination)
        named = catalog_wait.looks_up(carried[0].delivery.row)
        rows = catalog_wait.rows_of(self.relay, self.destination, [one.item.artno for one in carried]) \
            if named else {}
        sendable = []
        for one in carried:
            row = rows.get(one.item.artno)
            if named and row is None:  # its row is gone since it joined (a --replace import): it waits
                catalog_wait.wait_for_row(self.relay, one.delivery, owner=batch.owner)
                continue
            try:
                sendable.append(_Carried(one.item, one.delivery, one.attempt, one.round_attempt,
                                         self.sender.entry(client, one.item, row), row))
            except PermanentError as exc:
                self._dead(batch, [one], exc, size=1)
        if not sendable:
            self.gate.report(ticket=ticket, sent=False)
            self.batches.settle(batch, failures="keep")
            return
        tickets = [ticket]

        def request(chunk):
            if tickets:
                first = tickets.pop()
                early = at - self.relay.clock()
                if early > 0:
                    time.sleep(early)
            else:
                verdict = self.gate.admit()
                if not verdict.sends:
                    raise NotNow(verdict.reason, verdict.wait)
                first = verdict.ticket
            self.batches.renew(batch, self.holder, LEASE_SECONDS)
            self.batches.mark_sent(batch)
            started = time.monotonic()
            try:
                reply = self.sender.send(client, batch.kind, [one.entry for one in chunk])
            except DestinationError as exc:
                self.gate.report(exc, ticket=first)
                self._observe(batch, len(chunk), exc, exc.status, time.monotonic() - started)
                raise
            self.gate.report(None, ticket=first)
            self._observe(batch, len(chunk), None, reply.status, reply.latency_seconds)
            return reply

        parts = send_in_halves(sendable, request)
        self._record(batch, parts)

    def _claim(self, batch: Batch) -> list[_Carried]:
        carried = []
        for item in batch.items:
            ledger = self.relay.ledger_of(self.destination)
            claim = ledger.claim(item.operation, item.key, item.fingerprint, batch.owner)
            if claim.status != "claimed":
                continue  # settled meanwhile (a person, or an earlier copy), or another worker has it
            carried.append(_Carried(item, delivery_of(self.destination, item), claim.attempt,
                                    claim.round_attempt))
        return carried

    def _record(self, batch: Batch, parts: list[Part]) -> None:
        returned: list[_Carried] = []
        failed = None
        for part in parts:
            if part.delivered:
                self._delivered(batch, part)
            elif isinstance(part.error, PermanentError):
                self._dead(batch, list(part.items), part.error, size=len(part.items))
            elif isinstance(part.error, UnconfirmedError) or (
                    isinstance(part.error, OutcomeUnknownError) and part.sent and batch.kind == ADD):
                self._uncertain(batch, list(part.items), part.error)
            else:
                failed = part.error
                returned += self._retry(batch, part)
        now = self.relay.clock()
        if failed is None:
            self.batches.settle(batch, [one.item for one in returned], failures="reset")
            return
        failures = self.batches.failures() + (0 if isinstance(failed, NotNow) else 1)
        if isinstance(failed, NotNow):
            next_at, change = now + max(failed.wait, PARKED_LOOK_SECONDS), "keep"
        else:
            delay = self.relay.policy.delay(max(failures, 1), self.relay.rng,
                                            retry_after=getattr(failed, "retry_after", None))
            next_at, change = now + delay, "add"
        _, superseded = self.batches.settle(batch, [one.item for one in returned], next_at=next_at,
                                            failures=change)
        for ref in superseded:
            _supersede(self.relay, self.destination, ref, "(a count that came while the batch was out)")

    def _result(self, batch: Batch, size: int, reply: Any) -> dict:
        return {"batch": batch.batch_id, "batch_size": size, **reply.ledger_result()}

    def _delivered(self, batch: Batch, part: Part) -> None:
        reply = part.reply
        result = self._result(batch, len(part.items), reply)
        ledger = self.relay.ledger_of(self.destination)
        for one in part.items:
            tried = AttemptEntry(one.attempt, "delivered", reply.status, None,
                                 (f"batch {batch.batch_id} of {len(part.items)}",),
                                 latency=reply.latency_seconds, at=self.relay.clock())
            ledger.transition(one.item.operation, one.item.key, "delivered", owner=batch.owner,
                              result=catalog_wait.result_with(result, one.catalog_row), log=tried,
                              reason=f"delivered in batch {batch.batch_id} ({len(part.items)} items)")

    def _tried(self, batch: Batch, one: _Carried, exc: BaseException, size: int) -> AttemptEntry:
        messages = tuple(getattr(exc, "error_messages", None) or []) or (str(exc),)
        status, code = getattr(exc, "status", None), getattr(exc, "error_code", None)
        return AttemptEntry(one.attempt, _outcome(exc), status, code,
                            (f"batch {batch.batch_id} of {size}", *messages),
                            latency=getattr(exc, "latency_seconds", None), at=self.relay.clock())

    def _dead(self, batch: Batch, carried: list[_Carried], exc: DestinationError, *, size: int) -> None:
        for one in carried:
            dead(self.relay, one.delivery, batch.owner, reason="permanent",
                 detail=f"{self.title} refused it (batch {batch.batch_id}, {size} item(s)): {exc}", exc=exc,
                 tried=self._tried(batch, one, exc, size))

    def _uncertain(self, batch: Batch, carried: list[_Carried], exc: BaseException) -> None:
        if isinstance(exc, UnconfirmedError):
            reason = (f"{self.title} answered batch {batch.batch_id} ({len(carried)} item(s)) without "
                      f"confirming all it carried ({exc}); not resent — a person must check {self.title}")
        else:
            reason = (f"no answer to batch {batch.batch_id} ({exc}); adjustments add up, so it is not "
                      f"resent — a person must check {self.title}")
        ledger = self.relay.ledger_of(self.destination)
        for one in carried:
            if ledger.transition(one.item.operation, one.item.key, "uncertain", owner=batch.owner,
                                 reason=reason, log=self._tried(batch, one, exc, len(carried))):
                self.relay.observer.parked(one.delivery, "uncertain", reason)

    def _retry(self, batch: Batch, part: Part) -> list[_Carried]:
        exc = part.error
        if isinstance(exc, NotNow):
            reason = f"not sent: {exc}; back to pending (no attempt counted for this)"
        else:
            reason = f"batch {batch.batch_id} failed ({exc}); back to pending"
        ledger = self.relay.ledger_of(self.destination)
        back = []
        for one in part.items:
            tried = None if isinstance(exc, NotNow) else self._tried(batch, one, exc, len(part.items))
            if tried is not None and self.relay.policy.exhausted(one.round_attempt):
                dead(self.relay, one.delivery, batch.owner, reason="exhausted",
                     detail=f"gave up after {one.attempt} attempts; last error: {exc}", exc=exc, tried=tried)
                continue
            if ledger.transition(one.item.operation, one.item.key, "retrying", owner=batch.owner,
                                 reason=reason, log=tried):
                back.append(one)
        return back

    def _answer_lost(self, batch: Batch) -> None:
        """An orphaned batch of adds whose request may have left: each add is uncertain (ka-ching may have
        added it; adding again could add it twice)."""
        carried = self._claim(batch)
        exc = OutcomeUnknownError("the worker sending this batch stopped before its answer came",
                                  destination=self.destination, operation="batch")
        self._uncertain(batch, carried, exc)
        self.batches.settle(batch, failures="keep")

    def _observe(self, batch: Batch, size: int, exc: BaseException | None, status: int | None,
                 latency: float | None) -> None:
        self.relay.observer.attempt(_Request(self.destination, batch, size), 1, _outcome(exc),
                                    status=status, error_code=None, latency=latency)


def _outcome(exc: BaseException | None) -> str:
    """An attempt's outcome, in the classification's words (worker.destinations.contract)."""
    return Classification.DELIVERED.value if exc is None else classification_of(exc).value
