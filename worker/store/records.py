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
from worker.store.dead_letter_search import facets_entry, search_text, terms


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
    ``to_dict()`` renders the times as ISO-8601 (UTC)."""

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

    @property
    def created_at(self) -> float | None:
        return self.history[0]["at"] if self.history else None

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
    stored = json.loads(fields["e"]) if fields.get("e") else {}
    story = json.loads(fields.get("h") or "[]")
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
    )


# A letter without a destination field was written before there were other destinations: Trademax's.
DEFAULT_DESTINATION = "trademax"
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
    def from_hash(cls, raw: Mapping, delivery_ref: DeliveryRef) -> "DeadLetter":
        """The letter of one HGETALL reply; ``delivery_ref`` names its delivery."""
        fields = {text(k): text(v) for k, v in raw.items()}
        destination = fields.get("destination") or DEFAULT_DESTINATION
        try:
            ref = delivery_ref(destination, fields["operation"], fields["key"])
        except KeyError:  # a destination no longer configured in the code: its letter still reads
            ref = ""
        return cls(
            letter_id=fields["id"], operation=fields["operation"], key=fields["key"],
            event=json.loads(fields["event"]), reason=fields["reason"],
            messages=json.loads(fields["messages"]),
            attempts_log=json.loads(fields["attempts"]),
            fingerprints=json.loads(fields["fingerprints"]) if fields.get("fingerprints") else None,
            created_at=float(fields["created_at"]), detail=fields.get("detail") or None,
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

    def search_text(self) -> str:
        """What a text search looks in (lower-cased): id, operation, key, reason, detail, messages, event."""
        return search_text(self.letter_id, self.operation, self.key, self.reason, self.detail,
                           self.messages, self.event)

    def facets(self) -> str:
        return facets_entry(self.operation, self.reason, self.destination, self.status)

    def terms(self) -> list[str]:
        return terms(self.key, self.event)

    def matches(self, needle: str) -> bool:
        """Case-insensitive substring search over everything a person would grep for."""
        return needle.lower() in self.search_text()
