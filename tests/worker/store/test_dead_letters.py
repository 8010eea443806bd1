"""Dead letters: kept in full until a person acts; a retry or discard is taken by exactly one person."""
from __future__ import annotations

import json
import threading

import pytest

from tests.fixtures.clock import T0, Clock
from worker.destinations.table import delivery_ref
from worker.store.dead_letters import DeadLetters
from worker.store.records import AttemptEntry


def event(key: str = "TX-1", operation: str = "dispatch.create") -> dict:
    return {"operation": operation, "key": key, "fields": {"order_no": "FO1", "transaction_id": key},
            "occurred_at": "2024-05-01T10:00:00Z", "event_id": key}


ATTEMPTS = [
    {"attempt": 1, "at": T0 - 30, "outcome": "transient", "status": 503, "error_code": None,
     "messages": ["Service Unavailable"], "latency": 0.2},
    {"attempt": 2, "at": T0 - 10, "outcome": "permanent", "status": 422, "error_code": 410,
     "messages": ["Unknown artno 123-45"], "latency": 0.1},
]


@pytest.fixture
def client(store_client):
    return store_client


@pytest.fixture
def letters(client, clock):
    return DeadLetters(client, clock, delivery_ref=delivery_ref)


def test_a_letter_keeps_everything(letters):
    letter_id = letters.add("dispatch.create", "TX-1", event(), "permanent", ["Unknown artno 123-45"],
                            ATTEMPTS,
                            detail="Trademax refused it: 410")
    assert letter_id == "dl-1"
    letter = letters.get(letter_id)
    assert (letter.operation, letter.key, letter.reason, letter.status) == ("dispatch.create", "TX-1",
                                                                            "permanent", "open")
    assert letter.event == event()
    assert letter.messages == ["Unknown artno 123-45"]
    assert letter.attempts_log == ATTEMPTS
    assert letter.detail == "Trademax refused it: 410"
    assert letter.created_at == T0
    shown = json.loads(json.dumps(letter.to_dict()))
    assert shown["id"] == "dl-1" and shown["attempts"][1]["status"] == 422
    assert shown["created_at"] == "2024-05-01T07:53:20.000Z"


def test_ids_are_short_and_in_order(letters):
    ids = [letters.add("stock.adjust", f"adj-{n}", event(f"adj-{n}", "stock.adjust"), "exhausted", [], [])
           for n in range(3)]
    assert ids == ["dl-1", "dl-2", "dl-3"]


def test_schema_messages_conflict_fingerprints_and_attempt_entries(letters):
    invalid = letters.add("receipt.create", "(no key)", "not even json", "invalid",
                          {"products": ["Missing data for required field."]}, [])
    assert letters.get(invalid).event == "not even json"
    assert letters.get(invalid).messages == {"products": ["Missing data for required field."]}
    conflict = letters.add("dispatch.create", "TX-1", event(), "conflict", "same key, different payload",
                           [], fingerprints=["a" * 64, "b" * 64])
    assert letters.get(conflict).fingerprints == ["a" * 64, "b" * 64]
    assert letters.get(conflict).messages == ["same key, different payload"]
    logged = letters.add("dispatch.create", "TX-2", event("TX-2"), "exhausted", [],
                         [AttemptEntry(attempt=1, outcome="transient", status=503, at=T0)])
    assert letters.get(logged).attempts_log[0]["status"] == 503


def test_secret_looking_keys_in_raw_input_are_blanked(letters):
    letter_id = letters.add("dispatch.create", "TX-1", {**event(), "signature": "deadbeef"}, "invalid",
                            {"signature": ["Unknown field."]}, [])
    stored = letters.get(letter_id)
    assert stored.event["signature"] == "[redacted]"
    assert "deadbeef" not in json.dumps(stored.to_dict())


def test_list_newest_first_with_filters(letters, clock):
    letters.add("dispatch.create", "TX-1", event("TX-1"), "permanent", ["Unknown artno 123-45"], [])
    clock.now += 60
    letters.add("stock.adjust", "adj-1", event("adj-1", "stock.adjust"), "exhausted", ["503"], [])
    clock.now += 60
    letters.add("dispatch.create", "TX-2", event("TX-2"), "conflict", ["different payload"], [])
    assert [x.letter_id for x in letters.list()] == ["dl-3", "dl-2", "dl-1"]
    assert [x.letter_id for x in letters.list(operation="dispatch.create")] == ["dl-3", "dl-1"]
    assert [x.letter_id for x in letters.list(since=T0 + 30)] == ["dl-3", "dl-2"]
    assert [x.letter_id for x in letters.list(grep="ARTNO 123")] == ["dl-1"]
    assert [x.letter_id for x in letters.list(limit=2)] == ["dl-3", "dl-2"]
    assert letters.list(operation="receipt.create") == []


def test_list_pages_through_many_letters(letters, clock):
    for n in range(450):
        clock.now += 0.01
        letters.add("stock.adjust", f"adj-{n}", {"n": n}, "exhausted", [], [])
    assert len(letters.list()) == 450
    assert [x.key for x in letters.list(grep="adj-7", limit=3)] == ["adj-79", "adj-78", "adj-77"]


def test_count_and_oldest_age(letters, clock):
    assert letters.count() == 0 and letters.oldest_age() is None
    letters.add("dispatch.create", "TX-1", event(), "permanent", [], [])
    clock.now += 90
    letters.add("dispatch.create", "TX-2", event("TX-2"), "permanent", [], [])
    assert letters.count() == 2
    assert letters.oldest_age() == pytest.approx(90)
    assert letters.oldest_age(now=T0 + 3600) == pytest.approx(3600)


