"""The store-call rule (worker.store.requests): a state-changing script resent with the same request id —
by redis-py after a timeout, or by the delivery once the store is back — replays its first reply and
changes nothing more: a claim resent is not a second claim, a transition resent is not refused, a dead
letter's id resent is the same id.  Runs on fakeredis and on valkey (``store_client``)."""
from __future__ import annotations

from worker.destinations.table import delivery_ref
from worker.store.dead_letters import DeadLetters
from worker.store.ledger import Ledger
from worker.store.requests import replayable


def event(key: str = "S-1") -> dict:
    return {"operation": "stock.adjust", "key": key, "fields": {"artno": "1", "quantity": 1}}


def test_a_claim_and_a_transition_run_again_in_the_same_block_replay(store_client):
    ledger = Ledger(store_client, lease_seconds=30, delivered_retention_seconds=60)
    ledger.accept(event())
    fingerprint = ledger.get("stock.adjust", "S-1").fingerprint
    with replayable("run-1"):
        first = ledger.claim("stock.adjust", "S-1", fingerprint, "w1")
        moved = ledger.transition("stock.adjust", "S-1", "delivered", owner="w1", reason="delivered")
    with replayable("run-1"):  # the same calls again, e.g. after a timeout
        again = ledger.claim("stock.adjust", "S-1", fingerprint, "w1")
        moved_again = ledger.transition("stock.adjust", "S-1", "delivered", owner="w1", reason="delivered")
    seen = [(c.status, c.attempt, c.previous_state) for c in (first, again)]
    assert seen == [("claimed", 1, "accepted")] * 2
    assert not again.interrupted
    assert moved and moved_again
    record = ledger.get("stock.adjust", "S-1")
    assert record.attempts == 1 and [h["to"] for h in record.history] == ["accepted", "sending", "delivered"]


def test_without_a_shared_block_each_call_is_its_own(store_client):
    ledger = Ledger(store_client, lease_seconds=30, delivered_retention_seconds=60)
    ledger.accept(event("S-2"))
    fingerprint = ledger.get("stock.adjust", "S-2").fingerprint
    ledger.claim("stock.adjust", "S-2", fingerprint, "w1")
    assert ledger.claim("stock.adjust", "S-2", fingerprint, "w1").attempt == 2


def test_a_dead_letter_id_resent_is_the_same_id(store_client):
    letters = DeadLetters(store_client, delivery_ref=delivery_ref)
    with replayable("letter"):
        first = letters.add("stock.adjust", "S-3", {"a": 1}, "permanent", messages=["no"])
    with replayable("letter"):
        again = letters.add("stock.adjust", "S-3", {"a": 1}, "permanent", messages=["no"])
    assert first == again and letters.count() == 1


def test_a_withdrawal_resent_replays_that_it_removed_the_record(store_client):
    ledger = Ledger(store_client, lease_seconds=30, delivered_retention_seconds=60)
    ledger.accept(event("S-4"))
    with replayable("withdraw"):
        first = ledger.withdraw(event("S-4"))
    with replayable("withdraw"):  # resent after a timeout: the first reply, not "nothing to remove"
        again = ledger.withdraw(event("S-4"))
    assert first is True and again is True
    assert ledger.get("stock.adjust", "S-4") is None
    assert ledger.withdraw(event("S-4")) is False  # a new request: there is nothing left to take back


def test_a_result_filled_in_by_a_person_carries_a_request_id_and_keeps_its_reply(store_client):
    """``fill_in_result`` (a dispatch id Trademax's answer lacked) is one compare-and-set script under the
    rule: its reply is kept under the request id, so redis-py resending it replays "ok"."""
    ledger = Ledger(store_client, lease_seconds=30, delivered_retention_seconds=60)
    ledger.accept(event("T-1"))
    ledger.transition("stock.adjust", "T-1", "delivered", reason="delivered", result={"status": 400})
    with replayable("fill"):
        assert ledger.fill_in_result("stock.adjust", "T-1", "dispatch_id", 390333, state="delivered",
                                     actor="alice", reason="from the dashboard") == ("added", 390333)
    assert store_client.get("wms:request:fill:1") is not None
    record = ledger.get("stock.adjust", "T-1")
    assert record.state == "delivered" and record.result == {"status": 400, "dispatch_id": 390333}
    last = record.history[-1]
    assert (last["from"], last["to"], last["actor"]) == ("delivered", "delivered", "alice")
    assert ledger.fill_in_result("stock.adjust", "T-1", "dispatch_id", 7, state="delivered", actor="bob",
                                 reason="x") == ("present", 390333)
    assert ledger.fill_in_result("stock.adjust", "NONE", "dispatch_id", 7, state="delivered", actor="bob",
                                 reason="x") == ("missing", None)
    ledger.accept(event("T-2"))
    assert ledger.fill_in_result("stock.adjust", "T-2", "dispatch_id", 7, state="delivered", actor="bob",
                                 reason="x") == ("wrong_state", "accepted")
    assert ledger.get("stock.adjust", "T-2").result is None
    assert ledger.count_by_state()["accepted"] == 1 and ledger.final_totals()["delivered"] == 1
