"""Where a delivery goes when a send did not deliver it: later (the retry schedule), a read-back of a
refused one-way change (Trademax's dispatches: worker.destinations.trademax.read_back), ``uncertain`` (a
person checks the destination) or a dead letter.  Each destination's delivery moves in its own ledger.

Every ledger write here carries the attempt's log entry (``tried``) with the transition it leads to; an
attempt whose transition is refused (the claim passed to another worker) is still logged
(:func:`keep_attempt`), so an event's story keeps every send.
"""
from __future__ import annotations

from typing import Any

from tasks.events import Delivery
from worker.delivery.lost_answers import earlier_attempt_may_have_landed
from worker.delivery.relay import Relay
from worker.destinations.table import DESTINATIONS
from worker.destinations.trademax import read_back as trademax_read_back
from worker.destinations.trademax.read_back import LANDED, UNREADABLE
from worker.destinations.trademax import clock_skew
from worker.errors import (
    ClockSkewError, DestinationError, OutcomeUnknownError, PermanentError, TransientError, UnconfirmedError,
)
from worker.store.records import AttemptEntry


def keep_attempt(relay: Relay, delivery: Delivery, tried: AttemptEntry) -> None:
    """Log an attempt whose transition was refused (the claim had passed on): the story keeps every send."""
    relay.ledger_of(delivery.destination).record_attempt(
        delivery.operation, delivery.key, attempt=tried.attempt, outcome=tried.outcome, status=tried.status,
        error_code=tried.error_code, messages=tried.messages, latency=tried.latency)


def _has_read_back(delivery: Delivery) -> bool:
    return delivery.destination == trademax_read_back.DESTINATION and \
        trademax_read_back.has_read_back(delivery.operation, delivery.fields)


def after_failure(relay: Relay, delivery: Delivery, attempt: int, round_attempt: int, exc: DestinationError,
                  owner: str, tried: AttemptEntry, dispatch_id: Any = None) -> str:
    """``attempt`` counts every try of the delivery; ``round_attempt`` only those since it was accepted or
    a person last retried it, which is what the retry policy's limit applies to.  ``tried`` is the
    attempt's log entry, written with the transition."""
    title = DESTINATIONS[delivery.destination].title
    unconfirmed = isinstance(exc, UnconfirmedError)
    lost = isinstance(exc, OutcomeUnknownError) and not delivery.row.safe_to_resend(delivery.event)
    if unconfirmed or lost:
        reason = (f"{title} answered without confirming it ({exc}); not resent — a person must check {title}"
                  if unconfirmed else
                  f"no answer after sending ({exc}); not safe to resend — a person must check {title}")
        moved = relay.ledger_of(delivery.destination).transition(
            delivery.operation, delivery.key, "uncertain", owner=owner, log=tried, reason=reason)
        if moved:
            relay.observer.parked(delivery, "uncertain", str(exc))
        else:
            keep_attempt(relay, delivery, tried)
        return "uncertain"
    if isinstance(exc, ClockSkewError):  # our configuration, not the event: wait, alert, never give up
        clock_skew.alert(exc.skew_seconds)
        return park_for_fault(relay, delivery, owner, reason=f"attempt {attempt}: {exc}", tried=tried)
    if isinstance(exc, (TransientError, OutcomeUnknownError)):
        if relay.policy.exhausted(round_attempt):
            return dead(relay, delivery, owner, reason="exhausted",
                        detail=f"gave up after {attempt} attempts; last error: {exc}", exc=exc, tried=tried)
        delay = relay.policy.delay(round_attempt, relay.rng, retry_after=getattr(exc, "retry_after", None))
        return retry_later(relay, delivery, owner, delay, reason=f"attempt {attempt} failed: {exc}",
                           tried=tried)
    assert isinstance(exc, PermanentError)
    detail = f"{title} refused it: {exc}"
    if attempt > 1 and _has_read_back(delivery):
        state, found = read_back_refusal(relay, delivery, round_attempt, exc, owner, tried, dispatch_id)
        if state is not None:
            return state
        detail += f"; {found}" if found else ""
    return dead(relay, delivery, owner, reason="permanent", detail=detail, exc=exc, tried=tried)


