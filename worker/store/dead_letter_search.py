"""Finding dead letters among 100,000: filters, text search and pages, worked out on the Redis server.

The store (``worker.store.dead_letters``) keeps, beside each letter, its facets (operation, reason,
destination, status), its lower-cased search text and the identifiers it is found by — what they hold of a
letter is written here too (:func:`facets`, :func:`search_text`, :func:`terms`), beside the reader that
looks in them — and one sorted set of open letters per facet value.  A query:

- with at most one facet and no text (the usual page): the count is one ``ZCOUNT`` and the page one
  ``ZREVRANGEBYSCORE ... LIMIT`` on that facet's set (or the open set) — no letter is read but the page's;
- with an ``identifier`` (a key, order_no, artno, transaction_id or event_id, exactly): the letters the
  terms index names for it are checked on the server (facets, status, time) — a lookup, however many
  letters there are;
- otherwise the smallest candidate set is walked newest first, ``CHUNK`` ids per script call (so Redis is
  never held for long), the script checking each id's facets and text on the server and sending back only
  the ids of the requested page and the number that matched.  A walk costs ~2.5 µs a letter on the server
  (a text search of 100,000 letters: ~0.3-0.6 s), so a caller that must answer quickly (the desk) passes
  ``scan_limit``: the walk stops there, and the page says how far it got and where to go on from.

Letters come newest first.  ``since``/``until`` bound the creation time (Unix seconds).  The two scripts
(the walk and the identifier lookup) are in ``worker.store.dead_letter_scripts``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from worker.encoding import text as as_text
from worker.store.dead_letter_scripts import BY_TERM, PAGE

STATUSES = ("open", "retried", "discarded", "any")
CHUNK = 2000
# The event fields whose values a person searches for exactly (at any depth of the event).
TERM_FIELDS = frozenset({"transaction_id", "order_no", "artno", "event_id"})
MAX_TERMS = 64


# -- the writer: what the indexes hold of one letter (``worker.store.dead_letters`` writes it with the
# letter, in one script) -------------------------------------------------------------------------------

def term(value: Any) -> str:
    """An identifier as the terms index keeps it and as a search for it is looked up."""
    return " ".join(str(value).split()).lower()[:100]


def search_text(letter_id: str, operation: str, key: str, reason: str, detail: str | None, messages: Any,
                event: Any) -> str:
    return " ".join([letter_id, operation, key, reason, detail or "",
                     json.dumps(messages, ensure_ascii=False), json.dumps(event, ensure_ascii=False)]).lower()


def terms(key: str, event: Any) -> list[str]:
    """The identifiers a letter is found by: its key and the event's TERM_FIELDS values, at any depth."""
    found = {term(key): None} if key and not key.startswith("(") else {}
    pending = [event]
    while pending and len(found) < MAX_TERMS:
        item = pending.pop()
        if isinstance(item, Mapping):
            for name, value in item.items():
                if name in TERM_FIELDS and isinstance(value, (str, int)) and not isinstance(value, bool) \
                        and str(value).strip():
                    found.setdefault(term(value), None)
                elif isinstance(value, (Mapping, list)):
                    pending.append(value)
        elif isinstance(item, list):
            pending.extend(item)
    return list(found)[:MAX_TERMS]


def facets_entry(operation: str, reason: str, destination: str, status: str) -> str:
    """The facets entry of a letter (tabs never occur in these names)."""
    return "\t".join(part.replace("\t", " ") for part in (operation, reason, destination, status))


# -- the reader ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LetterQuery:
    """Which letters: every field optional.  ``text`` is a case-insensitive substring of the letter's id,
    operation, key, reason, detail, messages or event (so an order_no, artno or transaction_id finds it);
    ``status``: open (the default: waiting for a person), retried, discarded or any."""

    operation: str | None = None
    reason: str | None = None
    destination: str | None = None
    since: float | None = None
    until: float | None = None
    text: str | None = None
    status: str = "open"
    identifier: str | None = None  # a key, order_no, artno, transaction_id or event_id, exactly (any case)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")

    @property
    def needle(self) -> str:
        return (self.text or "").strip().lower()

    def facet_values(self) -> dict[str, str]:
        return {name: value for name, value in (("operation", self.operation), ("reason", self.reason),
                                                ("destination", self.destination)) if value}


@dataclass(frozen=True)
class LetterPage:
    """One page of letters; ``total`` counts every match (None when the caller did not ask, or a walk
    stopped at its ``scan_limit``: then ``searched`` letters were looked at and ``next_from`` is where a
    further search goes on, None when nothing is left)."""

    letters: list
    total: int | None
    offset: int
    limit: int | None
    searched: int | None = None
    candidates: int | None = None
    next_from: int | None = None


def _bounds(query: LetterQuery) -> tuple[str, str]:
    high = "+inf" if query.until is None else repr(float(query.until))
    low = "-inf" if query.since is None else repr(float(query.since))
    return high, low


def _walked_set(letters, query: LetterQuery) -> tuple[str, bool]:
    """The smallest sorted set that holds every match, and whether its members all match already (no
    facet, status or text left to check)."""
    facets = query.facet_values()
    if query.status != "open":
        return letters.key_of("all"), False
    candidates = [letters.key_of("open")] + [letters.facet_key(k, v) for k, v in facets.items()]
    if len(candidates) == 1:
        return candidates[0], not query.needle
    pipe = letters.redis.pipeline(transaction=False)
    for key in candidates[1:]:
        pipe.zcard(key)
    sizes = pipe.execute()
    smallest = min(range(len(sizes)), key=lambda i: int(sizes[i]))
    return candidates[1 + smallest], len(facets) == 1 and not query.needle


