"""The one door (worker.delivery.admission): every event ends fully admitted (in the ledger and queued, in
one store call) or not at all — also when the store fails, or runs an admission only after the door
stopped waiting for it — and the answer says which is which.

fakeredis stands in for the store; what the door queued is read back from its lists."""
from __future__ import annotations

import json
from pathlib import Path

import fakeredis
import pytest
import redis

from tests.fixtures.queues import queued_messages
from worker.delivery.admission import read_events, take_in, take_in_all
from worker.delivery.relay import build_relay
from worker.settings import Settings
from worker.store.ledger import LateAdmission

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def example(operation: str, **changes) -> dict:
    return {**json.loads((EXAMPLES / f"{operation}.json").read_text()), **changes}


@pytest.fixture
def server():
    return fakeredis.FakeServer()


@pytest.fixture
def store(server):
    return fakeredis.FakeRedis(server=server, decode_responses=True)


@pytest.fixture
def relay(store):
    return build_relay(Settings(), redis_client=store, sends=False, clock=lambda: 1_700_000_000.0)


def adjustments(count: int) -> list[dict]:
    return [example("stock.adjust", event_id=f"adj-{n}", quantity=n) for n in range(count)]


def test_a_new_event_is_recorded_and_queued_once_and_known_afterwards(relay, store):
    first = take_in(relay, "stock.adjust", example("stock.adjust"))
    assert (first.verdict, first.state, first.admitted) == ("queued", "accepted", True)
    queued = queued_messages(store)
    assert queued == [{"task": "trademax.stock.adjust", "event": queued[0]["event"]}]
    assert queued[0]["event"]["event_id"] == example("stock.adjust")["event_id"]
    again = take_in(relay, "stock.adjust", example("stock.adjust"))
    assert (again.verdict, again.state) == ("queued_again", "accepted")
    assert len(queued_messages(store)) == 2  # a repeat is queued again; the ledger's claim sends it once


def test_the_queued_message_is_one_the_workers_screen_passes(relay, store):
    from tasks.raw_messages import Passed, screen

    take_in(relay, "receipt.create", example("receipt.create"))
    [raw] = store.lrange("trademax.receipt", 0, -1)
    verdict = screen(raw, "trademax.receipt", now=1_700_000_000.0)
    assert isinstance(verdict, Passed) and verdict.envelope["headers"]["task"] == "trademax.receipt.create"


def test_invalid_and_conflicting_events_become_dead_letters_and_are_not_queued(relay, store):
    invalid = json.loads((EXAMPLES / "invalid-receipt.json").read_text())
    bad = take_in(relay, "receipt.create", invalid)
    assert (bad.verdict, bad.state, bad.key) == ("invalid", "dead", "(no key)")
    assert set(bad.problems) == {"order_type", "received_date", "products.0.quantity", "products.1.colour",
                                 "transaction_id"}
    take_in(relay, "stock.adjust", example("stock.adjust"))
    clash = take_in(relay, "stock.adjust", example("stock.adjust", quantity=1))
    assert (clash.verdict, clash.state) == ("conflict", "dead")
    assert len(queued_messages(store)) == 1
    letters = relay.dead_letters.list()
    assert sorted(letter.reason for letter in letters) == ["conflict", "invalid"]
    invalid = next(letter for letter in letters if letter.reason == "invalid")
    assert invalid.messages == bad.problems  # the answer carries what the dead letter keeps


def test_a_batch_keeps_its_order_across_chunks_and_a_key_twice_in_it(relay, store):
    from worker.delivery.admission import CHUNK

    events = adjustments(CHUNK + 3) + [example("stock.adjust", event_id="adj-0", quantity=0), 0,
                                       example("stock.adjust", event_id="adj-1", quantity=99)]
    intakes = take_in_all(relay, "stock.adjust", events)
    assert [i.verdict for i in intakes] == ["queued"] * (CHUNK + 3) + ["queued_again", "invalid", "conflict"]
    assert [m["event"]["event_id"] for m in queued_messages(store)] == (
        [f"adj-{n}" for n in range(CHUNK + 3)] + ["adj-0"])


def test_a_store_that_does_not_answer_at_all_admits_nothing(server, relay, store):
    server.connected = False
    intakes = take_in_all(relay, "stock.adjust", adjustments(2) + [{"event_id": "bad"}])
    server.connected = True
    # The invalid event's dead letter is written first (the valid ones then go in one round trip): the
    # store failed on it, and the others were not tried.
    assert [i.verdict for i in intakes] == ["not_tried", "not_tried", "store_down"]
    assert all(i.state is None and "send it again" in i.note for i in intakes)
    assert queued_messages(store) == [] and relay.ledger.count_by_state()["accepted"] == 0


def test_an_admission_the_store_runs_after_its_not_after_does_nothing(relay, store):
    """A stalled store runs what it was sent when it wakes — after the door answered 503 ("nothing of it
    was kept"): the admission finds its "not after" passed and leaves no record and no message."""
    from tasks.events import validate_event

    event = validate_event("stock.adjust", example("stock.adjust"))
    ledger = relay.ledger
    [late] = ledger.admit_all([(event, "trademax.stock", "{}", "r1")], not_after=ledger.server_time() - 0.01)
    assert isinstance(late, LateAdmission)
    assert ledger.get(event.operation, event.key) is None and store.llen("trademax.stock") == 0
    [(accepted, queued)] = ledger.admit_all([(event, "trademax.stock", "{}", "r1-again")],
                                            not_after=ledger.server_time() + 4)
    assert (accepted.status, queued) == ("accepted", True) and store.llen("trademax.stock") == 1


