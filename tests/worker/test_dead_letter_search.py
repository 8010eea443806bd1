"""The dead-letter search finds exactly the letters a person's filters describe — the same ones a plain
Python filter over every letter finds — newest first, a page at a time, with the right total; closing a
letter takes it out of the open views; letters written before the indexes existed are indexed once."""
from __future__ import annotations

import itertools
import random

import pytest

from worker import dead_letter_search
from worker.dead_letter_search import LetterQuery, all_matching_ids, search
from worker.dead_letters import DeadLetters

T0 = 1_714_550_000.0
OPERATIONS = ("stock.adjust", "receipt.create", "dispatch.create")
REASONS = ("permanent", "exhausted", "invalid")
DESTINATIONS = ("trademax", "kaching")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def letters(store_client, clock):
    return DeadLetters(store_client, clock)


def fill(letters, clock, n: int = 60, seed: int = 7) -> None:
    rng = random.Random(seed)
    for i in range(n):
        clock.now = T0 + i * 60
        op, reason, dest = rng.choice(OPERATIONS), rng.choice(REASONS), rng.choice(DESTINATIONS)
        event = {"fields": {"order_no": f"IO{1000 + i}", "artno": f"ART-{i % 7}", "note": "Åre lager"}}
        letters.add(op, f"K-{i}", event, reason, [f"Unknown artno ART-{i % 7}"], destination=dest)


def reference(letters, query: LetterQuery) -> list[str]:
    everything = letters.get_many(f"dl-{n}" for n in range(1, 500))
    kept = [letter for letter in everything
            if (query.status == "any" or letter.status == query.status)
            and (not query.operation or letter.operation == query.operation)
            and (not query.reason or letter.reason == query.reason)
            and (not query.destination or letter.destination == query.destination)
            and (query.since is None or letter.created_at >= query.since)
            and (query.until is None or letter.created_at <= query.until)
            and (not query.text or letter.matches(query.text))]
    return [letter.letter_id for letter in sorted(kept, key=lambda x: -x.created_at)]


QUERIES = [
    LetterQuery(),
    LetterQuery(operation="stock.adjust"),
    LetterQuery(reason="invalid", destination="kaching"),
    LetterQuery(operation="receipt.create", reason="permanent", destination="trademax"),
    LetterQuery(text="io1012"),
    LetterQuery(text="ART-3", operation="dispatch.create"),
    LetterQuery(text="åre"),  # non-ASCII text, any case
    LetterQuery(since=T0 + 10 * 60, until=T0 + 40 * 60),
    LetterQuery(since=T0 + 30 * 60, reason="exhausted"),
    LetterQuery(status="any"),
    LetterQuery(status="retried"),
    LetterQuery(status="discarded", operation="stock.adjust"),
    LetterQuery(text="no such thing"),
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: repr(q)[12:60])
def test_a_query_finds_what_a_plain_filter_finds_in_pages(letters, clock, query, monkeypatch):
    monkeypatch.setattr(dead_letter_search, "CHUNK", 7)  # many script calls per walk
    fill(letters, clock)
    for n in (3, 9, 14, 30):
        letters.take(f"dl-{n}", actor="alice", reason="fixed")
    for n in (4, 22):
        letters.discard(f"dl-{n}", actor="bob", reason="obsolete")
    expected = reference(letters, query)
    pages = []
    for offset in itertools.count(0, 8):
        page = search(letters, query, offset=offset, limit=8)
        assert page.total == len(expected)
        if not page.letters:
            break
        pages += [letter.letter_id for letter in page.letters]
    assert pages == expected
    assert all_matching_ids(letters, query) == expected


def test_closing_a_letter_takes_it_out_of_the_open_facets(letters, clock):
    fill(letters, clock, n=5)
    first = letters.get("dl-1")
    before = search(letters, LetterQuery(operation=first.operation)).total
    letters.take("dl-1", actor="alice", reason="fixed")
    assert search(letters, LetterQuery(operation=first.operation)).total == before - 1
    retried = search(letters, LetterQuery(status="retried", operation=first.operation))
    assert [letter.letter_id for letter in retried.letters] == ["dl-1"]
    assert retried.letters[0].closed_by == "alice"


def test_the_destination_defaults_to_trademax(letters):
    letters.add("stock.adjust", "K", {"fields": {}}, "permanent", ["no"])
    assert letters.get("dl-1").destination == "trademax"
    assert search(letters, LetterQuery(destination="trademax")).total == 1
    assert letters.facet_counts("destination") == {"trademax": 1}
    letters.discard("dl-1", actor="a", reason="b")
    assert letters.facet_counts("reason") == {"permanent": 0}


def test_letters_written_before_the_indexes_are_indexed_once(letters, store_client, clock):
    fill(letters, clock, n=12)
    letters.take("dl-2", actor="alice", reason="fixed")
    expected = reference(letters, LetterQuery(operation="stock.adjust", text="art-1"))
    # What an earlier version left: the letters, the open/all sets, no indexes.
    for key in store_client.scan_iter("wms:dead:*"):
        name = key.decode() if isinstance(key, bytes) else key
        if name.startswith(("wms:dead:open:", "wms:dead:facets", "wms:dead:text", "wms:dead:indexed")):
            store_client.delete(name)
    fresh = DeadLetters(store_client, clock)
    assert search(fresh, LetterQuery(operation="stock.adjust", text="art-1")).total == len(expected)
    assert fresh.ensure_indexed() == 0  # once
    assert [x.letter_id for x in search(fresh, LetterQuery(status="retried")).letters] == ["dl-2"]
    assert sum(fresh.facet_counts("operation").values()) == 11
    assert set(fresh.facet_counts("destination")) <= set(DESTINATIONS)


def test_the_cli_list_is_the_search(letters, clock):
    fill(letters, clock, n=10)
    assert [x.letter_id for x in letters.list(grep="IO1003")] == ["dl-4"]
    assert len(letters.list(limit=3)) == 3
