"""The delivery pipeline of one event: validate → accept → resolve dependencies → claim → send → classify.

docs/architecture.md draws where it sits.  Every path ends in a ledger state a person can see:
delivered, retrying (a durable entry in the retry schedule), waiting, superseded, uncertain or dead (a
dead letter).  The store being unreachable (Redis restarting) does not end a delivery: ``deliver`` waits
for it and runs the event again (see :func:`deliver`).

    deliver(relay, operation, message, owner=...) -> the state this run left the event in

Where a send does not deliver the event (retry later, read back, dead letter, uncertain):
worker.delivery.failures.  Invalid and conflicting events at the door: worker.delivery.rejections.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import redis

from worker.encoding import event_ref, utf8_safe
from tasks.events import OPERATIONS, DeliveryEvent, InvalidEvent, validate_event
from worker.delivery.failures import after_failure, dead, ensure_dead_letter, keep_attempt
from worker.delivery.failures import retry_later
from worker.destinations.trademax.classification import classification_of
from worker.errors import TrademaxError
from worker.store.records import AttemptEntry
from worker.delivery.rejections import best_key, reject_conflict, reject_invalid
from worker.delivery.relay import Relay
from worker.store.requests import replayable

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
    refusal: str = ""  # "invalid" or "conflict" when the event was turned away (a dead letter), else ""
    problems: dict | None = None  # invalid: field path -> messages, as the dead letter keeps them


def admit(relay: Relay, operation: str, message: Any, *, claim_for: str | None = None) -> Admission:
    """Validate and record an event in the ledger (``wms-relay enqueue`` and every task start here).

    Invalid → dead letter naming the fields; same key with another payload → conflict dead letter.
    Both are never sent.  Otherwise the event is in the ledger (``accepted``, or the state it already had).
    ``claim_for``: also claim it for that owner, in the same store call (the worker's fast path)."""
    try:
        event = validate_event(operation, message)
    except InvalidEvent as exc:
        reject_invalid(relay, operation, message, exc)
        return Admission(operation, best_key(message), "dead", f"invalid: {exc}", refusal="invalid",
                         problems=utf8_safe(exc.messages))
    if claim_for is None:
        accepted, claim = relay.ledger.accept(event), None
    else:
        accepted, claim = relay.ledger.accept_and_claim(event, claim_for)
    if accepted.conflict:
        reject_conflict(relay, event, accepted)
        return Admission(operation, event.key, "dead", "conflict: same key, different payload; not sent",
                         refusal="conflict")
    return Admission(operation, event.key, accepted.state, "", event, accepted, claim)


@dataclass
class _Run:
    """What one delivery did that the store may not know yet: ``sent`` once the request left; ``finish``
    then records its outcome (Trademax's answer or error), and is what runs again after a store outage."""

    sent: bool = False
    finish: Callable[[], str] | None = None
    # The request-id base of the recording: unique per delivery (owners are unique per task in a worker,
    # but not in every caller).
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex)


def deliver(relay: Relay, operation: str, message: Any, *, owner: str) -> str:
    """Take one event from the queue to a state.  Safe to call any number of times for one event.

    If the store becomes unreachable midway, the event is run again (same owner) once the store answers,
    for up to the visibility timeout.  Letting the error end the task instead loses the event: Celery
    acknowledges a failed task (acks_late acks failures too) as soon as the store is back, and the event
    stays ``sending`` with no message left to finish it — the chaos run's Redis restart left 16 of 60
    receipts so.  Past the visibility timeout the error propagates (the broker hands the message out again
    by then anyway).

    Before the send, running again takes back this run's own claim — not an interrupted send: nothing
    left.  After the send, the outcome is known and is kept here until the store takes it, however long
    that is: only its recording runs again, each store call replaying its first reply
    (``worker.store.requests``), so a 200 is recorded ``delivered`` with Trademax's answer, never
    ``uncertain``, and no attempt is logged twice."""
    give_up_at = relay.clock() + relay.settings.visibility_timeout_seconds
    run = _Run()
    while True:
        try:
            if run.finish is not None:
                return run.finish()
            return _deliver(relay, operation, message, owner=owner, run=run)
        except _STORE_UNREACHABLE as exc:
            if run.finish is None and relay.clock() >= give_up_at:
                raise
            log.warning("store unreachable while delivering %s (%s: %s)%s; trying again in %.0f s",
                        operation, type(exc).__name__, exc,
                        ": the send's outcome is kept until it is recorded" if run.finish else "",
                        STORE_OUTAGE_PAUSE_SECONDS)
            time.sleep(STORE_OUTAGE_PAUSE_SECONDS)


