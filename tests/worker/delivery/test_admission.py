"""The one door (worker.delivery.admission): every event ends fully admitted (in the ledger and queued) or
not at all — also when the store fails in the middle of a batch — and the answer says which is which.

fakeredis stands in for the store; the publisher is the injected seam (a list, or one that fails)."""
from __future__ import annotations

import json
from pathlib import Path

import fakeredis
import pytest
from kombu.exceptions import OperationalError

from worker.delivery.admission import read_events, take_in, take_in_all
from worker.delivery.relay import build_relay
from worker.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def example(operation: str, **changes) -> dict:
    return {**json.loads((EXAMPLES / f"{operation}.json").read_text()), **changes}


@pytest.fixture
def server():
    return fakeredis.FakeServer()


@pytest.fixture
def relay(server):
    return build_relay(Settings(), redis_client=fakeredis.FakeRedis(server=server, decode_responses=True),
                       sends=False, clock=lambda: 1_700_000_000.0)


def adjustments(count: int) -> list[dict]:
    return [example("stock.adjust", event_id=f"adj-{n}", quantity=n) for n in range(count)]


def test_a_new_event_is_recorded_and_queued_once_and_known_afterwards(relay):
    queued: list[dict] = []
    first = take_in(relay, queued.append, "stock.adjust", example("stock.adjust"))
    assert (first.verdict, first.state, first.admitted) == ("queued", "accepted", True)
    assert queued == [{"task": "trademax.stock.adjust", "event": queued[0]["event"]}]
    again = take_in(relay, queued.append, "stock.adjust", example("stock.adjust"))
    assert (again.verdict, again.state) == ("queued_again", "accepted")
    assert len(queued) == 2  # a repeat is queued again; the ledger's claim sends it once


def test_invalid_and_conflicting_events_become_dead_letters_and_are_not_queued(relay):
    queued: list[dict] = []
    invalid = json.loads((EXAMPLES / "invalid-receipt.json").read_text())
    bad = take_in(relay, queued.append, "receipt.create", invalid)
    assert (bad.verdict, bad.state, bad.key) == ("invalid", "dead", "(no key)")
    assert set(bad.problems) == {"order_type", "received_date", "products.0.quantity", "products.1.colour",
                                 "transaction_id"}
    take_in(relay, queued.append, "stock.adjust", example("stock.adjust"))
    clash = take_in(relay, queued.append, "stock.adjust", example("stock.adjust", quantity=1))
    assert (clash.verdict, clash.state) == ("conflict", "dead")
    assert len(queued) == 1
    letters = relay.dead_letters.list()
    assert sorted(letter.reason for letter in letters) == ["conflict", "invalid"]
    invalid = next(letter for letter in letters if letter.reason == "invalid")
    assert invalid.messages == bad.problems  # the answer carries what the dead letter keeps


def test_a_store_failure_in_the_middle_of_a_batch_leaves_nothing_half_admitted(server, relay):
    queued: list[dict] = []

    def publish_then_fail_after_three(message: dict) -> None:
        queued.append(message)
        if len(queued) == 3:
            server.connected = False  # the store goes away right after the third event was queued

    intakes = take_in_all(relay, publish_then_fail_after_three, "stock.adjust", adjustments(6))
    server.connected = True
    assert [i.verdict for i in intakes] == ["queued"] * 3 + ["store_down", "not_tried", "not_tried"]
    assert [i.key for i in intakes] == [f"adj-{n}" for n in range(6)]
    assert all(i.state is None and "send it again" in i.note for i in intakes[3:])
    assert [m["event"]["event_id"] for m in queued] == ["adj-0", "adj-1", "adj-2"]
    in_ledger = [relay.ledger.get("stock.adjust", f"adj-{n}") is not None for n in range(6)]
    assert in_ledger == [True] * 3 + [False] * 3
    # Sending the whole batch again admits the rest; the first three are recognised, not duplicated.
    again = take_in_all(relay, queued.append, "stock.adjust", adjustments(6))
    assert [i.verdict for i in again] == ["queued_again"] * 3 + ["queued"] * 3


def test_an_event_the_ledger_took_but_the_queue_did_not_is_withdrawn(relay):
    def broker_down(message: dict) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    intake = take_in(relay, broker_down, "stock.adjust", example("stock.adjust"))
    assert (intake.verdict, intake.state) == ("store_down", None)
    assert relay.ledger.get("stock.adjust", intake.key) is None
    assert relay.ledger.count_by_state().get("accepted", 0) == 0


def test_withdrawing_leaves_an_event_someone_else_moved_on(relay):
    from tasks.events import validate_event

    event = validate_event("stock.adjust", example("stock.adjust"))
    relay.ledger.accept(event)
    relay.ledger.claim(event.operation, event.key, relay.ledger.get(event.operation, event.key).fingerprint,
                       "worker-1")
    assert relay.ledger.withdraw(event) is False
    assert relay.ledger.get(event.operation, event.key).state == "sending"
    other = validate_event("stock.adjust", example("stock.adjust", event_id="other"))
    relay.ledger.accept(other)
    changed = validate_event("stock.adjust", example("stock.adjust", event_id="other", quantity=3))
    assert relay.ledger.withdraw(changed) is False  # another payload under the key: not ours to take back
    assert relay.ledger.withdraw(other) is True


def test_a_known_event_that_fails_to_queue_again_is_not_withdrawn(relay):
    take_in(relay, lambda message: None, "stock.adjust", example("stock.adjust"))

    def broker_down(message: dict) -> None:
        raise OperationalError("down")

    assert take_in(relay, broker_down, "stock.adjust", example("stock.adjust")).verdict == "store_down"
    assert relay.ledger.get("stock.adjust", example("stock.adjust")["event_id"]).state == "accepted"


def test_a_store_that_does_not_answer_at_all_admits_nothing(server, relay):
    server.connected = False
    intakes = take_in_all(relay, lambda message: None, "stock.adjust", adjustments(2))
    assert [i.verdict for i in intakes] == ["store_down", "not_tried"]


def test_settled_events_are_not_queued_again(relay):
    from tasks.events import validate_event

    event = validate_event("stock.adjust", example("stock.adjust"))
    relay.ledger.accept(event)
    relay.ledger.transition(event.operation, event.key, "delivered", reason="test")
    queued: list[dict] = []
    intake = take_in(relay, queued.append, "stock.adjust", example("stock.adjust"))
    assert (intake.verdict, intake.state, queued) == ("settled", "delivered", [])


@pytest.mark.parametrize("text, count", [
    ('{"a": 1}', 1), ('[{"a": 1}, {"a": 2}]', 2), ('{"a": 1}\n\n{"a": 2}\n', 2), ("  ", 0), ("[]", 0)])
def test_read_events_takes_an_object_an_array_or_json_lines(text, count):
    assert len(read_events(text)) == count


def test_read_events_names_the_line_that_is_not_json():
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        read_events('{"a": 1}\n{"a": \n')