def test_a_resent_admission_replays_its_answer_and_queues_once(relay, store):
    """redis-py resends a pipeline after a socket timeout: an admission that ran is replayed by its request
    id (the store-call rule), not run again — one record, one message; and a late one stays late."""
    from tasks.events import validate_event

    event = validate_event("stock.adjust", example("stock.adjust"))
    ledger = relay.ledger
    for _ in range(2):
        [(accepted, queued)] = ledger.admit_all([(event, "trademax.stock", "{}", "r1")])
        assert (accepted.status, queued) == ("accepted", True)
    assert store.llen("trademax.stock") == 1
    other = validate_event("stock.adjust", example("stock.adjust", event_id="other"))
    [late] = ledger.admit_all([(other, "trademax.stock", "{}", "r2")], not_after=ledger.server_time() - 1)
    # The resend, run in time now: still the first answer, and still nothing done.
    [again] = ledger.admit_all([(other, "trademax.stock", "{}", "r2")], not_after=ledger.server_time() + 4)
    assert isinstance(late, LateAdmission) and isinstance(again, LateAdmission)
    assert ledger.get("stock.adjust", "other") is None


def test_an_admission_abandoned_at_503_is_taken_back_once_the_store_answers(relay, store):
    """The store ran the admissions but froze before answering: the door answered 503, and takes back each
    one's message and record once the store answers — but leaves what another request made, and a message
    a worker already took."""
    from tasks.events import validate_event

    ledger = relay.ledger
    known = validate_event("stock.adjust", example("stock.adjust", event_id="known"))
    ledger.accept(known)
    items = [(validate_event("stock.adjust", example("stock.adjust", event_id=f"w{n}")), "trademax.stock",
              f"message-{n}", f"rid-{n}") for n in range(3)]
    items.append((known, "trademax.stock", "message-known", "rid-known"))
    never = (validate_event("stock.adjust", example("stock.adjust", event_id="never")), "trademax.stock",
             "message-never", "rid-never")
    ledger.admit_all(items)  # ran; its answers lost on the way (the door answered 503)
    store.rpop("trademax.stock")  # a worker took w0's message (the oldest) already
    assert ledger.withdraw_admissions(items + [never]) == ["taken", "withdrawn", "withdrawn", "unqueued",
                                                           "never"]
    assert [ledger.get("stock.adjust", f"w{n}") is not None for n in range(3)] == [True, False, False]
    assert ledger.get("stock.adjust", "known").state == "accepted"  # another request's record stays
    assert store.lrange("trademax.stock", 0, -1) == []
    assert ledger.withdraw_admissions(items) == ["taken", "taken", "taken", "taken"]  # idempotent by itself


def test_withdrawals_wait_for_the_store_and_then_take_back(server, relay, store):
    import time

    from tasks.events import validate_event
    from worker.delivery.admission import STORE_UNREACHABLE
    from worker.delivery.withdrawals import Withdrawals

    item = (validate_event("stock.adjust", example("stock.adjust")), "trademax.stock", "m", "rid")
    relay.ledger.admit_all([item])
    withdrawals = Withdrawals(relay.ledger, STORE_UNREACHABLE, pause=0.01)
    server.connected = False
    withdrawals.add([item])
    time.sleep(0.2)
    assert withdrawals.pending == 1  # tried, and keeps trying while the store does not answer
    server.connected = True
    deadline = time.monotonic() + 10
    while withdrawals.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert withdrawals.pending == 0
    assert relay.ledger.get(item[0].operation, item[0].key) is None and store.llen("trademax.stock") == 0


def test_settled_events_are_not_queued_again(relay, store):
    from tasks.events import validate_event

    event = validate_event("stock.adjust", example("stock.adjust"))
    relay.ledger.accept(event)
    relay.ledger.transition(event.operation, event.key, "delivered", reason="test")
    intake = take_in(relay, "stock.adjust", example("stock.adjust"))
    assert (intake.verdict, intake.state, queued_messages(store)) == ("settled", "delivered", [])


@pytest.mark.parametrize("text, count", [
    ('{"a": 1}', 1), ('[{"a": 1}, {"a": 2}]', 2), ('{"a": 1}\n\n{"a": 2}\n', 2), ("  ", 0), ("[]", 0)])
def test_read_events_takes_an_object_an_array_or_json_lines(text, count):
    assert len(read_events(text)) == count


def test_read_events_names_the_line_that_is_not_json():
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        read_events('{"a": 1}\n{"a": \n')


@pytest.mark.parametrize("reply, not_now", [
    ("OOM command not allowed when used memory > 'maxmemory'.", True),
    ("BUSY Redis is busy running a script.", True),
    ("LOADING Redis is loading the dataset in memory", True),
    ("READONLY You can't write against a read only replica.", True),
    ("WRONGTYPE Operation against a key holding the wrong kind of value", False),
    ("ERR Error running script (call to f_0123): @user_script:1: bad argument", False),
])
def test_an_admissions_error_reply_is_503_only_when_the_store_could_not_run_it_now(reply, not_now):
    """The store's "not now" (full, busy, loading, a replica) is the door's 503, send it again; any other
    error reply is a fault of the relay's (500), never "the store did not answer"."""
    from worker.delivery.admission import _store_could_not

    assert _store_could_not(redis.ResponseError(reply)) is not_now
    assert _store_could_not(LateAdmission("ran after its not-after")) is True
