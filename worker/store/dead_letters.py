"""Dead letters: events wms-relay will not send again on its own, kept until a person decides.

A letter keeps the full event, every attempt's outcome, the destination's (or the schema's) messages and the
reason: ``invalid``, ``permanent``, ``exhausted``, ``conflict``, ``dependency_timeout``...  Nothing
trims or expires an open letter: it leaves the open list only when someone ``take``s it (to retry) or
``discard``s it, and even then it is kept, marked, with who did it and why (until the retention below).

The keys and the Lua scripts are in ``worker.store.dead_letter_scripts``: a letter is a hash of its short
fields and a body string of its long parts (the hash then stays a compact listpack), and its indexes hold
its id, never a copy of it — ~1.4 KiB a letter with every index entry; the search
(``worker.store.dead_letter_search``) finds letters among 100,000 on the server.

One store for every destination: a letter names its destination in field ``destination`` (a letter
written before there were other destinations has none, and is read back as Trademax's: every letter was
then).  The store knows no destination: it is handed the function that names a delivery by its ref
(``worker.destinations.table.delivery_ref``: ``kaching/stock.adjust:E-1``, ``stock.adjust:E-1`` for
Trademax), which keys ``dead:latest`` and names the letter's delivery (``DeadLetter.ref``).

``take`` and ``discard`` are atomic (a Lua script removes the id from the open set first, as
``rq requeue`` does): when two people retry one letter, exactly one gets it.

Retention: an OPEN letter is never removed.  A CLOSED one (retried or discarded) is evidence of what a
person did; ``purge_closed`` deletes those closed before a cutoff — the scheduler does it once an hour
for DEAD_LETTER_RETENTION_DAYS (default 90), ``wms-relay dead purge`` on demand — with its entries in
its body, its entries in ``dead:all``, ``dead:latest`` and the search's terms (the value sets keep every
value ever seen).  The event's ledger record has its own retention (a final state's
DELIVERED_RETENTION_DAYS), so a purged letter's event is not forgotten any sooner.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterable, Mapping

from worker.encoding import stored_json, text
from worker.store import dead_letter_scripts as scripts
from worker.store.audit_log import PendingEntry
from worker.store.dead_letter_search import LetterQuery, search, terms
from worker.store.records import DEFAULT_DESTINATION, AttemptEntry, DeadLetter, DeliveryRef, letter_body
from worker.store.requests import reply_key, request_id

FACETS = ("operation", "reason", "destination")


def _attempt_dict(entry: Any) -> dict:
    if isinstance(entry, AttemptEntry):
        return entry.to_dict()
    if hasattr(entry, "to_dict"):
        return entry.to_dict()
    return dict(entry)


class DeadLetters:
    """The dead-letter store in one Redis (any client: bytes or text replies)."""

    def __init__(self, redis_client, clock: Callable[[], float] = time.time, *, delivery_ref: DeliveryRef,
                 namespace: str = "wms") -> None:
        """``delivery_ref``: how a delivery is named (``worker.destinations.table.delivery_ref``)."""
        self._redis = redis_client
        self._clock = clock
        self._ref = delivery_ref
        self._ns = namespace
        self._add = redis_client.register_script(scripts.ADD)
        self._close = redis_client.register_script(scripts.CLOSE)
        self._next_id = redis_client.register_script(scripts.NEXT_ID)
        self._purge = redis_client.register_script(scripts.PURGE)

    def letter_key(self, letter_id: str) -> str:
        """The hash of one letter (its short fields)."""
        return f"{self._ns}:dead:letter:{letter_id}"

    def body_key(self, letter_id: str) -> str:
        """The string of one letter's long parts (event, messages, attempts...): none for a letter
        written before bodies."""
        return f"{self._ns}:dead:body:{letter_id}"

    @property
    def _open(self) -> str:
        return f"{self._ns}:dead:open"

    def key_of(self, name: str) -> str:
        """The Redis key of one of the store's own structures (``open``, ``all``, ``latest``, ``terms``)."""
        return f"{self._ns}:dead:{name}"

    def facet_key(self, facet: str, value: str) -> str:
        """The sorted set of the open letters with ``facet`` (operation, reason, destination) = ``value``."""
        if facet not in FACETS:
            raise ValueError(f"dead letters are indexed by {', '.join(FACETS)}, not {facet!r}")
        return f"{self._ns}:dead:open:{facet}:{value}"

    def _facet_keys(self, operation: str, reason: str, destination: str) -> list[str]:
        return [self.facet_key("operation", operation), self.facet_key("reason", reason),
                self.facet_key("destination", destination)]

    def _value_keys(self) -> list[str]:
        return [self.key_of(f"values:{facet}") for facet in FACETS]

    def facet_counts(self, facet: str) -> dict[str, int]:
        """Open letters per value of ``facet`` (operation, reason or destination), every value the facet
        has had (0 for those with no open letter), sorted by name."""
        self.ensure_indexed()
        values = sorted(text(v) for v in self._redis.smembers(self.key_of(f"values:{facet}")))
        pipe = self._redis.pipeline(transaction=False)
        for value in values:
            pipe.zcard(self.facet_key(facet, value))
        return dict(zip(values, (int(n) for n in pipe.execute())))

    def open_by(self, facet: str, values: Iterable[str]) -> dict[str, tuple[int, float | None]]:
        """Open letters with ``facet`` = each of ``values``: (how many, when the oldest was written; None:
        none).  A read only (``status``, the metrics), so it does not index an old store first as
        :meth:`facet_counts` does (letters written before the search indexes existed, until a desk page or
        a search indexes them, are not counted)."""
        values = list(values)
        pipe = self._redis.pipeline(transaction=False)
        for value in values:
            pipe.zcard(self.facet_key(facet, value))
            pipe.zrange(self.facet_key(facet, value), 0, 0, withscores=True)
        replies = pipe.execute()
        return {value: (int(count), float(oldest[0][1]) if oldest else None)
                for value, count, oldest in zip(values, replies[::2], replies[1::2])}

    def add(self, operation: str, key: str, event: Any, reason: str, messages: Any,
            attempts_log: Iterable[Any] = (), fingerprints: Any = None, detail: str | None = None,
            destination: str = DEFAULT_DESTINATION) -> str:
        """Write a dead letter about ``destination``'s delivery of an event; returns its id (``dl-<n>``).

        ``event``: the full event as received — a dict, or for input that was not even JSON-shaped, its
        text; secret-looking keys are blanked (it is evidence, kept as sent otherwise).  ``messages``:
        the destination's error messages (a list) or the schema's (a dict of field -> messages);
        ``attempts_log``: every attempt (dicts, as the ledger's record gives them, or AttemptEntry);
        ``fingerprints``: for a conflict, the existing and the new one (a list or a dict); ``detail``: a
        one-line summary; ``destination``: the retail API it was for."""
        ref = self._ref(destination, operation, key)  # a KeyError for an unknown destination: no letter
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
        body = stored_json(letter_body(event, messages, [_attempt_dict(a) for a in attempts_log or ()],
                                       fingerprints, detail), where=where, redact=True)
        args = [letter_id, operation, key, reason, f"{self._clock():.3f}", destination, body, ref,
                *terms(key, json.loads(body)["event"])]
        keys = [self.letter_key(letter_id), self.body_key(letter_id), self._open, self.key_of("all"),
                self.key_of("latest"), *self._facet_keys(operation, reason, destination), *self._value_keys(),
                self.key_of("terms"), reply_key(self._ns, request_id())]
        self._add(keys=keys, args=args)
        return letter_id

    def get(self, letter_id: str) -> DeadLetter | None:
        """One letter (open or closed), or None."""
        found = self.get_many([letter_id])
        return found[0] if found else None

    def latest_for(self, operation: str, key: str,
                   destination: str = DEFAULT_DESTINATION) -> DeadLetter | None:
        """The newest letter written for ``destination``'s delivery of this event (open or closed), or
        None."""
        ref = self._ref(destination, operation, key)
        letter_id = self._redis.hget(f"{self._ns}:dead:latest", ref)
        return self.get(text(letter_id)) if letter_id else None

    def get_many(self, letter_ids: Iterable[str]) -> list[DeadLetter]:
        """The letters with these ids, in that order (ids that name no letter are left out)."""
        ids = [text(i) for i in letter_ids]
        pipe = self._redis.pipeline(transaction=False)
        for letter_id in ids:
            pipe.hgetall(self.letter_key(letter_id))
            pipe.get(self.body_key(letter_id))
        replies = pipe.execute()
        return [DeadLetter.from_hash(raw, self._ref, body, letter_id)
                for letter_id, raw, body in zip(ids, replies[::2], replies[1::2]) if raw]

    def list(self, operation: str | None = None, since: float | None = None, grep: str | None = None,
             limit: int | None = None, *, include_closed: bool = False,
             destination: str | None = None) -> list[DeadLetter]:
        """Open letters (or all, with ``include_closed``), newest first, filtered by operation, destination,
        creation time (``since``, Unix seconds) and a case-insensitive text search.  (The search in
        ``worker.store.dead_letter_search`` does the filtering on the server; this is its simple form.)"""
        query = LetterQuery(operation=operation, destination=destination, since=since, text=grep,
                            status="any" if include_closed else "open")
        return search(self, query, limit=limit, count=False).letters

    def ensure_indexed(self, batch: int = 500) -> int:
        """Put letters written before the search indexes existed into them (once; later calls only read
        one key).  Returns how many it indexed."""
        done_key = self.key_of("indexed")
        if self._redis.get(done_key):
            return 0
        index = self._redis.register_script(scripts.INDEX)
        indexed, cursor = 0, 0
        while True:
            ids = [text(i) for i in self._redis.zrange(self.key_of("all"), cursor, cursor + batch - 1)]
            if not ids:
                break
            cursor += len(ids)
            for letter in self.get_many(ids):
                facet_keys = self._facet_keys(letter.operation, letter.reason, letter.destination)
                index(keys=[self._open, *facet_keys,
                            *self._value_keys(), self.key_of("terms"), reply_key(self._ns, request_id())],
                      args=[letter.letter_id, f"{letter.created_at:.3f}", letter.operation, letter.reason,
                            letter.destination, *letter.terms()])
                indexed += 1
        self._redis.set(done_key, "1")
        return indexed

    def drop_legacy_indexes(self) -> list[str]:
        """Delete the two hashes that copied every letter before issue 21 (``dead:facets``: its facets,
        ``dead:text``: its search text) — nothing reads them any more; the ones that existed.  The
        scheduler calls it at start (UNLINK: the server frees them in the background)."""
        names = [self.key_of("facets"), self.key_of("text")]
        return [name for name in names if self._redis.unlink(name)]

    @property
    def redis(self):
        """The client (the search runs its script on it)."""
        return self._redis

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

    def take(self, letter_id: str, *, actor: str, reason: str, audit: PendingEntry | None = None,
             job_item: str = "") -> DeadLetter | None:
        """Take an open letter to retry it: atomically off the open list and marked ``retried`` (kept,
        with who and why; ``audit``: the person's audit entry, appended in the same step; ``job_item``:
        the bulk job's item doing it, kept as ``closed_in``).  None if it is not open (someone else took
        or discarded it first)."""
        return self._close_letter(letter_id, "retried", actor, reason, audit, job_item)

    def discard(self, letter_id: str, *, actor: str, reason: str, audit: PendingEntry | None = None,
                job_item: str = "") -> DeadLetter | None:
        """Give up on an open letter: off the open list, marked ``discarded``, kept for the record (and
        ``audit``, ``job_item`` as for :meth:`take`).  None if it is not open."""
        return self._close_letter(letter_id, "discarded", actor, reason, audit, job_item)

    def closed_in(self, letter_id: str) -> str:
        """The bulk job item that closed the letter (``job <id> #<n>``), or ''."""
        return text(self._redis.hget(self.letter_key(letter_id), "closed_in") or "")

    def _close_letter(self, letter_id: str, status: str, actor: str, reason: str,
                      audit: PendingEntry | None, job_item: str) -> DeadLetter | None:
        if not actor:
            raise ValueError("a person's action on a dead letter needs the actor's name")
        # The facets never change once written, so reading them first is safe.
        raw = self._redis.hmget(self.letter_key(letter_id), ["operation", "reason", "destination"])
        if raw[0] is None:
            return None
        operation, reason_, destination = text(raw[0]), text(raw[1]), text(raw[2] or DEFAULT_DESTINATION)
        reply = self._close(keys=[self.letter_key(letter_id), self.body_key(letter_id), self._open,
                                  *self._facet_keys(operation, reason_, destination),
                                  *([audit.stream] if audit else []), reply_key(self._ns, request_id())],
                            args=[letter_id, status, f"{self._clock():.3f}", actor, reason or "", job_item,
                                  *(audit.args() if audit else [])])
        if not reply:
            return None
        flat, body = reply
        return DeadLetter.from_hash(dict(zip(flat[::2], flat[1::2])), self._ref, body or None, letter_id)

    def _purge_one(self, letter_id: str, letter: DeadLetter | None, cutoff: float) -> bool:
        """Run the purge script for one letter (``letter``: as read; None when its hash is gone: then only
        its leftover entries go)."""
        if letter is not None:
            operation, reason, destination, terms_ = (letter.operation, letter.reason, letter.destination,
                                                      letter.terms())
            ref = letter.ref
        else:  # its hash is gone: its facets are not known (it was closed, so in no facet set)
            operation, reason, destination = "", "", DEFAULT_DESTINATION
            terms_ = []
            ref = ""  # the script only unindexes a letter whose hash is gone
        keys = [self.letter_key(letter_id), self.body_key(letter_id), self._open, self.key_of("all"),
                self.key_of("latest"), *self._facet_keys(operation, reason, destination),
                self.key_of("terms"), reply_key(self._ns, request_id())]
        return bool(self._purge(keys=keys, args=[letter_id, repr(cutoff), ref, *terms_]))

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
                pipe.hgetall(self.letter_key(letter_id))
                pipe.get(self.body_key(letter_id))
            replies = pipe.execute()
            kept = 0
            for letter_id, raw, body in zip(ids, replies[::2], replies[1::2]):
                letter = DeadLetter.from_hash(raw, self._ref, body, letter_id) if raw else None
                closed = letter is not None and letter.status != "open" and (letter.closed_at or 0) < cutoff
                if closed and dry_run:
                    found.append(letter)
                elif not dry_run and (closed or letter is None):
                    if self._purge_one(letter_id, letter, cutoff) and letter is not None:
                        found.append(letter)
                        continue
                    kept += letter is not None
                else:
                    kept += 1
            offset += kept if not dry_run else len(ids)
