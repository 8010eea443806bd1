"""The ledger: one idempotency record per event, keyed by ``(operation, key)``, in Redis.

It is what makes delivery exactly-once.  ``accept`` records an event (or recognises it, or spots a
different payload under the same key: a conflict); ``claim`` lets one worker at a time send it, under a
lease that a crashed worker's claim loses when it expires; ``transition`` moves it on (compare-and-set,
so a worker whose lease was taken over cannot overwrite the new owner's work); support staff ``reopen``
parked events and ``fill_in_result`` what a destination's answer lacked (a dispatch id); the doors
``admit`` an event — accept it and push its task message onto its queue in the same step, or do nothing
if the store runs it later than the door waits.  Each of these is one Lua script
(``worker.store.ledger_scripts``): atomic on the server, and carrying a request id, so that a call resent
after a timeout replays its first reply instead of running twice (the store-call rule:
``worker.store.requests``).

States: ``accepted`` → ``sending`` → ``delivered`` | ``superseded`` | ``retrying`` | ``waiting`` |
``uncertain`` | ``dead``; ``discarded`` by a person.  Final states (delivered, superseded, discarded) keep
the record for the retention period (default 30 days), so a re-published event is still recognised;
every other state persists until something moves it — a dead, uncertain or waiting event never expires.
A settled record keeps its details (event, attempts, history, answer) for SETTLED_DETAIL_HOURS (24 by
default), then only what recognising it needs (``worker.store.settled_records``: ~200 B, not ~1 KiB).

The record is compact: one hash of five short-named fields, the history and attempts one JSON array.
``MEMORY USAGE`` of a delivered record on valkey 8.1: ~0.8 KiB for a stock adjustment, ~1.3 KiB for a
dispatch create with its package and label URLs (``tests/worker/store/test_ledger.py`` measures both).
The stored event holds only what the WMS sent (never a destination's secret, a signature or a token:
``stored_json`` refuses keys that look like secrets).

One ledger per destination: each destination's deliveries live under its own namespace (``wms`` for the
first destination — the keys as they were before there were others — ``wms:<destination>`` for the
others; :meth:`sibling`), so each keeps its own records, state indexes, totals and per-minute counts.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import redis

from worker.encoding import canonical_json, event_ref, stored_json, text
from worker.store import ledger_scripts
from worker.store.records import AttemptEntry, EventRecord, event_json, parse_record
from worker.store.requests import reply_key, request_id

OPEN_STATES = ledger_scripts.OPEN_STATES
FINAL_STATES = ledger_scripts.FINAL_STATES
STATES = OPEN_STATES + FINAL_STATES
_OPERATION = re.compile(r"^[a-z][a-z0-9_.-]*$")
# How far back the per-minute counts of deliveries and failures reach (the support desk charts them).
PER_MINUTE_WINDOW_SECONDS = 6 * 3600.0


def settled_index_key(namespace: str) -> str:
    """The sorted set that listed a ledger's settled records not compacted yet before they went into
    :func:`settled_queue_key` (issue 21's first index: ~94 B an entry); ``worker.store.settled_records``
    drains it, and its walk of a store older than both indexes fills it."""
    return f"{namespace}:ledger:settled"


def settled_queue_key(namespace: str, operation: str) -> str:
    """The list of one operation's settled records not compacted yet, by key, in the order they settled
    (``ledger_scripts``, KEYS[10]: ~10 B an entry; ``worker.store.settled_records`` compacts them)."""
    return f"{namespace}:ledger:to_compact:{operation}"


def fingerprint(fields: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of an event's validated fields: key order does not matter,
    any changed value does.  Two events under one key with different fingerprints are a conflict."""
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AcceptResult:
    """``status``: ``accepted`` (new record), ``known`` (same event seen before; ``state`` says where it
    is) or ``conflict`` (same key, different fields: ``fingerprint`` vs ``existing_fingerprint``)."""

    status: str
    state: str
    fingerprint: str
    existing_fingerprint: str
    attempts: int = 0

    @property
    def conflict(self) -> bool:
        return self.status == "conflict"


class LateAdmission(redis.TimeoutError):
    """The store ran an admission later than its "not after" and did nothing (:meth:`Ledger.admit_all`): to
    the door, the store did not answer in time — "not admitted, send it again", and true."""


@dataclass(frozen=True)
class Claim:
    """The answer to a claim; see :meth:`Ledger.claim`.  ``attempt`` counts every claim of the event;
    ``round_attempt`` only those since it was accepted or last reopened (what the retry policy counts)."""

    status: str
    state: str | None = None
    previous_state: str | None = None
    attempt: int = 0
    round_attempt: int = 0
    previous_owner: str | None = None
    lease_expires_at: float | None = None
    result: dict | None = None
    existing_fingerprint: str | None = None

    @property
    def claimed(self) -> bool:
        return self.status == "claimed"

    @property
    def interrupted(self) -> bool:
        """The previous attempt died mid-send (its lease expired): the destination may or may not have it."""
        return self.claimed and self.previous_state == "sending"


@dataclass(frozen=True)
class LedgerEvent:
    """What the ledger keeps of an event: the WMS's validated fields and where they came from."""

    operation: str
    key: str
    fields: Mapping[str, Any]
    occurred_at: str | None = None
    event_id: str | None = None

    @classmethod
    def coerce(cls, event: Any) -> "LedgerEvent":
        """From a LedgerEvent, a mapping, or any object with those attributes."""
        if isinstance(event, cls):
            return event
        if type(event) is dict or isinstance(event, Mapping):  # collections.abc: a C check, not typing's
            get = event.get
        else:
            def get(name, default=None):
                return getattr(event, name, default)
        occurred_at = get("occurred_at")
        if occurred_at is not None and hasattr(occurred_at, "isoformat"):
            occurred_at = occurred_at.isoformat()
        event_id = get("event_id")
        return cls(operation=str(get("operation")), key=str(get("key")), fields=dict(get("fields") or {}),
                   occurred_at=occurred_at, event_id=None if event_id is None else str(event_id))

    def to_dict(self) -> dict:
        return {"operation": self.operation, "key": self.key, "fields": dict(self.fields),
                "occurred_at": self.occurred_at, "event_id": self.event_id}


def _accepted(reply: list, fingerprint_: str) -> AcceptResult:
    status, state, stored, attempts = (text(v) for v in reply)
    return AcceptResult(status=status, state=state, fingerprint=fingerprint_, existing_fingerprint=stored,
                        attempts=int(attempts or 0))


def _split_member(member: Any) -> tuple[str, str]:
    """(operation, key) of a state index's member (an :func:`~worker.encoding.event_ref`)."""
    operation, _, key = text(member).partition(":")
    return operation, key


def _stamp(moment: float) -> str:
    """A time as the scripts want it: seconds with milliseconds, a valid JSON number."""
    return f"{moment:.3f}"


class Ledger:
    """The idempotency records of all events in one Redis (any client: bytes or text replies)."""

    def __init__(
        self,
        redis_client,
        *,
        lease_seconds: float,
        delivered_retention_seconds: float,
        clock: Callable[[], float] = time.time,
        delivered_window_seconds: float = 3600.0,
        namespace: str = "wms",
    ) -> None:
        """``delivered_retention_seconds`` <= 0 keeps final records forever (never "expire at once": a
        forgotten delivery would be sent again).  ``delivered_window_seconds``: how far back the
        per-minute counts of deliveries and failures reach (``delivered_since``, ``per_minute``)."""
        self._redis = redis_client
        self._lease = float(lease_seconds)
        self._retention_seconds = float(delivered_retention_seconds)
        retention = float(delivered_retention_seconds)
        self._retention = int(math.ceil(retention)) if retention > 0 else 0
        self._window = float(delivered_window_seconds)
        self._clock = clock
        self._ns = namespace
        self._accept = redis_client.register_script(ledger_scripts.ACCEPT)
        self._claim = redis_client.register_script(ledger_scripts.CLAIM)
        self._accept_and_claim = redis_client.register_script(ledger_scripts.ACCEPT_AND_CLAIM)
        self._transition = redis_client.register_script(ledger_scripts.TRANSITION)
        self._record_attempt = redis_client.register_script(ledger_scripts.RECORD_ATTEMPT)
        self._admit = redis_client.register_script(ledger_scripts.ADMIT)
        self._withdraw_admission = redis_client.register_script(ledger_scripts.WITHDRAW_ADMISSION)
        self._fill_in = redis_client.register_script(ledger_scripts.FILL_IN_RESULT)

    @classmethod
    def from_settings(cls, redis_client, settings, *, clock: Callable[[], float] = time.time) -> "Ledger":
        """A ledger with the lease and retention configured in ``settings``, counting deliveries and
        failures per minute over :data:`PER_MINUTE_WINDOW_SECONDS` (the support desk's chart)."""
        return cls(redis_client, lease_seconds=settings.claim_lease_seconds,
                   delivered_retention_seconds=settings.delivered_retention_days * 86400.0, clock=clock,
                   delivered_window_seconds=PER_MINUTE_WINDOW_SECONDS)

    def sibling(self, namespace: str) -> "Ledger":
        """The same ledger (store, lease, retention, clock) for another destination's deliveries: its keys
        under ``namespace`` (``worker.destinations.contract.Destination.namespace``)."""
        if namespace == self._ns:
            return self
        return Ledger(self._redis, lease_seconds=self._lease,
                      delivered_retention_seconds=self._retention_seconds, clock=self._clock,
                      delivered_window_seconds=self._window, namespace=namespace)

    @property
    def namespace(self) -> str:
        return self._ns

    # -- keys --------------------------------------------------------------------------------------

    def record_key(self, operation: str, key: str) -> str:
        """The Redis key of one event's record (for support staff with redis-cli)."""
        return f"{self._ns}:event:{operation}:{key}"

    def _index_key(self, state: str) -> str:
        return f"{self._ns}:ledger:in:{state}"

    def _keys(self, operation: str, key: str) -> list[str]:
        if not _OPERATION.match(operation or ""):
            raise ValueError(f"operation names are lower-case words with dots, got {operation!r}")
        if not key:
            raise ValueError("an event needs a non-empty key")
        return [self.record_key(operation, key), f"{self._ns}:ledger:totals", self._per_minute_key,
                *(self._index_key(s) for s in OPEN_STATES), settled_queue_key(self._ns, operation)]

    def _request_keys(self, operation: str, key: str) -> list[str]:
        """:meth:`_keys` and, last, the reply key of a new request id: a state-changing script resent
        after a timeout replays its first reply (``worker.store.requests``)."""
        return [*self._keys(operation, key), reply_key(self._ns, request_id())]

    def drop_legacy_keys(self) -> list[str]:
        """Delete keys earlier versions kept and nothing reads any more; return the ones that existed.
        The scheduler calls it at start.  ``ledger:delivered:recent``: the one-hour sorted set (one entry
        per delivery) that the per-minute counts replaced."""
        name = f"{self._ns}:ledger:delivered:recent"
        return [name] if self._redis.delete(name) else []

    def settled_queue_key(self, operation: str) -> str:
        """The list of this ledger's settled ``operation`` records that still keep their details, oldest
        first (``worker.store.settled_records`` compacts them)."""
        return settled_queue_key(self._ns, operation)

    @property
    def _per_minute_key(self) -> str:
        return f"{self._ns}:ledger:delivered:per_minute"

    # -- the delivery pipeline -----------------------------------------------------------------------

    def accept(self, event: Any) -> AcceptResult:
        """Record a new event in ``accepted``; or report it is already known (same fingerprint: its state
        says whether anything is left to do); or a ``conflict`` (same key, different fields), record
        untouched."""
        event = LedgerEvent.coerce(event)
        print_ = fingerprint(event.fields)
        body = event_json(print_, event.key, event.fields, event.occurred_at, event.event_id)
        reply = self._accept(keys=self._request_keys(event.operation, event.key),
                             args=[print_, body, _stamp(self._clock()),
                                   event_ref(event.operation, event.key)])
        return _accepted(reply, print_)

    def accept_and_claim(self, event: Any, owner: str) -> tuple[AcceptResult, Claim | None]:
        """:meth:`accept` and then :meth:`claim` for ``owner``, atomically and in one round trip.  The claim
        is None when the accept found a conflict.  (The worker's own path does this with the flow gate and
        the SKU's turn in one script: worker.flow.send_steps.)"""
        now = self._clock()
        keys, args, print_ = self.take_part(event, owner, now)
        reply = self._accept_and_claim(keys=[*keys, reply_key(self._ns, request_id())], args=args)
        accepted = self.read_accept(reply, print_)
        return accepted, None if accepted.conflict else self.read_claim(reply[4:], now)

    # -- the ledger's part of scripts that do more (worker.flow.send_steps) ------------------------------

    def take_part(self, event: Any, owner: str, now: float) -> tuple[list[str], list[str], str]:
        """For a script that accepts ``event`` and claims it for ``owner`` at ``now`` (ledger_scripts.STEPS:
        ``accept_record``, ``claim_record``): its KEYS (the record's ten, KEYS[1..10]), its ARGV
        (fingerprint, event JSON, now, member, owner, lease expiry) and the fingerprint."""
        event = LedgerEvent.coerce(event)
        print_ = fingerprint(event.fields)
        body = event_json(print_, event.key, event.fields, event.occurred_at, event.event_id)
        return (self._keys(event.operation, event.key),
                [print_, body, _stamp(now), event_ref(event.operation, event.key), owner,
                 _stamp(now + self._lease)], print_)

    def claim_part(self, operation: str, key: str, fingerprint_: str, owner: str,
                   now: float) -> tuple[list[str], list[str]]:
        """For a script that claims a record for ``owner`` at ``now`` (``claim_record``): its KEYS (the
        record's ten) and its ARGV (fingerprint, owner, now, lease expiry, member), as :meth:`claim`'s."""
        args = [fingerprint_, owner, _stamp(now), _stamp(now + self._lease), event_ref(operation, key)]
        return self._keys(operation, key), args

    @staticmethod
    def read_accept(reply: list, fingerprint_: str) -> AcceptResult:
        """The accept's answer: the first four values of ``accept_record``'s reply (or its conflict)."""
        return _accepted(reply[:4], fingerprint_)

    def read_claim(self, reply: list, now: float) -> Claim:
        """A claim's answer (``claim_record``'s or ``claim_refusal``'s reply), claimed at ``now``."""
        return self._claim_reply(reply, now)

    def delivered_part(self, operation: str, key: str, *, owner: str, result: Mapping[str, Any],
                       log: AttemptEntry, reason: str) -> tuple[list[str], list[str]]:
        """For a script that moves a record to ``delivered`` (``transition_record`` with ``by_story``): its
        KEYS (KEYS[1..10]) and the arguments reason, owner, result JSON, now, retention, window, member, the
        attempt's entry."""
        now = self._clock()
        return self._keys(operation, key), [
            reason, owner, stored_json(result, where="a ledger result"), _stamp(now), self._retention,
            self._window, event_ref(operation, key), log.to_json(default_at=now)]

    def admit_all(self, admissions: list[tuple[Any, str, str, str]], *,
                  not_after: float | None = None) -> list[tuple[AcceptResult, bool] | Exception]:
        """Admit each ``(event, queue, task message, request id)`` in order, in one round trip (a
        pipeline): accept it (as :meth:`accept`) and, unless it is settled (delivered, superseded,
        discarded, dead, uncertain), push ``task message`` onto the ``queue`` list in the same script — an
        event is recorded *and* queued, or neither.  Each answer is (AcceptResult, queued?) — nothing
        queued for a conflict — or, for a script the store ran after ``not_after`` (a store time,
        :meth:`server_time`), a :class:`LateAdmission`: it did nothing.  The request ids (one per event,
        ``worker.store.requests.request_id``) make redis-py's resend of the pipeline after a timeout replay
        the scripts that ran; :meth:`withdraw_admissions` takes back what they did."""
        calls, prints = [], []
        for event, queue, message, rid in admissions:
            event = LedgerEvent.coerce(event)
            print_ = fingerprint(event.fields)
            prints.append(print_)
            body = event_json(print_, event.key, event.fields, event.occurred_at, event.event_id)
            keys = [*self._keys(event.operation, event.key), queue, reply_key(self._ns, rid)]
            calls.append((len(keys), *keys, print_, body, _stamp(self._clock()),
                          event_ref(event.operation, event.key),
                          "" if not_after is None else f"{not_after:.6f}", message))
        replies = self._evalsha_all(self._admit, calls)
        answers: list[tuple[AcceptResult, bool] | Exception] = []
        for print_, reply in zip(prints, replies):
            if isinstance(reply, Exception):
                answers.append(reply)
            elif text(reply[0]) == "late":
                answers.append(LateAdmission(f"the store ran the admission after {not_after:.3f}, when the "
                                             "door had stopped waiting: it did nothing"))
            else:
                answers.append((_accepted(reply[:4], print_), len(reply) > 4 and int(reply[4]) == 1))
        return answers

    def _evalsha_all(self, script, calls: list[tuple]) -> list:
        """EVALSHA ``script`` once per call in one pipeline, its replies (an error as an exception).  If the
        store does not know the script (a restarted server), load it and send the pipeline again: the
        calls that ran replay by their request ids, the others run now.  (redis-py's own pipeline scripts
        would ask SCRIPT EXISTS first: one more round trip for every request.)"""
        for _ in range(2):
            pipe = self._redis.pipeline(transaction=False)
            for call in calls:
                pipe.evalsha(script.sha, *call)
            replies = pipe.execute(raise_on_error=False)
            if not any(isinstance(reply, redis.exceptions.NoScriptError) for reply in replies):
                return replies
            script.sha = self._redis.script_load(script.script)
        return replies

    def withdraw_admissions(self, admissions: list[tuple[Any, str, str, str]]) -> list[str]:
        """Take back what each ``(event, queue, task message, request id)`` of :meth:`admit_all` did, for
        admissions the door answered "not admitted" without knowing whether the store ran them: the
        message, if still on the queue, and the record, if that admission made it and nothing moved it
        on.  One round trip; per admission 'never', 'nothing', 'taken' (a worker has the message: the
        event will be delivered), 'unqueued' or 'withdrawn' (``ledger_scripts.WITHDRAW_ADMISSION``)."""
        pipe = self._redis.pipeline(transaction=False)
        for event, queue, message, rid in admissions:
            event = LedgerEvent.coerce(event)
            keys = self._keys(event.operation, event.key)
            self._withdraw_admission(keys=[*keys, queue, reply_key(self._ns, rid)], client=pipe, args=[
                fingerprint(event.fields), event_ref(event.operation, event.key), message])
        return [text(reply) for reply in pipe.execute()]

    def server_time(self) -> float:
        """The store's own clock (Unix seconds): what :meth:`admit_all`'s ``not_after`` is measured on."""
        seconds, micros = self._redis.time()
        return int(seconds) + int(micros) / 1e6

    def claim(self, operation: str, key: str, fingerprint: str, owner: str) -> Claim:
        """Take the event for one send attempt (``status == "claimed"``), under a lease.

        Otherwise: ``unknown`` (never accepted), ``conflict`` (different fingerprint), ``done`` (final
        state; ``result`` holds what the destination answered), ``parked`` (dead or uncertain: a person
        decides), ``busy`` (another owner's lease is live).  A claim of an event still ``sending``
        under an expired lease succeeds and says so (``previous_state == "sending"``): the crashed
        attempt may have reached the destination.  ``owner`` should be unique per task execution."""
        now = self._clock()
        reply = self._claim(keys=self._request_keys(operation, key),
                            args=[fingerprint, owner, _stamp(now), _stamp(now + self._lease),
                                  event_ref(operation, key)])
        return self._claim_reply(reply, now)

    def _claim_reply(self, reply: list, now: float) -> Claim:
        status = text(reply[0])
        if status == "claimed":
            return Claim(status, state="sending", previous_state=text(reply[1]), attempt=int(reply[2]),
                         round_attempt=int(reply[3]), previous_owner=text(reply[4]) or None,
                         lease_expires_at=round(now + self._lease, 3))
        if status == "conflict":
            return Claim(status, state=text(reply[1]), existing_fingerprint=text(reply[2]))
        if status == "done":
            raw = text(reply[2])
            return Claim(status, state=text(reply[1]), result=json.loads(raw) if raw else None)
        if status == "busy":
            return Claim(status, state=text(reply[1]), previous_owner=text(reply[2]),
                         lease_expires_at=float(text(reply[3]) or 0))
        return Claim(status, state=text(reply[1]) if len(reply) > 1 else None)

    def record_attempt(self, operation: str, key: str, *, attempt: int, outcome: str,
                       status: int | None = None, error_code: int | None = None,
                       messages: Iterable[Any] = (), latency: float | None = None,
                       owner: str | None = None) -> bool:
        """Append one send attempt to the event's attempts log (only while ``owner`` holds the lease,
        if given).  Outcomes are the classifier's words: delivered, transient, unknown, permanent..."""
        entry = AttemptEntry(attempt=attempt, outcome=outcome, status=status, error_code=error_code,
                             messages=tuple(messages), latency=latency, at=self._clock())
        return bool(self._record_attempt(keys=self._request_keys(operation, key),
                                         args=[owner or "", entry.to_json()]))

    def transition(self, operation: str, key: str, to_state: str, *, reason: str, owner: str | None = None,
                   actor: str | None = None, result: Mapping[str, Any] | None = None,
                   attempt: int | None = None, expected_states: Iterable[str] | None = None,
                   log: AttemptEntry | None = None) -> bool:
        """Move the event to ``to_state`` — only from ``expected_states`` (if given) and only while
        ``owner`` holds the lease (if given).  True if it moved.

        Records the history entry (time, from, to, reason, actor, attempt), stores ``result`` (what
        the destination answered), appends ``log`` to the attempts log in the same step, and clears the lease.
        Final states get the retention TTL; any other state persists."""
        return self._move(operation, key, to_state, reason=reason, owner=owner, actor=actor, result=result,
                          attempt=attempt, expected_states=expected_states, log=log, reopen=False)

    # -- support staff -------------------------------------------------------------------------------

    def reopen(self, operation: str, key: str, *, actor: str, reason: str,
               from_states: Iterable[str]) -> bool:
        """Put a parked event back to ``accepted`` for another round of attempts — only from
        ``from_states`` (e.g. dead, uncertain), so when two people retry one event exactly one wins.
        The attempt count goes on (the log keeps numbering), ``round_attempt`` starts again."""
        from_states = list(from_states)
        if not from_states:
            raise ValueError("reopen needs the states it may reopen from")
        return self._move(operation, key, "accepted", reason=reason, owner=None, actor=actor, result=None,
                          attempt=None, expected_states=from_states, log=None, reopen=True)

    def fill_in_result(self, operation: str, key: str, name: str, value: Any, *, state: str, actor: str,
                       reason: str) -> tuple[str, Any]:
        """Add ``name: value`` to the stored result of a record in ``state`` (a person supplies what the
        destination's answer lacked), with a history entry (``state`` → ``state``, actor, reason); the state,
        expiry and counts stay as they are.  Returns (``added``, value), (``present``, the value it has),
        (``missing``, None) or (``wrong_state``, the state it is in).  Compare-and-set on the result as
        read: of two people filling in one value, the second is told ``present``."""
        record_key = self._keys(operation, key)[0]
        while True:
            found_state, raw = (text(v) if v is not None else None
                                for v in self._redis.hmget(record_key, "s", "rs"))
            if found_state is None:
                return "missing", None
            if found_state != state:
                return "wrong_state", found_state
            result = json.loads(raw) if raw else {}
            if result.get(name) not in (None, ""):
                return "present", result[name]
            body = stored_json({**result, name: value}, where="a ledger result")
            reply = self._fill_in(keys=self._request_keys(operation, key), args=[
                state, raw or "", body, reason, actor, _stamp(self._clock())])
            if text(reply[0]) == "ok":
                return "added", value
            # changed or moved under us (the record was read a moment ago): read it again

    def _move(self, operation, key, to_state, *, reason, owner, actor, result, attempt, expected_states,
              log, reopen) -> bool:
        if to_state not in STATES:
            raise ValueError(f"unknown state {to_state!r}")
        if to_state == "sending":
            raise ValueError("only claim() puts an event in 'sending' (it takes the lease)")
        expected = ""
        if expected_states is not None:
            expected = list(expected_states)
            unknown = set(expected) - set(STATES)
            if unknown or not expected:
                raise ValueError(f"expected_states must be known states, got {expected!r}")
            expected = "," + ",".join(expected) + ","
        reply = self._transition(keys=self._request_keys(operation, key), args=[
            to_state, reason, owner or "", actor or "",
            stored_json(result, where="a ledger result") if result is not None else "",
            "" if attempt is None else str(int(attempt)), expected, _stamp(self._clock()),
            self._retention, self._window, event_ref(operation, key),
            log.to_json(default_at=self._clock()) if log is not None else "", "1" if reopen else "0",
        ])
        return text(reply[0]) == "ok"

    # -- reading ----------------------------------------------------------------------------------------

    def get(self, operation: str, key: str) -> EventRecord | None:
        """The event's record, or None (never accepted, or expired after its retention)."""
        return parse_record(operation, key, self._redis.hgetall(self._keys(operation, key)[0]))

    def count_by_state(self) -> dict[str, int]:
        """Exact number of events in each open state (accepted, sending, retrying, waiting, uncertain,
        dead).  Final states are counted by :meth:`final_totals` and :meth:`delivered_since`."""
        pipe = self._redis.pipeline(transaction=False)
        for state in OPEN_STATES:
            pipe.zcard(self._index_key(state))
        return dict(zip(OPEN_STATES, (int(n) for n in pipe.execute())))

    def final_totals(self) -> dict[str, int]:
        """How many events ever entered each final state (lifetime counters, not current records)."""
        raw = self._redis.hgetall(f"{self._ns}:ledger:totals")
        counts = {text(k): int(v) for k, v in raw.items()}
        return {state: counts.get(state, 0) for state in FINAL_STATES}

    def delivered_since(self, since: float) -> int:
        """Events delivered since ``since``, to the minute: the minute ``since`` falls in counts whole.
        Reaches back ``delivered_window_seconds`` (counts per minute, not one index entry per event: an
        entry per delivery cost ~110 bytes an event for an hour, for the sake of one number)."""
        first = math.floor(since / 60)
        return sum(delivered for minute, (delivered, _) in self.per_minute().items() if minute >= first)

    def per_minute(self) -> dict[int, tuple[int, int]]:
        """Unix minute -> (deliveries, failures) for the minutes of the window that saw any.  A failure is
        a move to retrying, uncertain or dead (one per failed attempt, and one per event given up on)."""
        found: dict[int, tuple[int, int]] = {}
        for raw_field, raw_count in self._redis.hgetall(self._per_minute_key).items():
            name, count = text(raw_field), int(raw_count)
            failed = name.startswith("f")
            minute = int(name[1:] if failed else name)
            delivered_n, failed_n = found.get(minute, (0, 0))
            found[minute] = (delivered_n, failed_n + count) if failed else (delivered_n + count, failed_n)
        return found

    def oldest_in_state(self, state: str) -> tuple[str, str, float] | None:
        """(operation, key, entered_at) of the event longest in an open state, or None."""
        found = self._redis.zrange(self._state_index(state), 0, 0, withscores=True)
        if not found:
            return None
        operation, key = _split_member(found[0][0])
        return operation, key, float(found[0][1])

    def list_in_state(self, state: str, limit: int | None = 100, *, oldest_first: bool = True,
                      offset: int = 0) -> list[EventRecord]:
        """Records in an open state, by the time they entered it (skipping the first ``offset``)."""
        index = self._state_index(state)
        stop = -1 if limit is None else offset + max(limit, 1) - 1
        members = [text(m) for m in (self._redis.zrange(index, offset, stop) if oldest_first
                                     else self._redis.zrevrange(index, offset, stop))]
        pipe = self._redis.pipeline(transaction=False)
        pairs = [_split_member(member) for member in members]
        for operation, key in pairs:
            pipe.hgetall(self.record_key(operation, key))
        records = (parse_record(op, key, raw) for (op, key), raw in zip(pairs, pipe.execute()))
        return [record for record in records if record is not None]

    def entered_state(self, state: str, limit: int, *, offset: int = 0) -> list[tuple[str, str, float]]:
        """(operation, key, when it entered ``state``) of the records in an open state, oldest first,
        skipping the first ``offset`` — the index alone, no record read (the stranded sweep's pages)."""
        found = self._redis.zrange(self._state_index(state), offset, offset + max(limit, 1) - 1,
                                   withscores=True)
        return [(*_split_member(text(member)), float(score)) for member, score in found]

    def get_many(self, pairs: list[tuple[str, str]]) -> list[EventRecord | None]:
        """The records of ``(operation, key)`` pairs (None where there is none), in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for operation, key in pairs:
            pipe.hgetall(self.record_key(operation, key))
        return [parse_record(op, key, raw) for (op, key), raw in zip(pairs, pipe.execute())]

    def _state_index(self, state: str) -> str:
        if state not in OPEN_STATES:
            raise ValueError(f"only open states are indexed, not {state!r}")
        return self._index_key(state)
