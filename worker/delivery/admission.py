"""The door every WMS event comes in by: validate, record in the ledger and queue — in one store call per
event, the events of a request in a few round trips.

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

"Admitted" means in the ledger *and* on the queue, and both happen in one Lua script
(``Ledger.admit_all``: the record, and the task message pushed onto the queue's list in the layout a WMS
pushes by hand — ``tasks.raw_messages.task_envelope``), so an event is fully admitted or not at all.  The
events of a request go in chunks of :data:`CHUNK`, each chunk's scripts in one pipeline: a 1,000-event
request costs a few round trips, not thousands (``benchmarks/ingest.py`` measures it).

"Not admitted" is kept true through a stalled store too.  A store frozen (SIGSTOP, a long fsync) holds the
scripts it was sent and runs them when it wakes — after the door has answered 503.  So each script carries
a "not after" on the store's own clock: the store time read just before the chunk plus
:data:`ADMISSION_BUDGET_SECONDS`, less than the time the door waits for an answer
(``worker.store.connection.STORE_SOCKET_TIMEOUT_SECONDS``).  A script the store runs later does nothing
(``LateAdmission``), and a resend of one that ran in time replays its reply (request ids: the store-call
rule).  The corner that remains: the store runs a script in time and then loses the connection for good
before the answer arrives (a crash right after, a network cut) — the door answers 503 and the record
stays: the stranded sweep queues it, and the event sent again is recognised by its key.

An invalid event's dead letter is written on its own (``worker.delivery.rejections``), without a "not
after": one written by a store that woke after the door answered 503 stays (it is never sent).

The input formats (one JSON object, an array, JSON lines) are read by :func:`read_events`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import redis
from kombu.exceptions import OperationalError

from tasks.events import Delivery, InvalidEvent, validate_event
from tasks.raw_messages import strict_json, task_envelope
from worker.delivery.rejections import best_key, reject_conflict, reject_invalid
from worker.delivery.relay import Relay
from worker.destinations.table import ROWS, WMS_DESTINATION, queue_for
from worker.encoding import utf8_safe
from worker.store.connection import STORE_SOCKET_TIMEOUT_SECONDS
from worker.store.requests import request_id

# The store (ledger, dead letters) or the broker (the same Redis) did not answer.  BusyLoadingError
# (a restarting server loading its AOF) is a ConnectionError.
STORE_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, OperationalError)

ADMITTED = ("queued", "queued_again", "settled")
# Events admitted per pipeline (one round trip): a chunk's scripts all run within the budget below.
CHUNK = 200
# A script run later than this after the store time read before its chunk does nothing: less than the
# socket timeout, after which the door stops waiting for the answer (and answers 503).
ADMISSION_BUDGET_SECONDS = STORE_SOCKET_TIMEOUT_SECONDS - 1.0
_NOT_TRIED = "not tried: the store failed while the request was taken in; send it again"

# Nesting json.loads cannot take (it stops near 1,000 levels with a RecursionError: once a 500 "send
# again"): the body cannot be read.  An event nests 5 levels (a dispatch create: event → packages →
# package → products → product); a deeper one that parses is judged by its schema like any other invalid
# event — the fuzz test sends such events through the whole pipeline.
_TOO_DEEP = "nested more deeply than the JSON parser reads (about 1,000 levels; an event nests 5)"


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

    Raises ValueError naming the first line that is not JSON, a key given twice in one object (JSON
    parsers disagree on which one wins, so the event is ambiguous), and nesting past the parser's own limit
    (a RecursionError inside ``json.loads``, which would otherwise be an unexpected error)."""
    stripped = text.strip()
    if not stripped:
        return []
    try:
        value = _parsed(stripped)
    except json.JSONDecodeError:
        events = []
        for number, line in enumerate(stripped.splitlines(), 1):
            if line.strip():
                try:
                    events.append(_parsed(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"line {number} is not JSON: {exc.msg}") from None
                except ValueError as exc:
                    raise ValueError(f"line {number}: {exc}") from None
        return events
    return value if isinstance(value, list) else [value]


def _parsed(text: str) -> Any:
    """:func:`strict_json`, a RecursionError (nesting past the parser's limit) turned into a ValueError."""
    try:
        return strict_json(text)
    except RecursionError:
        raise ValueError(_TOO_DEEP) from None


def take_in(relay: Relay, operation: str, message: Any) -> Intake:
    """:func:`take_in_all` of one event."""
    return take_in_all(relay, operation, [message])[0]


def take_in_all(relay: Relay, operation: str, messages: Iterable[Any], *, door: str = "enqueue",
                abandon: Callable[[list], None] | None = None) -> list[Intake]:
    """Validate, record and queue each event, in order (see the module docstring).  Never raises for an
    event's content; a store failure comes back as ``store_down`` for the events it cut off and
    ``not_tried`` for the rest (each would wait for the store in turn) — none of them admitted.  What the
    events parked (invalid, conflicts) is one Sentry report for the call, whatever their number (``door``
    names the request in it: ``ingest POST``, ``enqueue``).

    ``abandon``: called with the admissions answered ``store_down`` that the store may have run all the
    same (``worker.delivery.withdrawals.Withdrawals.add`` takes them back once it answers)."""
    messages = list(messages)
    intakes: list[Intake | None] = [None] * len(messages)
    abandoned: list = []
    with relay.observer.one_report(f"{door} {operation}"):
        for start in range(0, len(messages), CHUNK):
            indexes = range(start, min(start + CHUNK, len(messages)))
            if not _take_in_chunk(relay, operation, messages, indexes, intakes, abandoned):
                break
    if abandoned and abandon is not None:
        abandon(abandoned)
    return [intake or Intake(operation, best_key(message), "not_tried", None, _NOT_TRIED)
            for intake, message in zip(intakes, messages)]


def _take_in_chunk(relay: Relay, operation: str, messages: list, indexes: range, intakes: list,
                   abandoned: list) -> bool:
    """Take in ``messages[indexes]``, writing each one's Intake into ``intakes`` (and into ``abandoned``
    the admissions the store may have run though it did not answer); False once the store failed (the
    chunk's undecided events are left None: not tried)."""
    valid = []
    for index in indexes:
        try:
            valid.append((index, validate_event(operation, messages[index])))
        except InvalidEvent as exc:
            try:
                reject_invalid(relay, operation, messages[index], exc, destination=WMS_DESTINATION.name)
            except STORE_UNREACHABLE as failure:
                intakes[index] = _store_down(operation, best_key(messages[index]), failure)
                return False
            intakes[index] = Intake(operation, best_key(messages[index]), "invalid", "dead",
                                    f"invalid: {exc}", utf8_safe(exc.messages))
    if not valid:
        return True
    ledger = relay.ledger_of(WMS_DESTINATION.name)
    admissions = []
    for _, event in valid:
        task = event.task_message()["task"]
        queue = queue_for(task)
        admissions.append((event, queue, task_envelope(task, event.to_message(), queue), request_id()))
    try:
        not_after = ledger.server_time() + ADMISSION_BUDGET_SECONDS
    except STORE_UNREACHABLE as failure:  # nothing sent yet
        for index, event in valid:
            intakes[index] = _store_down(operation, event.key, failure)
        return False
    try:
        answers = ledger.admit_all(admissions, not_after=not_after)
    except STORE_UNREACHABLE as failure:  # sent; the store may have run some before it stopped answering
        abandoned += admissions
        for index, event in valid:
            intakes[index] = _store_down(operation, event.key, failure)
        return False
    failed = False
    for (index, event), answer in zip(valid, answers):
        if isinstance(answer, Exception) and not _store_could_not(answer):
            raise answer  # a fault in the relay (a key of the wrong type...): the door's 500, "send it again"
        if isinstance(answer, Exception):  # the store answered that it did nothing: LateAdmission, OOM...
            failed, intakes[index] = True, _store_down(operation, event.key, answer)
        else:
            intakes[index] = _verdict(relay, operation, event, *answer)
            failed = failed or intakes[index].verdict == "store_down"
    return not failed


def _verdict(relay: Relay, operation: str, event, accepted, queued: bool) -> Intake:
    if accepted.conflict:
        try:
            reject_conflict(relay, Delivery(ROWS[WMS_DESTINATION.name, operation], event), accepted)
        except STORE_UNREACHABLE as failure:
            return _store_down(operation, event.key, failure)
        return Intake(operation, event.key, "conflict", "dead",
                      "conflict: same key, different payload; not sent")
    if not queued:
        return Intake(operation, event.key, "settled", accepted.state,
                      f"already {accepted.state}; not sent again")
    if accepted.status == "accepted":
        return Intake(operation, event.key, "queued", "accepted", "queued")
    return Intake(operation, event.key, "queued_again", accepted.state,
                  f"already {accepted.state}; queued again (it is sent once)")


def one_by_one(operation: str, messages: Iterable[Any], take: Callable[[Any], Intake]) -> list[Intake]:
    """``take`` for each event in order, until one comes back ``store_down``: the rest are ``not_tried``."""
    intakes: list[Intake] = []
    failed = False
    for message in messages:
        if failed:
            intakes.append(Intake(operation, best_key(message), "not_tried", None, _NOT_TRIED))
            continue
        intake = take(message)
        failed = intake.verdict == "store_down"
        intakes.append(intake)
    return intakes


# The store's own "not now" answers (an error reply's first word): full, busy with a script, loading its
# data, a replica, a primary gone.  Any other error reply is a fault of ours, not the store's.
_NOT_NOW = ("OOM", "BUSY", "LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS")


def _store_could_not(error: Exception) -> bool:
    """Whether an admission's error reply means the store could not run it now (503, send it again) rather
    than a fault in the relay (500)."""
    if isinstance(error, STORE_UNREACHABLE):  # LateAdmission included
        return True
    return str(error).split(" ", 1)[0] in _NOT_NOW


def _store_down(operation: str, key: str, exc: BaseException) -> Intake:
    return Intake(operation, key, "store_down", None,
                  f"not admitted: the store did not answer ({type(exc).__name__}); send it again")