def test_take_marks_retried_and_keeps_the_letter(letters, clock):
    letter_id = letters.add("dispatch.create", "TX-1", event(), "permanent", [], ATTEMPTS)
    clock.now += 10
    taken = letters.take(letter_id, actor="alice", reason="artno fixed in Trademax")
    assert taken.status == "retried" and taken.closed_by == "alice" and taken.closed_at == T0 + 10
    assert taken.close_reason == "artno fixed in Trademax" and taken.event == event()
    assert letters.take(letter_id, actor="bob", reason="me too") is None
    assert letters.discard(letter_id, actor="bob", reason="junk") is None
    assert letters.count() == 0 and letters.list() == []
    assert [x.letter_id for x in letters.list(include_closed=True)] == [letter_id]
    assert letters.get(letter_id).status == "retried"


def test_discard_keeps_an_audit_trail(letters):
    letter_id = letters.add("dispatch.create", "TX-1", event(), "permanent", [], [])
    discarded = letters.discard(letter_id, actor="carol", reason="order cancelled")
    assert (discarded.status, discarded.closed_by, discarded.close_reason) == ("discarded", "carol",
                                                                               "order cancelled")
    assert letters.get(letter_id).status == "discarded"
    assert letters.take("dl-404", actor="carol", reason="x") is None
    with pytest.raises(ValueError):
        letters.discard(letter_id, actor="", reason="anonymous")


def test_latest_letter_of_an_event(letters):
    assert letters.latest_for("dispatch.create", "TX-1") is None
    letters.add("dispatch.create", "TX-1", event(), "exhausted", [], [])
    second = letters.add("dispatch.create", "TX-1", event(), "permanent", [], [])
    assert letters.latest_for("dispatch.create", "TX-1").letter_id == second


def test_nothing_expires(letters, client):
    letter_id = letters.add("dispatch.create", "TX-1", event(), "permanent", [], [])
    letters.take(letter_id, actor="a", reason="r")
    letters.add("dispatch.create", "TX-2", event("TX-2"), "permanent", [], [])
    assert all(client.ttl(key) == -1 for key in client.keys("wms:dead:*"))


def test_two_people_retrying_one_letter_exactly_one_wins(redis_server):
    """Two people press retry on the same 100 letters at once, on a real valkey-server."""
    letters = DeadLetters(redis_server.client(), Clock(), delivery_ref=delivery_ref)
    ids = [letters.add("stock.adjust", f"adj-{n}", {"n": n}, "exhausted", [], []) for n in range(100)]
    got: dict[str, list[str]] = {"alice": [], "bob": []}
    start = threading.Barrier(2)

    def retry_all(actor: str) -> None:
        mine = DeadLetters(redis_server.client(), Clock(), delivery_ref=delivery_ref)
        start.wait()
        for letter_id in ids:
            if mine.take(letter_id, actor=actor, reason="retry") is not None:
                got[actor].append(letter_id)

    threads = [threading.Thread(target=retry_all, args=(actor,)) for actor in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got["alice"] + got["bob"], key=lambda i: int(i[3:])) == ids
    assert not set(got["alice"]) & set(got["bob"])
    assert all(letters.get(i).closed_by == ("alice" if i in got["alice"] else "bob") for i in ids)


def test_letters_survive_a_redis_restart(redis_server):
    letters = DeadLetters(redis_server.client(), Clock(), delivery_ref=delivery_ref)
    letter_id = letters.add("dispatch.create", "TX-1", event(), "permanent", ["nope"], ATTEMPTS)
    redis_server.restart()
    assert letters.get(letter_id).attempts_log == ATTEMPTS
    assert letters.count() == 1
    assert letters.add("dispatch.create", "TX-2", event("TX-2"), "permanent", [], []) == "dl-2"


def test_the_store_names_a_delivery_with_the_function_it_is_handed(client, clock):
    """The store knows no destination: the ref that keys a delivery's newest letter comes from the caller
    (the table's ``delivery_ref`` in the relay), and so does the refusal of an unknown destination."""
    named = []

    def ref(destination: str, operation: str, key: str) -> str:
        if destination not in ("trademax", "kaching"):
            raise KeyError(destination)
        named.append((destination, operation, key))
        return f"<{destination}|{operation}|{key}>"

    letters = DeadLetters(client, clock, delivery_ref=ref)
    letter_id = letters.add("stock.adjust", "E-1", {}, "permanent", ["refused"], destination="kaching")
    assert named[0] == ("kaching", "stock.adjust", "E-1")
    assert letters.get(letter_id).ref == "<kaching|stock.adjust|E-1>"
    assert letters.latest_for("stock.adjust", "E-1", "kaching").letter_id == letter_id
    assert letters.latest_for("stock.adjust", "E-1") is None  # Trademax's delivery has no letter
    with pytest.raises(KeyError):
        letters.add("stock.adjust", "E-2", {}, "permanent", ["refused"], destination="nowhere")
    assert letters.add("stock.adjust", "E-3", {}, "permanent", ["refused"]) == "dl-2"  # no id spent on it


def test_the_tables_refs_name_trademax_without_a_prefix(letters):
    trademax = letters.get(letters.add("receipt.create", "R-1", {}, "permanent", ["refused"]))
    kaching = letters.get(letters.add("stock.adjust", "E-1", {}, "permanent", ["refused"],
                                      destination="kaching"))
    assert (trademax.destination, trademax.ref) == ("trademax", "receipt.create:R-1")
    assert (kaching.destination, kaching.ref) == ("kaching", "kaching/stock.adjust:E-1")
