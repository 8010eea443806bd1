"""``Ledger.accept_and_claim``: the worker's one-round-trip path answers exactly as ``accept`` followed by
``claim`` would, in every state an event can be in (fakeredis, bytes and text, and a real valkey-server)."""
from __future__ import annotations

import pytest

from worker.store.ledger import Ledger

DAY = 86400.0


def event(key: str = "TX-1", quantity: int = 2) -> dict:
    return {"operation": "dispatch.create", "key": key, "occurred_at": "2024-05-01T10:00:00+02:00",
            "event_id": key,
            "fields": {"transaction_id": key, "products": [{"artno": "1", "quantity": quantity}]}}


@pytest.fixture
def ledger(store_client, clock):
    return Ledger(store_client, lease_seconds=120, delivered_retention_seconds=30 * DAY, clock=clock)


def test_a_new_event_is_recorded_and_claimed_in_one_step(ledger, clock):
    accepted, claim = ledger.accept_and_claim(event(), "w1")
    assert (accepted.status, accepted.state, accepted.conflict) == ("accepted", "accepted", False)
    assert (claim.status, claim.previous_state) == ("claimed", "accepted")
    assert (claim.attempt, claim.round_attempt) == (1, 1)
    assert claim.lease_expires_at == pytest.approx(clock.now + 120)
    record = ledger.get("dispatch.create", "TX-1")
    assert (record.state, record.lease_owner, record.fingerprint) == ("sending", "w1", accepted.fingerprint)
    assert [(h["from"], h["to"], h["attempt"]) for h in record.history] == [
        (None, "accepted", None), ("accepted", "sending", 1)]
    assert ledger.count_by_state()["sending"] == 1 and ledger.count_by_state()["accepted"] == 0


def test_a_conflict_claims_nothing_and_changes_nothing(ledger):
    first, _ = ledger.accept_and_claim(event(), "w1")
    accepted, claim = ledger.accept_and_claim(event(quantity=3), "w2")
    assert accepted.conflict and claim is None
    assert accepted.existing_fingerprint == first.fingerprint
    assert ledger.get("dispatch.create", "TX-1").lease_owner == "w1"


@pytest.mark.parametrize("setup", ["accepted", "live claim", "expired claim", "own claim", "retrying",
                                   "delivered", "dead", "uncertain"])
def test_every_state_answers_as_accept_then_claim(store_client, clock, setup):
    def prepared(key: str) -> Ledger:
        ledger = Ledger(store_client, lease_seconds=120, delivered_retention_seconds=30 * DAY, clock=clock)
        accepted = ledger.accept(event(key))
        if setup != "accepted":
            ledger.claim("dispatch.create", key, accepted.fingerprint, "w0")
        if setup in ("retrying", "delivered", "dead", "uncertain"):
            ledger.transition("dispatch.create", key, setup, owner="w0", reason="set up",
                              result={"dispatch_id": 7} if setup == "delivered" else None)
        return ledger

    owner = "w0" if setup == "own claim" else "w1"
    one = prepared("TX-one")
    two = prepared("TX-two")
    if setup == "expired claim":
        clock.now += 121
    together_accepted, together = one.accept_and_claim(event("TX-one"), owner)
    apart_accepted = two.accept(event("TX-two"))
    apart = two.claim("dispatch.create", "TX-two", apart_accepted.fingerprint, owner)
    assert together_accepted.status == apart_accepted.status
    assert together_accepted.state == apart_accepted.state
    assert together == apart
    assert one.get("dispatch.create", "TX-one").state == two.get("dispatch.create", "TX-two").state
