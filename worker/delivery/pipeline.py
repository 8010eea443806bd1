"""The delivery pipeline of one event to one destination: validate → accept → fan out → resolve
dependencies → claim → send → classify.

docs/architecture.md draws where it sits.  Every path ends in a ledger state a person can see:
delivered, retrying (a durable entry in the retry schedule), waiting, superseded, uncertain or dead (a
dead letter).  The store being unreachable (Redis restarting) does not end a delivery: ``deliver`` waits
for it and runs the event again (see :func:`deliver`).

    deliver(relay, operation, message, owner=..., destination=...) -> the state this run left it in

The WMS publishes to the first destination (``worker.destinations.table.WMS_DESTINATION``).  Its run *fans
out* before it sends (``worker.delivery.fan_out``): every other destination that is on and takes the event
(``table.routes``) gets the event accepted in its own ledger and its own task message on its own queue,
so each destination's delivery is claimed, retried and parked on its own — a destination that is down delays
only its own deliveries (docs/architecture.md, "One event, several destinations").

Where a send does not deliver the event (retry later, read back, dead letter, uncertain):
worker.delivery.failures.  Invalid and conflicting events at the door: worker.delivery.rejections.  The
policies a row's flags turn on: a change to a shipment waits for its create (``needs_dispatch_id``,
``wakes_dispatch_waiters``: worker.delivery.dispatch_wait), an absolute count takes its SKU's turn
(``ordered_by_sku``: worker.delivery.stock_turn), a count names its product by its catalog row and waits
for one where the catalog is required (``uses_catalog``: worker.delivery.catalog_wait), a final dispatch is
handed to its sender as one sales order, read back first where an earlier answer was lost
(``makes_sales_order``: worker.delivery.sales_orders).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import redis

from tasks.events import Delivery, DeliveryEvent, InvalidEvent, validate_event
from worker.encoding import utf8_safe
from worker.delivery import catalog_wait, dispatch_wait, sales_orders, stock_turn
from worker.delivery.failures import after_failure, ensure_dead_letter, keep_attempt
from worker.delivery.batch_delivery import add_to_batch
from worker.delivery.fan_out import fan_out
from worker.delivery.held import hold_back
from worker.delivery.rejections import best_key, reject_conflict, reject_invalid
from worker.delivery import unknown_dispatch_ids
from worker.delivery.relay import Relay
from worker.destinations.contract import Operation, classification_of
from worker.destinations.table import DESTINATIONS, ROWS, WMS_DESTINATION
from worker.errors import DestinationError, TransientError
from worker.store.records import AttemptEntry
from worker.store.requests import fresh_id, replayable

log = logging.getLogger("wms_relay.delivery")

# While the store is unreachable, a delivery looks again this often.
STORE_OUTAGE_PAUSE_SECONDS = 1.0
_STORE_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)  # BusyLoadingError (AOF loading) included


# States in which a new copy of the event is not sent (a person, or nothing, moves it on).
SETTLED = ("delivered", "superseded", "discarded", "dead", "uncertain")


@dataclass(frozen=True)
class Admission:
    """What became of an event at the door: its key, its ledger state, and the validated event."""

    operation: str
    key: str
    state: str
    detail: str = ""
    event: DeliveryEvent | None = None
    accepted: Any = None
    refusal: str = ""  # "invalid" or "conflict" when the event was turned away (a dead letter), else ""
    problems: dict | None = None  # invalid: field path -> messages, as the dead letter keeps them


def admit(relay: Relay, operation: str, message: Any, *,
          destination: str = WMS_DESTINATION.name) -> Admission:
    """Validate and record an event in ``destination``'s ledger (``wms-relay enqueue`` starts here; a
    worker's task records it in its take step: :func:`deliver`).

    Invalid → dead letter naming the fields; same key with another payload → conflict dead letter.
    Both are never sent.  Otherwise the event is in the ledger (``accepted``, or the state it already had)."""
    event, refused = _validated(relay, operation, message, destination)
    if refused is not None:
        return refused
    accepted = relay.ledger_of(destination).accept(event)
    if accepted.conflict:
        return _conflict(relay, Delivery(ROWS[destination, operation], event), accepted)
    return Admission(operation, event.key, accepted.state, "", event, accepted)


def _validated(relay: Relay, operation: str, message: Any,
               destination: str) -> tuple[DeliveryEvent | None, Admission | None]:
    """The valid event, or the Admission of an invalid one (its dead letter written)."""
    try:
        return validate_event(operation, message), None
    except InvalidEvent as exc:
        reject_invalid(relay, operation, message, exc, destination=destination)
        return None, Admission(operation, best_key(message), "dead", f"invalid: {exc}", refusal="invalid",
                               problems=utf8_safe(exc.messages))


def _conflict(relay: Relay, delivery: Delivery, accepted: Any) -> Admission:
    reject_conflict(relay, delivery, accepted)
    return Admission(delivery.operation, delivery.key, "dead",
                     "conflict: same key, different payload; not sent", refusal="conflict")


@dataclass
class _Run:
    """What one delivery did that the store may not know yet: ``sent`` once the request left; ``finish``
    then records its outcome (the destination's answer or error), and is what runs again after a store
    outage."""

    sent: bool = False
    finish: Callable[[], str] | None = None
    turn_given_back: bool = False  # the delivered step gave the SKU's turn back with the recording
    # The request-id base of the recording: unique per delivery (owners are unique per task in a worker,
    # but not in every caller).
    nonce: str = field(default_factory=fresh_id)  # no system call per delivery (worker.store.requests)


def deliver(relay: Relay, operation: str, message: Any, *, owner: str,
            destination: str = WMS_DESTINATION.name) -> str:
    """Take one event from the queue to a state of ``destination``'s delivery.  Safe to call any number
    of times for one event.

    If the store becomes unreachable midway, the event is run again (same owner) once the store answers,
    for up to the visibility timeout.  Letting the error end the task instead loses the event: Celery
    acknowledges a failed task (acks_late acks failures too) as soon as the store is back, and the event
    stays ``sending`` with no message left to finish it — the chaos run's Redis restart left 16 of 60
    receipts so.  Past the visibility timeout the error propagates (the broker hands the message out again
    by then anyway).

    Before the send, running again takes back this run's own claim — not an interrupted send: nothing
    left.  After the send, the outcome is known and is kept here until the store takes it, however long
    that is: only its recording runs again, each store call replaying its first reply
    (``worker.store.requests``), so a 200 is recorded ``delivered`` with the destination's answer, never
    ``uncertain``, and no attempt is logged twice."""
    give_up_at = relay.clock() + relay.settings.visibility_timeout_seconds
    run = _Run()
    while True:
        try:
            if run.finish is not None:
                return run.finish()
            return _deliver(relay, operation, message, owner=owner, destination=destination, run=run)
        except _STORE_UNREACHABLE as exc:
            if run.finish is None and relay.clock() >= give_up_at:
                raise
            log.warning("store unreachable while delivering %s to %s (%s: %s)%s; trying again in %.0f s",
                        operation, destination, type(exc).__name__, exc,
                        ": the send's outcome is kept until it is recorded" if run.finish else "",
                        STORE_OUTAGE_PAUSE_SECONDS)
            time.sleep(STORE_OUTAGE_PAUSE_SECONDS)


def _deliver(relay: Relay, operation: str, message: Any, *, owner: str, destination: str, run: _Run) -> str:
    row = ROWS.get((destination, operation))
    if row is None and destination != WMS_DESTINATION.name:
        raise LookupError(f"{destination} takes no {operation!r} (no row in its table)")
    # A count for a bulk destination joins its batch (worker.flow); any other delivery is taken in one step
    # with its destination's gate (pause → circuit → rate limit) before its claim, so one held back costs
    # no attempt (worker.flow.send_steps).
    if row is not None and row.batchable and relay.flow.batched(destination):
        return _batched(relay, operation, message, destination, row)
    event, refused = _validated(relay, operation, message, destination)
    if refused is not None:
        return refused.state
    delivery = Delivery(row, event)
    # An event that may have to wait (for its shipment's create, for its catalog row, for a final dispatch's
    # lines) is claimed only once it need not.
    waits = dispatch_wait.waits(row) or catalog_wait.may_wait(relay, row) or sales_orders.makes(row)
    turn = None if waits else stock_turn.turn_of(delivery)
    taken = relay.send_steps_of(destination).take(event, owner, claim=not waits, turn=turn)
    passage = _Passage(relay.flow.gate(destination), taken.verdict.ticket if taken.verdict else "")
    try:
        return _deliver_taken(relay, delivery, taken, owner=owner, run=run, passage=passage)
    finally:
        passage.give_back()


class _Passage:
    """A send the gate let through: its outcome goes back to the gate once (or, if no send happened
    after all, its ticket).  Best effort: the store unreachable at that moment costs the circuit one
    report, never the send's outcome (which :func:`deliver` keeps until the ledger has it).  A delivered
    send's answer goes with its recording (worker.flow.send_steps' delivered step: :meth:`told`)."""

    def __init__(self, gate, ticket: str) -> None:
        self._gate, self.ticket, self._done = gate, ticket, False

    def report(self, error: Any) -> None:
        self._done = True
        try:
            self._gate.report(error, ticket=self.ticket)
        except _STORE_UNREACHABLE as exc:
            log.warning("could not tell the flow gate of %s how a send went (%s)", self._gate.title, exc)

    def told(self) -> None:
        self._done = True

    def give_back(self) -> None:
        if not self._done and self.ticket:
            self._done = True
            try:
                self._gate.report(ticket=self.ticket, sent=False)
            except _STORE_UNREACHABLE:
                pass  # the ticket lapses by itself


def _found_settled(relay: Relay, delivery: Delivery, state: str) -> bool:
    """The delivery is settled (nothing more to do); a dead one gets its letter if it lacks one."""
    if state not in SETTLED:
        return False
    if state == "dead":
        ensure_dead_letter(relay, delivery)
    return True


def _batched(relay: Relay, operation: str, message: Any, destination: str, row) -> str:
    """Record a count for a bulk destination (and fan it out) without claiming it: it joins its batch."""
    admission = admit(relay, operation, message, destination=destination)
    if admission.event is None:
        return admission.state
    delivery = Delivery(row, admission.event)
    if _found_settled(relay, delivery, admission.state):
        return admission.state
    if destination == WMS_DESTINATION.name:
        fan_out(relay, delivery.event)
    if admission.state == "sending":
        return "sending"  # claimed by a batch already: its lease decides
    return add_to_batch(relay, delivery, admission.accepted)


def _deliver_taken(relay: Relay, delivery: Delivery, taken, *, owner: str, run: _Run,
                   passage: _Passage) -> str:
    """Go on from the take step: a conflict, a settled delivery, another's live lease, a delivery the gate
    held back, one waiting for its dispatch or its catalog row — or the send."""
    accepted = taken.accepted
    if accepted.conflict:
        return _conflict(relay, delivery, accepted).state
    if _found_settled(relay, delivery, accepted.state):
        return accepted.state
    if delivery.destination == WMS_DESTINATION.name:
        fan_out(relay, delivery.event)
    if taken.verdict is None:
        return taken.claim.state  # nothing to send: another worker's lease is live
    if not taken.verdict.sends:
        if accepted.state == "sending":
            return "sending"  # claimed by a worker already: its lease decides
        return hold_back(relay, delivery, taken.verdict)
    turned = taken.turn  # the SKU's answer to an absolute count (its turn is taken before its claim)
    if turned is not None and turned.verdict == "busy":
        return stock_turn.wait(relay, delivery)  # another count of its SKU is on the wire: not claimed

    # What the sender is handed: the dispatch_id, the catalog row, or the final dispatch.
    resolved, claim = None, taken.claim
    if dispatch_wait.waits(delivery.row):
        resolved = dispatch_wait.dispatch_id_of(relay, delivery)
        if resolved is None:
            return dispatch_wait.wait_for_create(relay, delivery)
    elif catalog_wait.looks_up(delivery.row):
        resolved = catalog_wait.row_of(relay, delivery)
        if resolved is None:
            return catalog_wait.wait_for_row(relay, delivery)
        catalog_wait.found_row(relay, delivery, accepted.state)
    elif sales_orders.makes(delivery.row):
        resolved = sales_orders.prepare(relay, delivery)
        if isinstance(resolved, str):
            return resolved  # it waits
    if claim is None:  # one that may wait (dispatch, catalog row, lines) is claimed once it need not
        claim, turned = _claim_later(relay, delivery, accepted.fingerprint, owner)
        if claim is None:
            return stock_turn.wait(relay, delivery)  # its turn was busy: not claimed
    if claim.status != "claimed":
        return claim.state
    holds_turn = turned is not None and turned.verdict == "acquired"
    turn = stock_turn.turn_of(delivery) if holds_turn else None
    title = DESTINATIONS[delivery.destination].title
    # Our own claim again (the store went away after taking it, before anything was sent): not interrupted.
    interrupted = claim.interrupted and claim.previous_owner != owner
    if interrupted and not delivery.row.safe_to_resend(delivery.event):
        # A worker died mid-send (its lease ran out): the destination may have applied it.  Resending is
        # safe only where it deduplicates or the value is absolute; otherwise a person decides.
        if holds_turn:
            stock_turn.let_go(relay, delivery, owner)
        reason = (f"a worker stopped while sending it; {title} may have applied it — not resent "
                  "automatically")
        if relay.ledger_of(delivery.destination).transition(delivery.operation, delivery.key, "uncertain",
                                                            owner=owner, reason=reason):
            relay.observer.parked(delivery, "uncertain", reason)
        return "uncertain"
    if sales_orders.makes(delivery.row):
        resolved, settled = sales_orders.after_claim(relay, delivery, resolved, claim, owner)
        if settled is not None:
            return settled

    if turned is not None:
        ended = stock_turn.after_turn(relay, delivery, owner, turned)
        if ended is not None:
            return ended
    try:
        return _send(relay, delivery, claim, resolved, owner, run, passage, turn)
    finally:
        if holds_turn and run.finish is None and not run.turn_given_back:
            stock_turn.let_go(relay, delivery, owner)


def _claim_later(relay: Relay, delivery: Delivery, fingerprint: str, owner: str) -> tuple[Any, Any]:
    """The claim of a delivery taken unclaimed, and the SKU's answer: an absolute count's in its turn, one
    store call (worker.flow.send_steps: no claim while the turn is busy — waiting is no attempt)."""
    turn = stock_turn.turn_of(delivery)
    if turn is not None:
        return relay.send_steps_of(delivery.destination).claim(delivery.operation, delivery.key, fingerprint,
                                                               owner, turn)
    return relay.ledger_of(delivery.destination).claim(delivery.operation, delivery.key, fingerprint,
                                                       owner), None


def _call(relay: Relay, row: Operation, fields: dict, resolved: Any) -> Any:
    try:
        client = relay.client_of(row.destination)
    except LookupError as exc:
        # This process has no client for it (its base URL unset here, set where the event was fanned
        # out: a rollout in progress): retried later, visible in `wms-relay retries`.
        raise TransientError(str(exc), destination=row.destination, operation=row.name) from None
    return row.send(client, fields, resolved)


def _send(relay: Relay, delivery: Delivery, claim: Any, resolved: Any, owner: str, run: _Run,
          passage: _Passage, turn: Any) -> str:
    """Send once and move the delivery on.  The attempt's outcome is written by the same ledger call as
    the transition it leads to; a delivery's with the circuit's "it answered" and the SKU ``turn`` given
    back too (worker.flow.send_steps).  That recording is ``run.finish``, run again after a store outage
    with the same request ids (see :func:`deliver`).  ``resolved``: the dispatch_id or the catalog row the
    sender is handed."""
    attempt = claim.attempt
    run.sent = True
    dispatch_id = resolved if delivery.row.needs_dispatch_id else None
    catalog_row = resolved if catalog_wait.looks_up(delivery.row) else None
    try:
        reply = _call(relay, delivery.row, delivery.fields, resolved)
    except DestinationError as exc:
        passage.report(exc)
        latency = getattr(exc, "latency_seconds", None)
        outcome = classification_of(exc).value
        relay.observer.attempt(delivery, attempt, outcome, status=exc.status,
                               error_code=exc.error_code, latency=latency)
        tried = AttemptEntry(attempt, outcome, exc.status, exc.error_code,
                             tuple(exc.error_messages or []) or (str(exc),), latency=latency,
                             at=relay.clock())
        failure = exc  # ``exc`` is unbound when the except block ends

        def record() -> str:
            return after_failure(relay, delivery, attempt, claim.round_attempt, failure, owner, tried,
                                 dispatch_id)
    else:
        outcome = "duplicate" if reply.duplicate else "delivered"
        relay.observer.attempt(delivery, attempt, outcome, status=reply.status, error_code=reply.error_code,
                               latency=reply.latency_seconds)
        tried = AttemptEntry(attempt, outcome, reply.status, reply.error_code,
                             latency=reply.latency_seconds, at=relay.clock())

        def record() -> str:
            return _record_delivery(relay, delivery, reply, tried, owner, passage, run, turn, catalog_row)
    return _keep_until_recorded(relay, delivery, owner, attempt, record, run)


def _keep_until_recorded(relay: Relay, delivery: Delivery, owner: str, attempt: int,
                         record: Callable[[], str], run: _Run) -> str:
    """Record a send's outcome; if the store is gone meanwhile, ``run.finish`` keeps it (in this worker)
    for :func:`deliver` to record once the store is back, in ``delivery.destination``'s ledger, each store
    call replaying its first reply."""
    def recorded() -> str:
        with replayable(f"{run.nonce}:{attempt}"):
            return record()

    def recorded_later() -> str:  # after an outage: the stock turn is let go here, not by _deliver
        state = recorded()
        if stock_turn.takes_turn(delivery) and not run.turn_given_back:
            stock_turn.let_go(relay, delivery, owner)
        return state

    run.finish = recorded_later
    state = recorded()
    run.finish = None  # recorded at once: _deliver lets go of the stock turn as usual
    return state


def _record_delivery(relay: Relay, delivery: Delivery, reply: Any, tried: AttemptEntry, owner: str,
                     passage: _Passage, run: _Run, turn: Any, catalog_row: Any = None) -> str:
    """The delivered step (worker.flow.send_steps): the record (with the catalog row it was sent with), the
    circuit's "it answered", the SKU's turn and the shipment's waiters in one store call."""
    title = DESTINATIONS[delivery.destination].title
    result = catalog_wait.result_with(reply.ledger_result(), catalog_row)
    reason = f"{title} already had it (duplicate)" if reply.duplicate else "delivered"
    id_unknown = unknown_dispatch_ids.lacks_dispatch_id(delivery, result)
    if id_unknown:
        reason = unknown_dispatch_ids.delivered_reason(delivery, reply.duplicate)
    # Waiters are taken with the recording, unless the create has no dispatch id: then the shipment is
    # listed first and they go on to wait for a person (worker.delivery.dispatch_wait).
    waiters = dispatch_wait.waiters_key(relay, delivery) if not id_unknown else None
    done = relay.send_steps_of(delivery.destination).delivered(
        delivery.operation, delivery.key, owner=owner, result=result, log=tried, reason=reason,
        ticket=passage.ticket, turn=turn, waiters_key=waiters)
    passage.told()
    run.turn_given_back = turn is not None
    if not done.moved:
        keep_attempt(relay, delivery, tried)
        log.warning("delivered %s but the claim had passed to another worker", delivery.ref)
    if done.waiters:
        relay.schedule.run_now(done.waiters)
    if id_unknown:
        dispatch_wait.wake_waiters(relay, delivery, id_unknown=True)
    return "delivered"
