"""The delivery pipeline of one event to one destination: validate → accept → fan out → resolve
dependencies → claim → send → classify.

docs/architecture.md draws where it sits.  Every path ends in a ledger state a person can see:
delivered, retrying (a durable entry in the retry schedule), waiting, superseded, uncertain or dead (a
dead letter).  The store being unreachable (Redis restarting) does not end a delivery: ``deliver`` waits
for it and runs the event again (see :func:`deliver`).

    deliver(relay, operation, message, owner=..., destination=...) -> the state this run left it in

The WMS publishes to the first destination (``worker.destinations.table.INTAKE``).  Its run *fans out*
before it sends: every other destination that is on and takes the event (``table.routes``) gets the
event accepted in its own ledger and its own task message on its own queue (:func:`fan_out`), so each
destination's delivery is claimed, retried and parked on its own — a destination that is down delays
only its own deliveries (docs/architecture.md, "One event, several destinations").

Where a send does not deliver the event (retry later, read back, dead letter, uncertain):
worker.delivery.failures.  Invalid and conflicting events at the door: worker.delivery.rejections.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import redis

from tasks.events import Delivery, DeliveryEvent, InvalidEvent, validate_event
from worker.delivery.failures import after_failure, dead, ensure_dead_letter, keep_attempt
from worker.delivery.failures import retry_later
from worker.delivery.batch_delivery import add_to_batch
from worker.delivery.held import hold_back
from worker.delivery.rejections import best_key, reject_conflict, reject_invalid
from worker.delivery.relay import Relay
from worker.destinations.contract import Operation, classification_of
from worker.destinations.table import DESTINATIONS, INTAKE, ROWS, routes
from worker.errors import DestinationError, TransientError
from worker.store.records import AttemptEntry

log = logging.getLogger("wms_relay.delivery")

# A second absolute count of one SKU waits this long for the first to finish sending.
STOCK_TURN_RETRY_SECONDS = 1.0
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
    claim: Any = None  # with ``claim_for``: the claim taken in the same step


def admit(relay: Relay, operation: str, message: Any, *, claim_for: str | None = None,
          destination: str = INTAKE.name) -> Admission:
    """Validate and record an event in ``destination``'s ledger (``wms-relay enqueue`` and every task
    start here).

    Invalid → dead letter naming the fields; same key with another payload → conflict dead letter.
    Both are never sent.  Otherwise the event is in the ledger (``accepted``, or the state it already had).
    ``claim_for``: also claim it for that owner, in the same store call (the worker's fast path)."""
    try:
        event = validate_event(operation, message)
    except InvalidEvent as exc:
        reject_invalid(relay, operation, message, exc, destination=destination)
        return Admission(operation, best_key(message), "dead", f"invalid: {exc}")
    ledger = relay.ledger_of(destination)
    if claim_for is None:
        accepted, claim = ledger.accept(event), None
    else:
        accepted, claim = ledger.accept_and_claim(event, claim_for)
    if accepted.conflict:
        reject_conflict(relay, Delivery(ROWS[destination, operation], event), accepted)
        return Admission(operation, event.key, "dead", "conflict: same key, different payload; not sent")
    return Admission(operation, event.key, accepted.state, "", event, accepted, claim)


def fan_out(relay: Relay, event: DeliveryEvent) -> list[str]:
    """Give every other destination that takes ``event`` its own delivery: accepted in its ledger, then
    its task published (or, if the broker refuses, left in the retry schedule, due now).  Idempotent: a
    delivery already known is published again only while it is still ``accepted`` (its first message may
    have been lost with a worker killed in between; a spare copy is harmless — its claim sends it once).
    Returns the destinations whose delivery was queued by this call."""
    queued = []
    for row in routes(event, relay.settings)[1:]:
        delivery = Delivery(row, event)
        accepted = relay.ledger_of(row.destination).accept(event)
        if accepted.conflict:
            reject_conflict(relay, delivery, accepted)
        elif accepted.state == "accepted":
            if relay.flow.batched(row.destination):
                add_to_batch(relay, delivery, accepted)  # a bulk destination's count waits in its batch
            else:
                _queue(relay, delivery)
            queued.append(row.destination)
    return queued


def _queue(relay: Relay, delivery: Delivery) -> None:
    message = delivery.task_message()
    if relay.publish is not None:
        try:
            relay.publish(message)
            return
        except Exception as exc:  # noqa: BLE001 — any broker failure: the durable schedule takes it
            log.warning("could not publish %s (%s: %s); the scheduler will", delivery.ref, type(exc).__name__,
                        exc)
    relay.schedule.schedule(delivery.ref, message, relay.clock())


def deliver(relay: Relay, operation: str, message: Any, *, owner: str, destination: str = INTAKE.name) -> str:
    """Take one event from the queue to a state of ``destination``'s delivery.  Safe to call any number
    of times for one event.

    If the store becomes unreachable midway, the event is run again (same owner, so its own claim is
    taken back — as an interrupted send: resent only where that is safe, else ``uncertain``) once the
    store answers, for up to the visibility timeout.  Letting the error end the task instead loses the
    event: Celery acknowledges a failed task (acks_late acks failures too) as soon as the store is back,
    and the event stays ``sending`` with no message left to finish it — the chaos run's Redis restart
    left 16 of 60 receipts so.  Past the visibility timeout the error propagates (the broker hands the
    message out again by then anyway)."""
    give_up_at = relay.clock() + relay.settings.visibility_timeout_seconds
    while True:
        try:
            return _deliver(relay, operation, message, owner=owner, destination=destination)
        except _STORE_UNREACHABLE as exc:
            if relay.clock() >= give_up_at:
                raise
            log.warning("store unreachable while delivering %s (%s: %s); trying again in %.0f s",
                        operation, type(exc).__name__, exc, STORE_OUTAGE_PAUSE_SECONDS)
            time.sleep(STORE_OUTAGE_PAUSE_SECONDS)


def _deliver(relay: Relay, operation: str, message: Any, *, owner: str, destination: str) -> str:
    row = ROWS.get((destination, operation))
    if row is None and destination != INTAKE.name:
        raise LookupError(f"{destination} takes no {operation!r} (no row in its table)")
    # Flow control (worker.flow) first: a count for a bulk destination joins its batch; any other delivery
    # asks its destination's gate (pause → circuit → rate limit) before it is claimed, so one held back
    # costs no attempt.
    batched = row is not None and relay.flow.batched(destination)
    gate = relay.flow.gate(destination)
    verdict = None if batched else gate.admit()
    if batched or not verdict.sends:
        return _accept_only(relay, operation, message, destination, row, verdict)
    passage = _Passage(gate, verdict.ticket)
    try:
        return _deliver_now(relay, operation, message, owner=owner, destination=destination, row=row,
                            passage=passage)
    finally:
        passage.give_back()


class _Passage:
    """A send the gate let through: its outcome goes back to the gate once (or, if no send happened
    after all, its ticket)."""

    def __init__(self, gate, ticket: str) -> None:
        self._gate, self._ticket, self._done = gate, ticket, False

    def report(self, error: Any) -> None:
        self._done = True
        self._gate.report(error, ticket=self._ticket)

    def give_back(self) -> None:
        if not self._done:
            self._done = True
            self._gate.report(ticket=self._ticket, sent=False)


def _accept_only(relay: Relay, operation: str, message: Any, destination: str, row, verdict) -> str:
    """Record the event (and fan it out) without claiming it: a count joins its destination's batch
    (``verdict`` None), anything else is held back as the gate said (worker.delivery.held)."""
    admission = admit(relay, operation, message, destination=destination)
    if admission.event is None:
        return admission.state
    delivery = Delivery(row, admission.event)
    if admission.state in SETTLED:
        if admission.state == "dead":
            ensure_dead_letter(relay, delivery)
        return admission.state
    if destination == INTAKE.name:
        fan_out(relay, delivery.event)
    if admission.state == "sending":
        return "sending"  # claimed by a worker (or a batch) already: its lease decides
    if verdict is None:
        return add_to_batch(relay, delivery, admission.accepted)
    return hold_back(relay, delivery, verdict)


def _deliver_now(relay: Relay, operation: str, message: Any, *, owner: str, destination: str, row,
                 passage: _Passage) -> str:
    # An event that may have to wait for its dispatch is claimed only once it need not; any other is
    # recorded and claimed in one store call.
    waits = row is not None and row.needs_dispatch_id
    admission = admit(relay, operation, message, claim_for=None if waits else owner, destination=destination)
    if admission.event is None:
        return admission.state
    delivery = Delivery(row, admission.event)
    if admission.state in SETTLED:
        if admission.state == "dead":
            ensure_dead_letter(relay, delivery)
        return admission.state
    if destination == INTAKE.name:
        fan_out(relay, delivery.event)
    ledger, accepted = relay.ledger_of(destination), admission.accepted

    dispatch_id = None
    if waits:
        dispatch_id = relay.dispatch_waiters.dispatch_id_for(delivery.fields["transaction_id"])
        if dispatch_id is None:
            return _wait_for_create(relay, delivery)

    claim = admission.claim
    if waits:
        claim = ledger.claim(delivery.operation, delivery.key, accepted.fingerprint, owner)
    if claim.status != "claimed":
        return claim.state
    title = DESTINATIONS[destination].title
    if claim.interrupted and not row.safe_to_resend(delivery.event):
        # A worker died mid-send (its lease ran out): the destination may have applied it.  Resending is
        # safe only where it deduplicates or the value is absolute; otherwise a person decides.
        reason = (f"a worker stopped while sending it; {title} may have applied it — not resent "
                  "automatically")
        if ledger.transition(delivery.operation, delivery.key, "uncertain", owner=owner, reason=reason):
            relay.observer.parked(delivery, "uncertain", reason)
        return "uncertain"

    counted = _is_absolute_count(delivery.event)
    if counted:
        turn = _stock_turn(relay, delivery, owner)
        if turn.verdict == "superseded":
            ledger.transition(delivery.operation, delivery.key, "superseded", owner=owner,
                              reason=f"a newer absolute value (occurred_at {turn.detail}) was sent")
            return "superseded"
        if turn.verdict == "busy":
            return retry_later(relay, delivery, owner, STOCK_TURN_RETRY_SECONDS,
                               reason="another count of this SKU is being sent")
    try:
        return _send(relay, delivery, claim, dispatch_id, owner, passage)
    finally:
        if counted:
            relay.stock_order_of(destination).release(delivery.fields["warehouse_id"],
                                                      delivery.fields["artno"], owner)


def _is_absolute_count(event: DeliveryEvent) -> bool:
    return event.operation == "stock.adjust" and event.fields.get("type") == "absolute"


def _stock_turn(relay: Relay, delivery: Delivery, owner: str):
    """The turn to send an absolute count: no newer count sent before it, no other count on the wire.

    The count is recorded as the SKU's latest *before* it may go out, then the turn is taken: once sent,
    a count may be applied even if no answer comes back (read timeout) or its worker dies mid-send, and an
    older count arriving after that must be superseded, not applied over it (the chaos run found both).
    If another count holds the turn, this one waits and is sent later (or superseded, if a newer one came
    meanwhile); an older count arriving in between is superseded by it — stale either way.  So nothing is
    left to record once it is delivered: the caller's ``finally`` lets go of the turn."""
    warehouse_id, artno = delivery.fields["warehouse_id"], delivery.fields["artno"]
    order = relay.stock_order_of(delivery.destination)  # each destination applies its counts in order
    # "applied" records it as the latest unless a newer one is; it holds no turn, so it lets go of none.
    order.applied(warehouse_id, artno, delivery.occurred_at, owner)
    return order.acquire(warehouse_id, artno, delivery.occurred_at, owner)


def _call(relay: Relay, row: Operation, fields: dict, dispatch_id: Any) -> Any:
    try:
        client = relay.client_of(row.destination)
    except LookupError as exc:
        # This process has no client for it (its base URL unset here, set where the event was fanned
        # out: a rollout in progress): retried later, visible in `wms-relay retries`.
        raise TransientError(str(exc), destination=row.destination, operation=row.name) from None
    return row.send(client, fields, dispatch_id)


def _send(relay: Relay, delivery: Delivery, claim: Any, dispatch_id: Any, owner: str,
          passage: _Passage) -> str:
    """Send once and move the delivery on.  The attempt's outcome is written by the same ledger call as
    the transition it leads to (one store round trip fewer per event than writing it first)."""
    attempt = claim.attempt
    try:
        reply = _call(relay, delivery.row, delivery.fields, dispatch_id)
    except DestinationError as exc:
        passage.report(exc)
        latency = getattr(exc, "latency_seconds", None)
        outcome = classification_of(exc).value
        relay.observer.attempt(delivery, attempt, outcome, status=exc.status,
                               error_code=exc.error_code, latency=latency)
        tried = AttemptEntry(attempt, outcome, exc.status, exc.error_code,
                             tuple(exc.error_messages or []) or (str(exc),), at=relay.clock())
        return after_failure(relay, delivery, attempt, claim.round_attempt, exc, owner, tried, dispatch_id)

    passage.report(None)
    outcome = "duplicate" if reply.duplicate else "delivered"
    relay.observer.attempt(delivery, attempt, outcome, status=reply.status, error_code=reply.error_code,
                           latency=reply.latency_seconds)
    tried = AttemptEntry(attempt, outcome, reply.status, reply.error_code, at=relay.clock())
    title = DESTINATIONS[delivery.destination].title
    moved = relay.ledger_of(delivery.destination).transition(
        delivery.operation, delivery.key, "delivered", owner=owner, result=reply.ledger_result(), log=tried,
        reason=f"{title} already had it (duplicate)" if reply.duplicate else "delivered")
    if not moved:
        keep_attempt(relay, delivery, tried)
        log.warning("delivered %s but the claim had passed to another worker", delivery.ref)
    if delivery.operation == "dispatch.create":
        waiters = relay.dispatch_waiters.take_waiters(delivery.fields["transaction_id"])
        if waiters:
            relay.schedule.run_now(waiters)
    return "delivered"


def _waits_this_round(history) -> int:
    """Dependency checks since the event was accepted or a person last reopened it (both enter
    ``accepted``): a retried dependency_timeout dead letter gets a full set of checks again."""
    checks = 0
    for entry in history:
        if entry.get("to") == "accepted":
            checks = 0
        elif entry.get("to") == "waiting":
            checks += 1
    return checks


def _wait_for_create(relay: Relay, delivery: Delivery) -> str:
    transaction_id = delivery.fields["transaction_id"]
    ledger = relay.ledger_of(delivery.destination)
    record = ledger.get(delivery.operation, delivery.key)
    checks = _waits_this_round(record.history if record else ())
    if checks >= relay.settings.dependency_wait_max_checks:
        return dead(relay, delivery, None, reason="dependency_timeout",
                    detail=f"dispatch.create for transaction_id {transaction_id} was not delivered "
                           f"after {checks} checks", exc=None)
    ledger.transition(delivery.operation, delivery.key, "waiting",
                      expected_states=("accepted", "retrying", "waiting"),
                      reason=f"waiting for dispatch.create of transaction_id {transaction_id} "
                             f"(check {checks + 1})")
    eid = delivery.ref
    relay.dispatch_waiters.wait_for(transaction_id, eid)
    relay.schedule.schedule(eid, delivery.task_message(),
                            relay.clock() + relay.settings.dependency_wait_seconds)
    # The create may have landed between the check and the registration: look once more.
    if relay.dispatch_waiters.dispatch_id_for(transaction_id) is not None:
        relay.schedule.run_now([eid])
    return "waiting"
