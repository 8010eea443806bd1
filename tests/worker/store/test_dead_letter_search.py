"""The dead-letter search finds exactly the letters a person's filters describe — the same ones a plain
Python filter over every letter finds — newest first, a page at a time, with the right total; closing a
letter takes it out of the open views; letters written before the indexes existed are indexed once."""
from __future__ import annotations

import itertools
import random

import pytest

from tests.fixtures.clock import T0
from worker.store import dead_letter_search
from worker.store.dead_letter_search import LetterQuery, all_matching_ids, search
from worker.destinations.table import delivery_ref
from worker.store.dead_letters import DeadLetters

OPERATIONS = ("stock.adjust", "receipt.create", "dispatch.create")
REASONS = ("permanent", "exhausted", "invalid")
DESTINATIONS = ("trademax", "kaching")


@pytest.fixture
def letters(store_client, clock):
    return DeadLetters(store_client, clock, delivery_ref=delivery_ref)


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
        if name.startswith(("wms:dead:open:", "wms:dead:facets", "wms:dead:text", "wms:dead:indexed",
                            "wms:dead:terms", "wms:dead:values:")):
            store_client.delete(name)
    fresh = DeadLetters(store_client, clock, delivery_ref=delivery_ref)
    assert search(fresh, LetterQuery(operation="stock.adjust", text="art-1")).total == len(expected)
    assert fresh.ensure_indexed() == 0  # once
    assert [x.letter_id for x in search(fresh, LetterQuery(status="retried")).letters] == ["dl-2"]
    assert sum(fresh.facet_counts("operation").values()) == 11
    assert set(fresh.facet_counts("destination")) <= set(DESTINATIONS)


def test_the_cli_list_is_the_search(letters, clock):
    fill(letters, clock, n=10)
    assert [x.letter_id for x in letters.list(grep="IO1003")] == ["dl-4"]
    assert len(letters.list(limit=3)) == 3


def test_an_identifier_is_a_lookup_that_finds_exactly_the_letters_it_names(letters, clock):
    fill(letters, clock, n=40)
    letters.add("receipt.create", "R-9", {"products": [{"artno": "ART-3"}], "order_no": "X"}, "permanent",
                ["nested artno"])
    from worker.store.dead_letter_search import has_identifier

    assert has_identifier(letters, " art-3 ") and has_identifier(letters, "K-7")
    assert not has_identifier(letters, "art") and not has_identifier(letters, "")
    everyone = [x for x in letters.get_many(f"dl-{n}" for n in range(1, 60))
                if "art-3" in (x.event.get("fields", {}).get("artno", "").lower(),
                               *(p.get("artno", "").lower() for p in x.event.get("products", [])))]
    letters.take(everyone[0].letter_id, actor="a", reason="b")
    found = search(letters, LetterQuery(identifier="ART-3"), limit=100)
    expected = sorted((x for x in everyone[1:]), key=lambda x: -x.created_at)
    assert [x.letter_id for x in found.letters] == [x.letter_id for x in expected]
    assert found.total == len(expected) > 2
    only_stock = search(letters, LetterQuery(identifier="art-3", operation="stock.adjust", status="any"))
    assert {x.operation for x in only_stock.letters} <= {"stock.adjust"}
    assert search(letters, LetterQuery(identifier="io1005")).total == 1


def test_a_bounded_text_walk_pages_on_from_where_it_stopped(letters, clock, monkeypatch):
    monkeypatch.setattr(dead_letter_search, "CHUNK", 5)
    fill(letters, clock, n=60)
    query = LetterQuery(text="åre")  # every letter
    expected = reference(letters, query)
    seen, start, walks = [], 0, 0
    while start is not None:
        page = dead_letter_search.search_walk(letters, query, start=start, limit=7, scan_limit=12)
        assert len(page.letters) <= 7 and page.candidates == 60
        seen += [x.letter_id for x in page.letters]
        start, walks = page.next_from, walks + 1
    assert seen == expected and walks == 9
    rare = dead_letter_search.search_walk(letters, LetterQuery(text="io1000"), scan_limit=25)
    assert rare.letters == [] and rare.total is None and rare.next_from == 25 and rare.searched == 25
    whole = dead_letter_search.search_walk(letters, LetterQuery(text="io1000"), scan_limit=100)
    assert [x.letter_id for x in whole.letters] == ["dl-1"] and whole.total == 1 and whole.next_from is None
