"""The door every WMS event comes in by: validate, record in the ledger, queue — one event at a time.

``wms-relay enqueue`` and the HTTP ingest (``worker.web.ingest``, which the demo feeds) call
:func:`take_in_all`, so an event is judged the same way whichever door it used.  Each event ends in
exactly one of:

    verdict         state          what happened                                       HTTP
    queued          accepted       new: in the ledger and on its queue                 202
    queued_again    its state      known, not settled: queued once more (sent once)    202
    settled         its state      known and settled (delivered, dead, ...): not sent  202
    invalid         dead           refused: a dead letter naming each bad field        422
    conflict        dead           its key belongs to another payload: a dead letter   409
    store_down      None           the store did not answer: NOT admitted; send again  503
    not_tried       None           after a store failure, the rest of the batch: send  503

"Admitted" means in the ledger *and* on the queue.  When the ledger took an event but the queue did not,
the record is withdrawn (``Ledger.withdraw``), so the event is either fully admitted or not at all and
sending it again is always right.  One corner remains, and it is safe: if the store fails between the two
and the withdrawal cannot reach it either, the record stays ``accepted`` and the scheduler's stranded
sweep (``worker.scheduling.stranded``) queues it later; the event sent again is then recognised by its key.

The input formats (one JSON object, an array, JSON lines) are read by :func:`read_events`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import redis
from kombu.exceptions import OperationalError

from tasks.raw_messages import strict_json
from worker.delivery.pipeline import SETTLED, admit
from worker.delivery.rejections import best_key
from worker.delivery.relay import Relay

# The store (ledger, dead letters) or the broker (the same Redis) did not answer.  BusyLoadingError
# (a restarting server loading its AOF) is a ConnectionError.
STORE_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, OperationalError)

# What a publisher is: tasks.publishing.celery_publisher(app) in the service, a list's append
# in tests.
Publish = Callable[[dict], None]

ADMITTED = ("queued", "queued_again", "settled")


@dataclass(frozen=True)
class Intake:
    """What became of one event at the door (see the table in the module docstring)."""

    operation: str
    key: str
    verdict: str
    state: str | None
    note: str
    problems: dict | None = None  # invalid: field path -> messages, as the dead letter keeps them

    @property
    def admitted(self) -> bool:
        return self.verdict in ADMITTED


def read_events(text: str) -> list:
    """One JSON value (an object or an array of them) or JSON lines → a list of events.

    Raises ValueError naming the first line that is not JSON, and a key given twice in one object (JSON
    parsers disagree on which one wins, so the event is ambiguous)."""
    stripped = text.strip()
    if not stripped:
        return []
    try:
        value = strict_json(stripped)
    except json.JSONDecodeError:
        events = []
        for number, line in enumerate(stripped.splitlines(), 1):
            if line.strip():
                try:
                    events.append(strict_json(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"line {number} is not JSON: {exc.msg}") from None
                except ValueError as exc:
                    raise ValueError(f"line {number}: {exc}") from None
        return events
    return value if isinstance(value, list) else [value]


def take_in(relay: Relay, publish: Publish, operation: str, message: Any) -> Intake:
    """Validate, record and queue one event.  Never raises for the event's content; a store failure
    comes back as the ``store_down`` verdict (nothing of the event left behind, see the module doc)."""
    try:
        admission = admit(relay, operation, message)
    except STORE_UNREACHABLE as exc:
        return _store_down(operation, best_key(message), exc)
    if admission.refusal:
        return Intake(operation, admission.key, admission.refusal, admission.state, admission.detail,
                      admission.problems)
    state = admission.state
    if state in SETTLED:
        return Intake(operation, admission.key, "settled", state, f"already {state}; not sent again")
    try:
        publish(admission.event.task_message())
    except STORE_UNREACHABLE as exc:
        if admission.accepted.status == "accepted":  # this call created the record: take it back
            try:
                relay.ledger.withdraw(admission.event)
            except STORE_UNREACHABLE:
                pass  # left accepted: the stranded sweep queues it (module docstring)
        return _store_down(operation, admission.key, exc)
    if state == "accepted" and admission.accepted.status == "accepted":
        return Intake(operation, admission.key, "queued", state, "queued")
    return Intake(operation, admission.key, "queued_again", state,
                  f"already {state}; queued again (it is sent once)")


def take_in_all(relay: Relay, publish: Publish, operation: str, messages: Iterable[Any]) -> list[Intake]:
    """:func:`take_in` for each event in order.  After a store failure the rest are not tried (each would
    wait for the store in turn): they come back ``not_tried``, to be sent again with the failed one."""
    return one_by_one(operation, messages, lambda message: take_in(relay, publish, operation, message))


def one_by_one(operation: str, messages: Iterable[Any], take: Callable[[Any], Intake]) -> list[Intake]:
    """``take`` for each event in order, until one comes back ``store_down``: the rest are ``not_tried``."""
    intakes: list[Intake] = []
    failed = False
    for message in messages:
        if failed:
            intakes.append(Intake(operation, best_key(message), "not_tried", None,
                                  "not tried: the store failed on an earlier event; send it again"))
            continue
        intake = take(message)
        failed = intake.verdict == "store_down"
        intakes.append(intake)
    return intakes


def _store_down(operation: str, key: str, exc: BaseException) -> Intake:
    return Intake(operation, key, "store_down", None,
                  f"not admitted: the store did not answer ({type(exc).__name__}); send it again")
