"""Dead letters: events wms-relay will not send again on its own, kept until a person decides.

A letter keeps the full event, every attempt's outcome, Trademax's (or the schema's) messages and the
reason: ``invalid``, ``permanent``, ``exhausted``, ``conflict``, ``dependency_timeout``...  Nothing here
trims or expires: a letter leaves the open list only when someone ``take``s it (to retry) or
``discard``s it, and even then it is kept, marked, with who did it and why.

    wms:dead:seq              counter behind the ids: dl-1, dl-2, ... (short, readable, time-ordered)
    wms:dead:letter:<id>      hash: the letter (readable field names: support staff use redis-cli too)
    wms:dead:open             sorted set  id -> created time: the letters still waiting for a person
    wms:dead:all              sorted set  id -> created time: every letter ever written
    wms:dead:latest           hash  "operation:key" -> the newest letter id of that event
    wms:request:<id>          the reply of an id allocation, a take/discard or a purge, replayed if the
                              call is resent after a timeout (``worker.store.requests``)

``take`` and ``discard`` are atomic (a Lua script removes the id from the open set first, as
``rq requeue`` does): when two people retry one letter, exactly one gets it.

Retention: an OPEN letter is never removed.  A CLOSED one (retried or discarded) is evidence of what a
person did; ``purge_closed`` deletes those closed before a cutoff — the scheduler does it once an hour
for DEAD_LETTER_RETENTION_DAYS (default 90), ``wms-relay dead purge`` on demand — with its entries in
``dead:all`` and ``dead:latest``.  The event's ledger record has its own retention (a final state's
DELIVERED_RETENTION_DAYS), so a purged letter's event is not forgotten any sooner.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from worker.encoding import event_ref, iso_time, stored_json, text
from worker.store.records import AttemptEntry, with_iso_time
from worker.store.requests import replaying, reply_key, request_id

# KEYS: the letter, the open set, the all set, the latest-per-event hash.  ARGV: id, operation, key,
# event, reason, messages, attempts, fingerprints, now, detail, the event's ref (worker.encoding.event_ref).
_ADD = """
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'operation', ARGV[2], 'key', ARGV[3], 'event', ARGV[4],
           'reason', ARGV[5], 'messages', ARGV[6], 'attempts', ARGV[7], 'fingerprints', ARGV[8],
           'created_at', ARGV[9], 'detail', ARGV[10], 'status', 'open')
redis.call('ZADD', KEYS[2], ARGV[9], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[9], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[11], ARGV[1])
return 1
"""

# KEYS: the letter, the open set, the reply key.  ARGV: id, new status, now, actor, reason.
_CLOSE = replaying("""
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'closed_at', ARGV[3], 'closed_by', ARGV[4],
           'close_reason', ARGV[5])