def _by_identifier(letters, query: LetterQuery) -> list[str]:
    facets = query.facet_values()
    status = "" if query.status == "any" else query.status
    reply = letters.redis.register_script(BY_TERM)(
        keys=[letters.key_of("terms"), letters.key_of("facets"), letters.key_of("all")],
        args=[term(query.identifier), repr(-1.0 if query.since is None else float(query.since)),
              repr(1e300 if query.until is None else float(query.until)), facets.get("operation", ""),
              facets.get("reason", ""), facets.get("destination", ""), status])
    found = [(as_text(reply[i]), float(reply[i + 1])) for i in range(0, len(reply), 2)]
    return [letter_id for letter_id, _ in sorted(found, key=lambda pair: -pair[1])]


def has_identifier(letters, needle: str) -> bool:
    """Whether some letter (open or closed) is named by this key, order_no, artno, transaction_id or
    event_id."""
    letters.ensure_indexed()
    return bool(needle.strip()) and bool(letters.redis.hexists(letters.key_of("terms"), term(needle)))


def matching_ids(letters, query: LetterQuery, *, offset: int = 0, limit: int | None = None,
                 count: bool = True) -> tuple[list[str], int | None]:
    """The ids of the matching letters, newest first, from ``offset`` (at most ``limit``), and how many
    match in all (None if ``count`` is False and the walk stopped early)."""
    letters.ensure_indexed()
    if query.identifier:  # (a text, if any, is not looked at: the identifier names the letters)
        ids = _by_identifier(letters, query)
        return ids[offset:None if limit is None else offset + limit], len(ids)
    walked, exact = _walked_set(letters, query)
    high, low = _bounds(query)
    r = letters.redis
    if exact:
        total = int(r.zcount(walked, low, high)) if count else None
        num = -1 if limit is None else limit
        ids = r.zrevrangebyscore(walked, high, low, start=offset, num=num) if num != 0 else []
        return [as_text(i) for i in ids], total
    script = r.register_script(PAGE)
    facets = query.facet_values()
    status = "" if query.status in ("any", "open") else query.status
    ids: list[str] = []
    skip, want, matched, start = offset, (limit if limit is not None else 1 << 62), 0, 0
    while True:
        reply = script(keys=[walked, letters.key_of("facets"), letters.key_of("text")],
                       args=[high, low, start, CHUNK, facets.get("operation", ""), facets.get("reason", ""),
                             facets.get("destination", ""), status, query.needle, skip, want])
        walked_now, matched_now = int(reply[0]), int(reply[1])
        found = [as_text(i) for i in reply[2:]]
        ids += found
        matched += matched_now
        skip = max(0, skip - matched_now)
        want -= len(found)
        start += walked_now
        if walked_now < CHUNK or (want <= 0 and not count):
            break
    return ids, (matched if count or walked_now < CHUNK else None)


def search(letters, query: LetterQuery, *, offset: int = 0, limit: int | None = 50,
           count: bool = True) -> LetterPage:
    """One page of matching letters (read in one round trip) and, with ``count``, the number of matches."""
    ids, total = matching_ids(letters, query, offset=offset, limit=limit, count=count)
    return LetterPage(letters.get_many(ids), total, offset, limit)


def search_walk(letters, query: LetterQuery, *, start: int = 0, limit: int = 50,
                scan_limit: int = 20_000) -> LetterPage:
    """For a text search that must answer quickly: walk at most ``scan_limit`` candidates from position
    ``start`` (newest first), returning the first ``limit`` matches found there.  ``next_from`` says where
    the next page's walk starts (None: nothing left); ``total`` is known only when this one walk covered
    every candidate."""
    letters.ensure_indexed()
    walked_set, _ = _walked_set(letters, query)
    high, low = _bounds(query)
    r = letters.redis
    script = r.register_script(PAGE)
    facets = query.facet_values()
    status = "" if query.status in ("any", "open") else query.status
    candidates = int(r.zcount(walked_set, low, high))
    ids: list[str] = []
    position = start
    while position < candidates and position - start < scan_limit and len(ids) < limit:
        chunk = min(CHUNK, start + scan_limit - position)
        reply = script(keys=[walked_set, letters.key_of("facets"), letters.key_of("text")],
                       args=[high, low, position, chunk, facets.get("operation", ""),
                             facets.get("reason", ""), facets.get("destination", ""), status, query.needle, 0,
                             limit - len(ids)])
        walked_now, matched_now = int(reply[0]), int(reply[1])
        found = [as_text(i) for i in reply[2:]]
        if walked_now == 0:
            break
        if matched_now > len(found) or len(ids) + len(found) >= limit:
            # The page filled inside this chunk: go on right after its last letter next time.
            last = found[-1] if found else None
            page_ids = r.zrevrangebyscore(walked_set, high, low, start=position, num=walked_now)
            cut = [as_text(i) for i in page_ids].index(last) + 1 if last else walked_now
            ids += found
            position += cut
            break
        ids += found
        position += walked_now
    whole = start == 0 and position >= candidates
    return LetterPage(letters.get_many(ids), len(ids) if whole else None, start, limit, searched=position,
                      candidates=candidates, next_from=position if position < candidates else None)


def all_matching_ids(letters, query: LetterQuery) -> list[str]:
    """Every matching id, newest first (for "all matching" actions; a letter closed meanwhile is still
    listed: the action on it says so)."""
    return matching_ids(letters, query, count=False)[0]
