"""A dry run of the door: an event judged as admission would judge it, with nothing written anywhere.

A WMS developer writing a publisher tries events until they pass.  Through the real door each invalid try
is a dead letter in the support queue; here it is only an answer:

    judge(operation, message)           validation only, no store (``wms-relay validate``)
    check_all(relay, operation, events) validation, then the key looked up in the ledger — read only —
                                        so a key already used for another payload shows as the conflict
                                        it would be (``POST /v1/events/OP?dry_run=true``)

Verdicts (``Intake.verdict``) beside the door's own (``worker.delivery.admission``):

    verdict     state        what admission would do                                   HTTP
    valid       None         a new key: record and queue it                            200
    known       its state    the same event is in the ledger: queue it again or not    200
                             (the note says which)
    invalid     None         refuse it: the same note and ``errors`` as the 422        422
    conflict    its state    refuse it: the key belongs to another payload             409
    store_down  None         the ledger did not answer (check_all only): try again     503
    not_tried   None         after a store failure, the rest of the batch              503

No dead letter, no ledger record, no queue message, no Sentry report, no attempt line: nothing but a read.
"""
from __future__ import annotations

from typing import Any, Iterable

from tasks.events import DeliveryEvent, InvalidEvent, validate_event
from worker.delivery.admission import STORE_UNREACHABLE, Intake, one_by_one
from worker.delivery.pipeline import SETTLED
from worker.delivery.rejections import best_key
from worker.delivery.relay import Relay
from worker.encoding import utf8_safe
from worker.store.ledger import fingerprint

VALID_NOTE = "valid: would be admitted (dry run: nothing recorded, nothing queued)"


def _judged(operation: str, message: Any) -> tuple[Intake, DeliveryEvent | None]:
    try:
        event = validate_event(operation, message)
    except InvalidEvent as exc:
        # The words of the door's 422 (worker.delivery.pipeline.admit): one note, the fields' messages.
        return Intake(operation, best_key(message), "invalid", None, f"invalid: {exc}",
                      utf8_safe(exc.messages)), None
    return Intake(operation, event.key, "valid", None, VALID_NOTE), event


def judge(operation: str, message: Any) -> Intake:
    """Valid or invalid, from the operation's schema alone: nothing read, nothing written."""
    return _judged(operation, message)[0]


def check(relay: Relay, operation: str, message: Any) -> Intake:
    """:func:`judge`, then the key in the ledger (a read): new, known with the same payload, or a conflict;
    ``store_down`` when the store does not answer."""
    intake, event = _judged(operation, message)
    if event is None:
        return intake
    try:
        record = relay.ledger.get(operation, event.key)
    except STORE_UNREACHABLE as exc:
        return Intake(operation, event.key, "store_down", None,
                      f"not checked: the store did not answer ({type(exc).__name__}); send it again")
    if record is None:
        return intake
    if record.fingerprint and record.fingerprint != fingerprint(event.fields):
        return Intake(operation, event.key, "conflict", record.state,
                      f"conflict: key {event.key} was already used for a different {operation} event "
                      "(dry run: no dead letter)")
    if record.state in SETTLED:
        note = f"known: already {record.state}; it would not be sent again"
    else:
        note = f"known: already {record.state}; it would be queued again (and sent once)"
    return Intake(operation, event.key, "known", record.state, note)


def check_all(relay: Relay, operation: str, messages: Iterable[Any]) -> list[Intake]:
    """:func:`check` for each event in order; after a store failure the rest are ``not_tried`` (as
    ``admission.take_in_all`` answers)."""
    return one_by_one(operation, messages, lambda message: check(relay, operation, message))