return redis.call('HGETALL', KEYS[1])
""")

# KEYS: the id counter, the reply key.  The next letter id, replayed if the call is resent.
_NEXT_ID = replaying("""
return redis.call('INCR', KEYS[1])
""")


# KEYS: the letter, the open set, the all set, the latest-per-event hash, the reply key.  ARGV: id, cutoff
# (Unix seconds).  Deletes a letter closed before the cutoff (never an open one); 1 if it did, replayed if
# the call is resent (a resend must not count a deleted letter as kept).
_PURGE = replaying("""
local fields = redis.call('HMGET', KEYS[1], 'status', 'closed_at', 'operation', 'key')
if not fields[1] then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 0
end
if fields[1] == 'open' or redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
if (tonumber(fields[2]) or 0) >= tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
local ref = fields[3] .. ':' .. fields[4]
if redis.call('HGET', KEYS[4], ref) == ARGV[1] then redis.call('HDEL', KEYS[4], ref) end
return 1
""")


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

    @classmethod
    def from_hash(cls, raw: Mapping) -> "DeadLetter":
        fields = {text(k): text(v) for k, v in raw.items()}
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
        )

    def __getitem__(self, name: str) -> Any:
        """Dict-style access to the fields of :meth:`to_dict` (``letter["reason"]``), for scripts."""
        return self.to_dict()[name]

    def age(self, now: float) -> float:
        return max(0.0, now - self.created_at)

    def to_dict(self) -> dict:
        return {
            "id": self.letter_id, "operation": self.operation, "key": self.key, "reason": self.reason,
            "detail": self.detail, "messages": self.messages, "event": self.event,
            "attempts": [with_iso_time(a) for a in self.attempts_log if isinstance(a, Mapping)],
            "fingerprints": self.fingerprints, "created_at": iso_time(self.created_at), "status": self.status,
            "closed_at": iso_time(self.closed_at), "closed_by": self.closed_by,
            "close_reason": self.close_reason,
        }

    def matches(self, needle: str) -> bool:
        """Case-insensitive substring search over everything a person would grep for."""
        haystack = " ".join([self.letter_id, self.operation, self.key, self.reason, self.detail or "",
                             json.dumps(self.messages, ensure_ascii=False),
                             json.dumps(self.event, ensure_ascii=False)])
        return needle.lower() in haystack.lower()


def _attempt_dict(entry: Any) -> dict:
    if isinstance(entry, AttemptEntry):
        return entry.to_dict()
    if hasattr(entry, "to_dict"):
        return entry.to_dict()
    return dict(entry)


class DeadLetters:
    """The dead-letter store in one Redis (any client: bytes or text replies)."""

    def __init__(self, redis_client, clock: Callable[[], float] = time.time, *,
                 namespace: str = "wms") -> None:
        self._redis = redis_client
        self._clock = clock
        self._ns = namespace
        self._add = redis_client.register_script(_ADD)
        self._close = redis_client.register_script(_CLOSE)
        self._next_id = redis_client.register_script(_NEXT_ID)
        self._purge = redis_client.register_script(_PURGE)

    def _letter_key(self, letter_id: str) -> str:
        return f"{self._ns}:dead:letter:{letter_id}"

    @property
    def _open(self) -> str:
        return f"{self._ns}:dead:open"

    def add(self, operation: str, key: str, event: Any, reason: str, messages: Any,
            attempts_log: Iterable[Any] = (), fingerprints: Any = None, detail: str | None = None) -> str:
        """Write a dead letter; returns its id (``dl-<n>``).

        ``event``: the full event as received — a dict, or for input that was not even JSON-shaped, its
        text; secret-looking keys are blanked (it is evidence, kept as sent otherwise).  ``messages``:
        Trademax's error messages (a list) or the schema's (a dict of field -> messages); ``attempts_log``:
        every attempt (dicts, as the ledger's record gives them, or AttemptEntry); ``fingerprints``: for a
        conflict, the existing and the new one (a list or a dict); ``detail``: a one-line summary."""
        if hasattr(event, "to_dict"):
            event = event.to_dict()
        if isinstance(messages, str):
            messages = [messages]
        elif not isinstance(messages, Mapping):
            messages = list(messages or [])
        where = f"dead letter {operation} {key}"
        # The id comes first (INCR is atomic); a crash before the letter is written only skips a number.
        next_id = self._next_id(keys=[f"{self._ns}:dead:seq", reply_key(self._ns, request_id())])
        letter_id = f"dl-{int(next_id)}"
        args = [
            letter_id, operation, key, stored_json(event, where=where, redact=True), reason,
            stored_json(messages, where=where, redact=True),
            stored_json([_attempt_dict(a) for a in attempts_log or ()], where=where, redact=True),
            stored_json(fingerprints, where=where) if fingerprints else "",
            f"{self._clock():.3f}", detail or "", event_ref(operation, key),
        ]
        keys = [self._letter_key(letter_id), self._open, f"{self._ns}:dead:all", f"{self._ns}:dead:latest"]
        self._add(keys=keys, args=args)
        return letter_id

    def get(self, letter_id: str) -> DeadLetter | None:
        """One letter (open or closed), or None."""
        raw = self._redis.hgetall(self._letter_key(letter_id))
        return DeadLetter.from_hash(raw) if raw else None

    def latest_for(self, operation: str, key: str) -> DeadLetter | None:
        """The newest letter written for this event (open or closed), or None."""
        letter_id = self._redis.hget(f"{self._ns}:dead:latest", event_ref(operation, key))
        return self.get(text(letter_id)) if letter_id else None

    def list(self, operation: str | None = None, since: float | None = None, grep: str | None = None,
             limit: int | None = None, *, include_closed: bool = False) -> list[DeadLetter]:
        """Open letters (or all, with ``include_closed``), newest first, filtered by operation, creation
        time (``since``, Unix seconds) and a case-insensitive text search."""
        index = f"{self._ns}:dead:all" if include_closed else self._open
        low = "-inf" if since is None else repr(float(since))
        found: list[DeadLetter] = []
        offset, batch = 0, 200
        while limit is None or len(found) < limit:
            ids = self._redis.zrevrangebyscore(index, "+inf", low, start=offset, num=batch)
            if not ids:
                break
            offset += len(ids)
            pipe = self._redis.pipeline(transaction=False)
            for letter_id in ids:
                pipe.hgetall(self._letter_key(text(letter_id)))
            for raw in pipe.execute():
                if not raw:
                    continue
                letter = DeadLetter.from_hash(raw)
                if operation is not None and letter.operation != operation:
                    continue
                if grep and not letter.matches(grep):
                    continue
                found.append(letter)
        return found if limit is None else found[:limit]

    def count(self) -> int:
        """Open letters (waiting for a person)."""
        return int(self._redis.zcard(self._open))

    def oldest_age(self, now: float | None = None) -> float | None:
        """Seconds the oldest open letter has waited, or None when there is none."""
        found = self._redis.zrange(self._open, 0, 0, withscores=True)
        if not found:
            return None
        now = self._clock() if now is None else now
        return max(0.0, now - float(found[0][1]))

    def take(self, letter_id: str, *, actor: str, reason: str) -> DeadLetter | None:
        """Take an open letter to retry it: atomically off the open list and marked ``retried`` (kept,
        with who and why).  None if it is not open (someone else took or discarded it first)."""
        return self._close_letter(letter_id, "retried", actor, reason)

    def discard(self, letter_id: str, *, actor: str, reason: str) -> DeadLetter | None:
        """Give up on an open letter: off the open list, marked ``discarded``, kept for the record.
        None if it is not open."""
        return self._close_letter(letter_id, "discarded", actor, reason)

    def _close_letter(self, letter_id: str, status: str, actor: str, reason: str) -> DeadLetter | None:
        if not actor:
            raise ValueError("a person's action on a dead letter needs the actor's name")
        reply = self._close(keys=[self._letter_key(letter_id), self._open, reply_key(self._ns, request_id())],
                            args=[letter_id, status, f"{self._clock():.3f}", actor, reason or ""])
        if not reply:
            return None
        return DeadLetter.from_hash(dict(zip(reply[::2], reply[1::2])))

    def purge_closed(self, closed_before: float, *, dry_run: bool = False,
                     batch: int = 500) -> list[DeadLetter]:
        """Delete the letters retried or discarded before ``closed_before`` (Unix seconds); open letters are
        never touched.  Returns what was deleted (or, with ``dry_run``, what would be).  A letter is
        closed after it was written, so only letters written before the cutoff are read."""
        index = f"{self._ns}:dead:all"
        cutoff = float(closed_before)
        found: list[DeadLetter] = []
        offset = 0
        while True:
            ids = [text(i) for i in self._redis.zrangebyscore(index, "-inf", repr(cutoff), start=offset,
                                                              num=batch)]
            if not ids:
                return found
            pipe = self._redis.pipeline(transaction=False)
            for letter_id in ids:
                pipe.hgetall(self._letter_key(letter_id))
            kept = 0
            for letter_id, raw in zip(ids, pipe.execute()):
                letter = DeadLetter.from_hash(raw) if raw else None
                closed = letter is not None and letter.status != "open" and (letter.closed_at or 0) < cutoff
                if closed and dry_run:
                    found.append(letter)
                elif not dry_run and (closed or letter is None):
                    keys = [self._letter_key(letter_id), self._open, index, f"{self._ns}:dead:latest",
                            reply_key(self._ns, request_id())]
                    if self._purge(keys=keys, args=[letter_id, repr(cutoff)]) and letter is not None:
                        found.append(letter)
                        continue
                    kept += letter is not None
                else:
                    kept += 1
            offset += kept if not dry_run else len(ids)
