"""Finding dead letters among 100,000: filters, text search and pages, worked out on the Redis server.

The store (``worker.store.dead_letters``) keeps, beside each letter, indexes of ids only: one sorted set of
open letters per facet value (operation, reason, destination) and the identifiers each letter is found by
(what the terms index holds of a letter is written here too: :func:`terms`, beside the reader that looks in
it).  A query:

- with at most one facet and no text (the usual page): the count is one ``ZCOUNT`` and the page one
  ``ZREVRANGEBYSCORE ... LIMIT`` on that facet's set (or the open set) — no letter is read but the page's;
- with an ``identifier`` (a key, order_no, artno, transaction_id or event_id, exactly): the letters the
  terms index names for it are checked (facets, status, time) in one round trip — a lookup, however many
  letters there are;
- otherwise the smallest candidate set is walked newest first, ``CHUNK`` ids per script call (so Redis is
  never held for long), the script checking each letter's facets and text on the server (it reads the
  letter itself: the indexes keep no copy of it) and sending back only the ids of the requested page and
  the number that matched.  A caller that must answer quickly (the desk) passes ``scan_limit``: the walk
  stops there, and the page says how far it got and where to go on from.

Letters come newest first.  ``since``/``until`` bound the creation time (Unix seconds).  The walk's script
is in ``worker.store.dead_letter_scripts``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from worker.encoding import stored_json, text as as_text
from worker.store.dead_letter_scripts import DEFAULT_DESTINATION, PAGE

STATUSES = ("open", "retried", "discarded", "any")
CHUNK = 2000
# The event fields whose values a person searches for exactly (at any depth of the event).
TERM_FIELDS = frozenset({"transaction_id", "order_no", "artno", "event_id"})
MAX_TERMS = 64


# -- the writer: what the terms index holds of one letter (``worker.store.dead_letters`` writes it with
# the letter, in one script) ------------------------------------------------------------------------------

def term(value: Any) -> str:
    """An identifier as the terms index keeps it and as a search for it is looked up."""
    return " ".join(str(value).split()).lower()[:100]


def search_text(letter_id: str, operation: str, key: str, reason: str, body: Any) -> str:
    """What a text search looks in (the walk's script reads the same from the letter): id, operation, key,
    reason and the letter's body (event, messages, attempts, detail), lower-cased."""
    return " ".join([letter_id, operation, key, reason, stored_json(body)]).lower()


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


def _facets_match(raw: list, query: LetterQuery, status: str) -> bool:
    """A letter's (operation, reason, destination, status) as HMGET read them, against the query."""
    if raw[0] is None:
        return False
    operation, reason, destination, found_status = (as_text(v) if v is not None else None for v in raw)
    facets = query.facet_values()
    return (facets.get("operation", operation) == operation and facets.get("reason", reason) == reason
            and facets.get("destination", destination or DEFAULT_DESTINATION)
            == (destination or DEFAULT_DESTINATION)
            and status in ("", found_status or "open"))


def _by_identifier(letters, query: LetterQuery) -> list[str]:
    listed = letters.redis.hget(letters.key_of("terms"), term(query.identifier))
    ids = list(dict.fromkeys(as_text(listed).split())) if listed else []
    pipe = letters.redis.pipeline(transaction=False)
    for letter_id in ids:
        pipe.hmget(letters.letter_key(letter_id), ["operation", "reason", "destination", "status"])
        pipe.zscore(letters.key_of("all"), letter_id)
    replies = pipe.execute()
    status = "" if query.status == "any" else query.status
    low = -1.0 if query.since is None else float(query.since)
    high = 1e300 if query.until is None else float(query.until)
    found = [(letter_id, float(score)) for letter_id, raw, score in zip(ids, replies[::2], replies[1::2])
             if score is not None and low <= float(score) <= high and _facets_match(raw, query, status)]
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
    status = "" if query.status in ("any", "open") else query.status
    ids: list[str] = []
    skip, want, matched, start = offset, (limit if limit is not None else 1 << 62), 0, 0
    while True:
        walked_ids, matched_now, found = _walk(letters, walked, high, low, start, CHUNK, query, status, skip,
                                               want)
        walked_now = len(walked_ids)
        ids += found
        matched += matched_now
        skip = max(0, skip - matched_now)
        want -= len(found)
        start += walked_now
        if walked_now < CHUNK or (want <= 0 and not count):
            break
    return ids, (matched if count or walked_now < CHUNK else None)


def _walk(letters, walked: str, high: str, low: str, start: int, chunk: int, query: LetterQuery, status: str,
          skip: int, want: int) -> tuple[list[str], int, list[str]]:
    """One chunk of the walk: the ids read from ``walked`` (from position ``start``), how many of them
    match, and the matches numbered ``skip`` .. ``skip + want - 1`` among them."""
    r = letters.redis
    ids = [as_text(i) for i in r.zrevrangebyscore(walked, high, low, start=start, num=chunk)]
    if not ids:
        return [], 0, []
    facets = query.facet_values()
    reply = r.register_script(PAGE)(
        keys=[*map(letters.letter_key, ids), *map(letters.body_key, ids)],
        args=[facets.get("operation", ""), facets.get("reason", ""), facets.get("destination", ""), status,
              query.needle, skip, want, DEFAULT_DESTINATION, *ids])
    return ids, int(reply[0]), [as_text(i) for i in reply[1:]]


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
    status = "" if query.status in ("any", "open") else query.status
    candidates = int(r.zcount(walked_set, low, high))
    ids: list[str] = []
    position = start
    while position < candidates and position - start < scan_limit and len(ids) < limit:
        chunk = min(CHUNK, start + scan_limit - position)
        walked_ids, matched_now, found = _walk(letters, walked_set, high, low, position, chunk, query,
                                               status, 0, limit - len(ids))
        if not walked_ids:
            break
        if matched_now > len(found) or len(ids) + len(found) >= limit:
            # The page filled inside this chunk: go on right after its last letter next time.
            last = found[-1] if found else None
            cut = walked_ids.index(last) + 1 if last else len(walked_ids)
            ids += found
            position += cut
            break
        ids += found
        position += len(walked_ids)
    whole = start == 0 and position >= candidates
    return LetterPage(letters.get_many(ids), len(ids) if whole else None, start, limit, searched=position,
                      candidates=candidates, next_from=position if position < candidates else None)


def all_matching_ids(letters, query: LetterQuery) -> list[str]:
    """Every matching id, newest first (for "all matching" actions; a letter closed meanwhile is still
    listed: the action on it says so)."""
    return matching_ids(letters, query, count=False)[0]
