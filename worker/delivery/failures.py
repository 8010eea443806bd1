"""Where an event goes when a send did not deliver it: later (the retry schedule), a read-back of a
refused one-way change (worker.destinations.trademax.read_back), ``uncertain`` (a person checks Trademax)
or a dead letter.

Every ledger write here carries the attempt's log entry (``tried``) with the transition it leads to; an
attempt whose transition is refused (the claim passed to another worker) is still logged
(:func:`keep_attempt`), so an event's story keeps every send.
"""
from __future__ import annotations

from typing import Any

from worker.encoding import event_ref
from tasks.events import DeliveryEvent, OPERATIONS
from worker.destinations.trademax import clock_skew
from worker.errors import ClockSkewError, OutcomeUnknownError, PermanentError, TrademaxError, TransientError
from worker.store.records import AttemptEntry
from worker.destinations.trademax.read_back import (
    LANDED, UNREADABLE, earlier_attempt_may_have_landed, has_read_back, read_back,
)
from worker.delivery.relay import Relay


def keep_attempt(relay: Relay, event: DeliveryEvent, tried: AttemptEntry) -> None:
    """Log an attempt whose transition was refused (the claim had passed on): the story keeps every send."""
    relay.ledger.record_attempt(event.operation, event.key, attempt=tried.attempt, outcome=tried.outcome,
                                status=tried.status, error_code=tried.error_code, messages=tried.messages,
                                latency=tried.latency)


def after_failure(relay: Relay, event: DeliveryEvent, attempt: int, round_attempt: int, exc: TrademaxError,
                  owner: str, tried: AttemptEntry, dispatch_id: Any = None) -> str:
    """``attempt`` counts every try of the event; ``round_attempt`` only those since it was accepted or a
    person last retried it, which is what the retry policy's limit applies to.  ``tried`` is the attempt's
    log entry, written with the transition."""
    if isinstance(exc, OutcomeUnknownError) and not OPERATIONS[event.operation].safe_to_resend(event):
        moved = relay.ledger.transition(
            event.operation, event.key, "uncertain", owner=owner, log=tried,
            reason=f"no answer after sending ({exc}); not safe to resend — a person must check Trademax")
        if moved:
            relay.observer.parked(event, "uncertain", str(exc))
        else:
            keep_attempt(relay, event, tried)
        return "uncertain"
    if isinstance(exc, ClockSkewError):  # our configuration, not the event: wait, alert, never give up
        clock_skew.alert(exc.skew_seconds)
        return retry_later(relay, event, owner, exc.retry_after or 60.0, reason=f"attempt {attempt}: {exc}",
                           tried=tried)
    if isinstance(exc, (TransientError, OutcomeUnknownError)):
        if relay.policy.exhausted(round_attempt):
            return dead(relay, event, owner, reason="exhausted",
                        detail=f"gave up after {attempt} attempts; last error: {exc}", exc=exc, tried=tried)
        delay = relay.policy.delay(round_attempt, relay.rng, retry_after=getattr(exc, "retry_after", None))
        return retry_later(relay, event, owner, delay, reason=f"attempt {attempt} failed: {exc}",
                           tried=tried)
    assert isinstance(exc, PermanentError)
    detail = f"Trademax refused it: {exc}"
    if attempt > 1 and has_read_back(event.operation):
        state, found = read_back_refusal(relay, event, round_attempt, exc, owner, tried, dispatch_id)
        if state is not None:
            return state
        detail += f"; {found}" if found else ""
    return dead(relay, event, owner, reason="permanent", detail=detail, exc=exc, tried=tried)


def read_back_refusal(relay: Relay, event: DeliveryEvent, round_attempt: int, exc: TrademaxError,
                      owner: str, tried: AttemptEntry, dispatch_id: Any) -> tuple[str | None, str]:
    """A one-way dispatch change (publish, delete) refused on a resend: if an earlier attempt went
    unanswered, it may be what made Trademax refuse this one — read the dispatch back
    (worker.destinations.trademax.read_back).
    Returns the state the event moved to, or None and what the read found (the refusal then stands)."""
    record = relay.ledger.get(event.operation, event.key)
    if record is None or not earlier_attempt_may_have_landed(record.history, record.attempts_log):
        return None, ""
    reading = read_back(relay.client, event.operation, dispatch_id)
    if reading.verdict == LANDED:
        why = (f"an earlier attempt landed though its answer was lost: {reading.detail} "
               f"(the resend was refused: {exc})")
        moved = relay.ledger.transition(event.operation, event.key, "delivered", owner=owner, log=tried,
                                        result=dict(reading.result or {}), reason=why)
        if not moved:
            keep_attempt(relay, event, tried)
        return "delivered", reading.detail
    if reading.verdict == UNREADABLE and not relay.policy.exhausted(round_attempt):
        delay = relay.policy.delay(round_attempt, relay.rng)
        why = f"attempt {tried.attempt} was refused ({exc}) and {reading.detail}"
        return retry_later(relay, event, owner, delay, tried=tried, reason=why), reading.detail
    return None, reading.detail


def retry_later(relay: Relay, event: DeliveryEvent, owner: str, delay: float, *, reason: str,
                tried: AttemptEntry | None = None) -> str:
    due = relay.clock() + delay
    moved = relay.ledger.transition(event.operation, event.key, "retrying", owner=owner, log=tried,
                                    reason=f"{reason}; next try in {delay:.1f} s")
    if tried is not None and not moved:
        keep_attempt(relay, event, tried)
    relay.schedule.schedule(event_ref(event.operation, event.key), event.task_message(), due)
    return "retrying"


def ensure_dead_letter(relay: Relay, event: DeliveryEvent) -> None:
    """A ``dead`` event met again (its message redelivered, or its run repeated after a store outage):
    if :func:`dead` moved it but never wrote its letter — the worker or the store went away between the
    two — write it now from the ledger, so no dead event is without a letter a person can act on."""
    letter = relay.dead_letters.latest_for(event.operation, event.key)
    if letter is not None and letter.status == "open":
        return
    record = relay.ledger.get(event.operation, event.key)
    if record is None or record.state != "dead":
        return
    why = next((step.get("reason") for step in reversed(record.history) if step.get("to") == "dead"), "")
    reason, _, detail = (why or "dead: reason not recorded").partition(": ")
    letter_id = relay.dead_letters.add(event.operation, event.key, event.to_message(), reason,
                                       messages=[detail or reason], attempts_log=record.attempts_log,
                                       detail=detail or reason)
    relay.observer.parked(event, "dead", why, letter_id=letter_id)


def dead(relay: Relay, event: DeliveryEvent, owner: str | None, *, reason: str, detail: str,
         exc: TrademaxError | None, tried: AttemptEntry | None = None) -> str:
    moved = relay.ledger.transition(
        event.operation, event.key, "dead", owner=owner, reason=f"{reason}: {detail}", log=tried,
        expected_states=None if owner else ("accepted", "retrying", "waiting"))
    if not moved:
        if tried is not None:
            keep_attempt(relay, event, tried)
        return relay.ledger.get(event.operation, event.key).state
    record = relay.ledger.get(event.operation, event.key)
    letter_id = relay.dead_letters.add(
        event.operation, event.key, event.to_message(), reason,
        messages=list(exc.error_messages or []) if exc is not None else [detail],
        attempts_log=record.attempts_log if record else [], detail=detail)
    relay.observer.parked(event, "dead", f"{reason}: {detail}", letter_id=letter_id)
    return "dead"