def _deliver(relay: Relay, operation: str, message: Any, *, owner: str, run: _Run) -> str:
    # An event that may have to wait for its dispatch is claimed only once it need not; any other is
    # recorded and claimed in one store call.
    row = OPERATIONS.get(operation)
    waits = row is not None and row.needs_dispatch_id
    admission = admit(relay, operation, message, claim_for=None if waits else owner)
    if admission.event is None or admission.state in SETTLED:
        if admission.event is not None and admission.state == "dead":
            ensure_dead_letter(relay, admission.event)
        return admission.state
    event, accepted = admission.event, admission.accepted

    dispatch_id = None
    if waits:
        dispatch_id = relay.dispatch_waiters.dispatch_id_for(event.fields["transaction_id"])
        if dispatch_id is None:
            return _wait_for_create(relay, event)

    claim = admission.claim
    if waits:
        claim = relay.ledger.claim(event.operation, event.key, accepted.fingerprint, owner)
    if claim.status != "claimed":
        return claim.state
    # Our own claim again (the store went away after taking it, before anything was sent): not interrupted.
    interrupted = claim.interrupted and claim.previous_owner != owner
    if interrupted and not OPERATIONS[event.operation].safe_to_resend(event):
        # A worker died mid-send (its lease ran out): Trademax may have applied it.  Resending is safe only
        # where Trademax deduplicates or the value is absolute; otherwise a person decides.
        reason = "a worker stopped while sending it; Trademax may have applied it — not resent automatically"
        if relay.ledger.transition(event.operation, event.key, "uncertain", owner=owner, reason=reason):
            relay.observer.parked(event, "uncertain", reason)
        return "uncertain"

    if _is_absolute_count(event):
        turn = _stock_turn(relay, event, owner)
        if turn.verdict == "superseded":
            relay.ledger.transition(event.operation, event.key, "superseded", owner=owner,
                                    reason=f"a newer absolute value (occurred_at {turn.detail}) was sent")
            return "superseded"
        if turn.verdict == "busy":
            return retry_later(relay, event, owner, STOCK_TURN_RETRY_SECONDS,
                               reason="another count of this SKU is being sent")
    try:
        return _send(relay, event, claim, dispatch_id, owner, run)
    finally:
        if _is_absolute_count(event) and run.finish is None:
            relay.stock_order.release(event.fields["warehouse_id"], event.fields["artno"], owner)


def _is_absolute_count(event: DeliveryEvent) -> bool:
    return event.operation == "stock.adjust" and event.fields.get("type") == "absolute"


def _stock_turn(relay: Relay, event: DeliveryEvent, owner: str):
    """The turn to send an absolute count: no newer count sent before it, no other count on the wire.

    The count is recorded as the SKU's latest *before* it may go out, then the turn is taken: once sent,
    a count may be applied even if no answer comes back (read timeout) or its worker dies mid-send, and an
    older count arriving after that must be superseded, not applied over it (the chaos run found both).
    If another count holds the turn, this one waits and is sent later (or superseded, if a newer one came
    meanwhile); an older count arriving in between is superseded by it — stale either way.  So nothing is
    left to record once it is delivered: the caller's ``finally`` lets go of the turn."""
    warehouse_id, artno = event.fields["warehouse_id"], event.fields["artno"]
    # "applied" records it as the latest unless a newer one is; it holds no turn, so it lets go of none.
    relay.stock_order.applied(warehouse_id, artno, event.occurred_at, owner)
    return relay.stock_order.acquire(warehouse_id, artno, event.occurred_at, owner)