def read_back_refusal(relay: Relay, delivery: Delivery, round_attempt: int, exc: DestinationError,
                      owner: str, tried: AttemptEntry, dispatch_id: Any) -> tuple[str | None, str]:
    """A one-way Trademax dispatch change (publish, a publishing update, delete) refused on a resend: if an
    earlier attempt went unanswered, it may be what made Trademax refuse this one — read the dispatch back
    (worker.destinations.trademax.read_back).  Returns the state the delivery moved to, or None and what
    the read found (the refusal then stands)."""
    ledger = relay.ledger_of(delivery.destination)
    record = ledger.get(delivery.operation, delivery.key)
    if record is None or not earlier_attempt_may_have_landed(record.history, record.attempts_log):
        return None, ""
    reading = trademax_read_back.read_back(relay.client_of(delivery.destination), delivery.operation,
                                           dispatch_id, delivery.fields)
    if reading.verdict == LANDED:
        why = (f"an earlier attempt landed though its answer was lost: {reading.detail} "
               f"(the resend was refused: {exc})")
        moved = ledger.transition(delivery.operation, delivery.key, "delivered", owner=owner, log=tried,
                                  result=dict(reading.result or {}), reason=why)
        if not moved:
            keep_attempt(relay, delivery, tried)
        return "delivered", reading.detail
    if reading.verdict == UNREADABLE and not relay.policy.exhausted(round_attempt):
        delay = relay.policy.delay(round_attempt, relay.rng)
        why = f"attempt {tried.attempt} was refused ({exc}) and {reading.detail}"
        return retry_later(relay, delivery, owner, delay, tried=tried, reason=why), reading.detail
    return None, reading.detail


def retry_later(relay: Relay, delivery: Delivery, owner: str, delay: float, *, reason: str,
                tried: AttemptEntry | None = None) -> str:
    due = relay.clock() + delay
    moved = relay.ledger_of(delivery.destination).transition(
        delivery.operation, delivery.key, "retrying", owner=owner, log=tried,
        reason=f"{reason}; next try in {delay:.1f} s")
    if tried is not None and not moved:
        keep_attempt(relay, delivery, tried)
    relay.schedule.schedule(delivery.ref, delivery.task_message(), due)
    return "retrying"


def park_for_fault(relay: Relay, delivery: Delivery, owner: str, *, reason: str, tried: AttemptEntry) -> str:
    """A configuration fault (a clock skew: the gate's report opened the destination's circuit for it): the
    delivery waits parked, as for any open circuit, and is released when a probe is answered — never
    "retried in a minute" by this worker's clock (a clock behind the scheduler's made that due at once, and
    the retry a hot loop)."""
    moved = relay.ledger_of(delivery.destination).transition(
        delivery.operation, delivery.key, "retrying", owner=owner, log=tried,
        reason=f"{reason}; waits until the fault is fixed (a probe once a minute)")
    if not moved:
        keep_attempt(relay, delivery, tried)
    relay.flow.parking(delivery.destination).park(delivery.ref, delivery.task_message())
    return "retrying"


def ensure_dead_letter(relay: Relay, delivery: Delivery) -> None:
    """A ``dead`` delivery met again (its message redelivered, or its run repeated after a store outage):
    if :func:`dead` moved it but never wrote its letter — the worker or the store went away between the
    two — write it now from the ledger, so no dead delivery is without a letter a person can act on."""
    letter = relay.dead_letters.latest_for(delivery.operation, delivery.key, delivery.destination)
    if letter is not None and letter.status == "open":
        return
    record = relay.ledger_of(delivery.destination).get(delivery.operation, delivery.key)
    if record is None or record.state != "dead":
        return
    why = next((step.get("reason") for step in reversed(record.history) if step.get("to") == "dead"), "")
    reason, _, detail = (why or "dead: reason not recorded").partition(": ")
    letter_id = relay.dead_letters.add(delivery.operation, delivery.key, delivery.to_message(), reason,
                                       messages=[detail or reason], attempts_log=record.attempts_log,
                                       detail=detail or reason, destination=delivery.destination)
    relay.observer.parked(delivery, "dead", why, letter_id=letter_id)


def dead(relay: Relay, delivery: Delivery, owner: str | None, *, reason: str, detail: str,
         exc: DestinationError | None, tried: AttemptEntry | None = None) -> str:
    ledger = relay.ledger_of(delivery.destination)
    moved = ledger.transition(
        delivery.operation, delivery.key, "dead", owner=owner, reason=f"{reason}: {detail}", log=tried,
        expected_states=None if owner else ("accepted", "retrying", "waiting"))
    if not moved:
        if tried is not None:
            keep_attempt(relay, delivery, tried)
        return ledger.get(delivery.operation, delivery.key).state
    record = ledger.get(delivery.operation, delivery.key)
    letter_id = relay.dead_letters.add(
        delivery.operation, delivery.key, delivery.to_message(), reason,
        messages=list(exc.error_messages or []) if exc is not None else [detail],
        attempts_log=record.attempts_log if record else [], detail=detail, destination=delivery.destination)
    relay.observer.parked(delivery, "dead", f"{reason}: {detail}", letter_id=letter_id)
    return "dead"
