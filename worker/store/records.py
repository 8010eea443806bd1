"""The records the store keeps, as stored and as read.

The ledger's: the send-attempt entry written into an event's story (:class:`AttemptEntry`), the stored
event (:func:`event_json`) and the decoded record (:class:`EventRecord`, :func:`parse_record`); the field
layout is the one ``worker.store.ledger_scripts`` documents and its Lua scripts write.

The dead letters': one letter decoded (:class:`DeadLetter`), as ``worker.store.dead_letter_scripts``
lays it out and ``worker.store.dead_letters`` writes it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from worker.encoding import iso_time, stored_json, text
from worker.store.dead_letter_scripts import DEFAULT_DESTINATION
from worker.store.dead_letter_search import search_text, terms


@dataclass(frozen=True)
class AttemptEntry:
    """One send attempt, as written: number, outcome, HTTP status, the destination's error code and messages,
    latency (s), time (None: the ledger's clock).  Read back, attempts are plain dicts (see
    :func:`parse_record`)."""

    attempt: int
    outcome: str
    status: int | None = None
    error_code: int | None = None
    messages: tuple = ()
    latency: float | None = None
    at: float | None = None

    def to_json(self, *, default_at: float | None = None) -> str:
        """Stored form: a JSON object with short names, empty parts left out (the record stays small)."""
        at = self.at if self.at is not None else default_at
        stored = {"n": int(self.attempt), "t": None if at is None else round(at, 3), "o": self.outcome,
                  "st": self.status, "ec": self.error_code, "ms": list(self.messages) or None,
                  "l": None if self.latency is None else round(self.latency, 3)}
        return stored_json({k: v for k, v in stored.items() if v is not None}, where="an attempt's messages")

    def to_dict(self) -> dict:
        return {"attempt": self.attempt, "at": self.at, "outcome": self.outcome, "status": self.status,
                "error_code": self.error_code, "messages": list(self.messages), "latency": self.latency}


def _attempt(stored: Mapping) -> dict:
    return {"attempt": stored.get("n"), "at": stored.get("t"), "outcome": stored.get("o"),
            "status": stored.get("st"), "error_code": stored.get("ec"), "messages": stored.get("ms") or [],
            "latency": stored.get("l")}


_SHORT_NAMES = {"attempt": "n", "at": "t", "outcome": "o", "status": "st", "error_code": "ec",
                "messages": "ms", "latency": "l"}


def stored_attempt(entry: Mapping) -> dict:
    """An attempt as a dead letter's body keeps it: the ledger's short names, empty parts left out (an
    exhausted letter holds up to RETRY_MAX_ATTEMPTS of them); an entry with other keys is kept as it is."""
    if not set(entry) <= set(_SHORT_NAMES):
        return dict(entry)
    return {_SHORT_NAMES[name]: value for name, value in entry.items() if value not in (None, [], ())}


def read_attempt(stored: Mapping) -> dict:
    """A letter's attempt as read: :func:`stored_attempt`'s short form back to the long one (letters
    written before issue 21 keep the long form)."""
    if "n" in stored and set(stored) <= set(_SHORT_NAMES.values()):
        return _attempt(stored)
    return dict(stored)


def _transition(parts: list) -> dict:
    parts = list(parts) + [None] * (6 - len(parts))
    return {"at": parts[0], "from": parts[1] or None, "to": parts[2], "reason": parts[3], "actor": parts[4],
            "attempt": parts[5]}


def with_iso_time(entry: Mapping) -> dict:
    """A history or attempt entry with its time as ISO-8601 (for JSON output)."""
    at = entry.get("at")
    return {**entry, "at": iso_time(at) if isinstance(at, (int, float)) else at}


@dataclass(frozen=True)
class EventRecord:
    """One event's ledger record, decoded.  ``to_dict()`` is what ``wms-relay event --json`` prints.

    ``history``: dicts with at (Unix seconds), from, to, reason, actor, attempt — every transition.
    ``attempts_log``: dicts with attempt, at, outcome, status, error_code, messages, latency.
    ``to_dict()`` renders the times as ISO-8601 (UTC).

    A ``compacted`` record (settled more than SETTLED_DETAIL_HOURS ago: ``worker.store.settled_records``)
    has no event fields, attempts log or answer but its dispatch id; its fingerprint is the stored start of
    one (:meth:`same_fingerprint`), and its history is one entry: when it settled, and its outcome."""

    operation: str
    key: str
    state: str
    attempts: int
    round_attempts: int
    fingerprint: str
    event: dict
    result: dict | None
    history: tuple[dict, ...]
    attempts_log: tuple[dict, ...]
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    compacted: bool = False

    @property
    def created_at(self) -> float | None:
        if self.compacted:  # its first entry is when it settled: when it was first seen is not kept
            return None
        return self.history[0]["at"] if self.history else None

    def same_fingerprint(self, fingerprint: str) -> bool:
        """Is ``fingerprint`` (an event's, in full) this record's?  A compacted record keeps its start."""
        stored = self.fingerprint
        if self.compacted:
            return bool(stored) and fingerprint.startswith(stored)
        return bool(stored) and fingerprint == stored

    @property
    def updated_at(self) -> float | None:
        return self.history[-1]["at"] if self.history else None

    def to_dict(self) -> dict:
        return {
            "operation": self.operation, "key": self.key, "state": self.state, "attempts": self.attempts,
            "round_attempts": self.round_attempts, "fingerprint": self.fingerprint, "event": self.event,
            "result": self.result, "history": [with_iso_time(h) for h in self.history],
            "attempts_log": [with_iso_time(a) for a in self.attempts_log],
            "lease": None if self.lease_owner is None else {
                "owner": self.lease_owner, "expires_at": iso_time(self.lease_expires_at)},
            "created_at": iso_time(self.created_at), "updated_at": iso_time(self.updated_at),
            "compacted": self.compacted,
        }


def event_json(fingerprint: str, key: str, fields: Mapping, occurred_at: str | None,
               event_id: str | None) -> str:
    """The stored event (field ``e``): fingerprint first, then what the WMS sent."""
    stored: dict[str, Any] = {"fp": fingerprint, "f": fields}
    if occurred_at is not None:
        stored["at"] = occurred_at
    if event_id != key:  # usually the key is the event id; None is kept as null
        stored["id"] = event_id
    return stored_json(stored, where=f"event {key}")


def parse_record(operation: str, key: str, raw: Mapping) -> EventRecord | None:
    """Decode a record hash (HGETALL reply) into an EventRecord; None for an empty reply."""
    if not raw:
        return None
    fields = {text(k): text(v) for k, v in raw.items()}
    attempts = int(fields.get("n") or 0)
    compacted = is_compacted(fields.get("e"))
    stored = {"fp": fields["e"]} if compacted else json.loads(fields["e"]) if fields.get("e") else {}
    story = json.loads(fields.get("h") or "[]")
    if compacted:  # what is left of its story: when it settled, and how (then what a person added since)
        settled_at, _, outcome = (fields.get("c") or "").partition(" ")
        story = [[float(settled_at) if settled_at else None, "", fields["s"], outcome or fields["s"]], *story]
    lease = fields["l"].split(" ", 1) if fields.get("l") else None
    return EventRecord(
        operation=operation, key=key, state=fields["s"], attempts=attempts,
        round_attempts=attempts - int(fields.get("b") or 0), fingerprint=stored.get("fp", ""),
        event={"operation": operation, "key": key, "fields": stored.get("f", {}),
               "occurred_at": stored.get("at"), "event_id": stored.get("id", key)},
        result=json.loads(fields["rs"]) if fields.get("rs") else None,
        history=tuple(_transition(entry) for entry in story if isinstance(entry, list)),
        attempts_log=tuple(_attempt(entry) for entry in story if isinstance(entry, dict)),
        lease_owner=lease[1] if lease else None,
        lease_expires_at=float(lease[0]) if lease else None,
        compacted=compacted,
    )


def is_compacted(stored_event: str | None) -> bool:
    """Is a record's ``e`` field a compacted record's bare fingerprint (``ledger_scripts``: not JSON)?"""
    return bool(stored_event) and not stored_event.startswith("{")


def letter_body(event: Any, messages: Any, attempts: list, fingerprints: Any, detail: str | None) -> dict:
    """A dead letter's long parts, written once beside its hash (``worker.store.dead_letter_scripts``):
    the event, the messages, the attempts, and the fingerprints and detail when there are any."""
    body = {"event": event, "messages": messages,
            "attempts": [stored_attempt(a) if isinstance(a, Mapping) else a for a in attempts]}
    if fingerprints:
        body["fingerprints"] = fingerprints
    if detail:
        body["detail"] = detail
    return body


# (destination, operation, key) -> the delivery's ref; a KeyError for a destination there is none of.
DeliveryRef = Callable[[str, str, str], str]


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter.  ``status``: open, retried or discarded."""

    letter_id: str
    operation: str
    key: str
    event: Any
    reason: str
    messages: Any
    attempts_log: list
    fingerprints: Any
    created_at: float
    detail: str | None = None
    status: str = "open"
    closed_at: float | None = None
    closed_by: str | None = None
    close_reason: str | None = None
    destination: str = DEFAULT_DESTINATION
    ref: str = ""  # the delivery this letter is about (``kaching/stock.adjust:E-1``)

    @classmethod
    def from_hash(cls, raw: Mapping, delivery_ref: DeliveryRef, body: Any = None,
                  letter_id: str | None = None) -> "DeadLetter":
        """The letter of one HGETALL reply and its body (a GET reply; None for a letter written before
        bodies, which holds everything in its hash, its id too); ``delivery_ref`` names its delivery."""
        fields = {"id": letter_id, **{text(k): text(v) for k, v in raw.items()}}
        if body is not None:
            long_parts = json.loads(text(body))
        else:  # written before bodies: JSON texts in the hash, the detail as plain text
            long_parts = {name: json.loads(fields[name]) for name in ("event", "messages", "attempts")}
            prints = fields.get("fingerprints")
            long_parts["fingerprints"] = json.loads(prints) if prints else None
            long_parts["detail"] = fields.get("detail")
        destination = fields.get("destination") or DEFAULT_DESTINATION
        try:
            ref = delivery_ref(destination, fields["operation"], fields["key"])
        except KeyError:  # a destination no longer configured in the code: its letter still reads
            ref = ""
        return cls(
            letter_id=fields["id"], operation=fields["operation"], key=fields["key"],
            event=long_parts["event"], reason=fields["reason"], messages=long_parts["messages"],
            attempts_log=[read_attempt(a) if isinstance(a, Mapping) else a for a in long_parts["attempts"]],
            fingerprints=long_parts.get("fingerprints") or None,
            created_at=float(fields["created_at"]), detail=long_parts.get("detail") or None,
            status=fields.get("status", "open"),
            closed_at=float(fields["closed_at"]) if fields.get("closed_at") else None,
            closed_by=fields.get("closed_by") or None, close_reason=fields.get("close_reason") or None,
            destination=destination, ref=ref,
        )

    def __getitem__(self, name: str) -> Any:
        """Dict-style access to the fields of :meth:`to_dict` (``letter["reason"]``), for scripts."""
        return self.to_dict()[name]

    def age(self, now: float) -> float:
        return max(0.0, now - self.created_at)

    def to_dict(self) -> dict:
        return {
            "id": self.letter_id, "destination": self.destination, "operation": self.operation,
            "key": self.key, "reason": self.reason,
            "detail": self.detail, "messages": self.messages, "event": self.event,
            "attempts": [with_iso_time(a) for a in self.attempts_log if isinstance(a, Mapping)],
            "fingerprints": self.fingerprints, "created_at": iso_time(self.created_at), "status": self.status,
            "closed_at": iso_time(self.closed_at), "closed_by": self.closed_by,
            "close_reason": self.close_reason,
        }

    def body(self) -> dict:
        """The letter's long parts, as its body key holds them (:func:`letter_body`)."""
        return letter_body(self.event, self.messages, self.attempts_log, self.fingerprints, self.detail)

    def search_text(self) -> str:
        """What a text search looks in (lower-cased): id, operation, key, reason and the body."""
        return search_text(self.letter_id, self.operation, self.key, self.reason, self.body())

    def terms(self) -> list[str]:
        return terms(self.key, self.event)

    def matches(self, needle: str) -> bool:
        """Case-insensitive substring search over everything a person would grep for."""
        return needle.lower() in self.search_text()