def _send(relay: Relay, event: DeliveryEvent, claim: Any, dispatch_id: Any, owner: str, run: _Run) -> str:
    """Send once and move the event on.  The attempt's outcome is written by the same ledger call as the
    transition it leads to (one store round trip fewer per event than writing it first); that recording
    is ``run.finish``, run again after a store outage with the same request ids (see :func:`deliver`)."""
    send = OPERATIONS[event.operation].send
    attempt = claim.attempt
    run.sent = True
    try:
        reply = send(relay.client, event.fields, dispatch_id)
    except TrademaxError as exc:
        latency = getattr(exc, "latency_seconds", None)
        outcome = classification_of(exc).value
        relay.observer.attempt(event, attempt, outcome, status=exc.status,
                               error_code=exc.error_code, latency=latency)
        tried = AttemptEntry(attempt, outcome, exc.status, exc.error_code,
                             tuple(exc.error_messages or []) or (str(exc),), latency=latency,
                             at=relay.clock())
        failure = exc  # ``exc`` is unbound when the except block ends

        def record() -> str:
            return after_failure(relay, event, attempt, claim.round_attempt, failure, owner, tried,
                                 dispatch_id)
    else:
        outcome = "duplicate" if reply.duplicate else "delivered"
        relay.observer.attempt(event, attempt, outcome, status=reply.status, error_code=reply.error_code,
                               latency=reply.latency_seconds)
        tried = AttemptEntry(attempt, outcome, reply.status, reply.error_code,
                             latency=reply.latency_seconds, at=relay.clock())

        def record() -> str:
            return _record_delivery(relay, event, reply, tried, owner)
    return _keep_until_recorded(relay, event, owner, attempt, record, run)


def _keep_until_recorded(relay: Relay, event: DeliveryEvent, owner: str, attempt: int,
                         record: Callable[[], str], run: _Run) -> str:
    def recorded() -> str:
        with replayable(f"{run.nonce}:{attempt}"):
            return record()

    def recorded_later() -> str:  # after an outage: the stock turn is let go here, not by _deliver
        state = recorded()
        if _is_absolute_count(event):
            relay.stock_order.release(event.fields["warehouse_id"], event.fields["artno"], owner)
        return state

    run.finish = recorded_later
    state = recorded()
    run.finish = None  # recorded at once: _deliver lets go of the stock turn as usual
    return state


def _record_delivery(relay: Relay, event: DeliveryEvent, reply: Any, tried: AttemptEntry, owner: str) -> str:
    moved = relay.ledger.transition(
        event.operation, event.key, "delivered", owner=owner, result=reply.ledger_result(), log=tried,
        reason="Trademax already had it (452 duplicate transaction_id)" if reply.duplicate else "delivered")
    if not moved:
        keep_attempt(relay, event, tried)
        log.warning("delivered %s %s but the claim had passed to another worker", event.operation, event.key)
    if event.operation == "dispatch.create":
        waiters = relay.dispatch_waiters.take_waiters(event.fields["transaction_id"])
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


def _wait_for_create(relay: Relay, event: DeliveryEvent) -> str:
    transaction_id = event.fields["transaction_id"]
    record = relay.ledger.get(event.operation, event.key)
    checks = _waits_this_round(record.history if record else ())
    if checks >= relay.settings.dependency_wait_max_checks:
        return dead(relay, event, None, reason="dependency_timeout",
                    detail=f"dispatch.create for transaction_id {transaction_id} was not delivered "
                           f"after {checks} checks", exc=None)
    relay.ledger.transition(event.operation, event.key, "waiting",
                            expected_states=("accepted", "retrying", "waiting"),
                            reason=f"waiting for dispatch.create of transaction_id {transaction_id} "
                                   f"(check {checks + 1})")
    eid = event_ref(event.operation, event.key)
    relay.dispatch_waiters.wait_for(transaction_id, eid)
    relay.schedule.schedule(eid, event.task_message(),
                            relay.clock() + relay.settings.dependency_wait_seconds)
    # The create may have landed between the check and the registration: look once more.
    if relay.dispatch_waiters.dispatch_id_for(transaction_id) is not None:
        relay.schedule.run_now([eid])
    return "waiting"
