"""Pause and resume: a pause names who and why (both required), may end by itself at ``until``, replaces a
pause in force, and every pause and resume is in the audit trail (who, when, why, until; a resume keeps
the pause it ended).  The gate parks every send of a paused destination, before the circuit or the rate
limit is asked."""
from __future__ import annotations

import pytest

import redis

from worker.flow import pause as pause_module
from worker.flow.gate import PARK, SEND, Gate
from worker.flow.pause import LONGEST_PAUSE_SECONDS, Pauses
from worker.store.requests import replaying
from worker.settings import FlowLimits

NAMESPACES = {"trademax": "wms", "kaching": "wms:kaching"}


@pytest.fixture
def pauses(store_client, clock):
    return Pauses(store_client, NAMESPACES, clock=clock)


def test_pause_and_resume_are_audited(pauses, clock):
    pauses.pause("kaching", by="alice", reason="ka-ching maintenance window")
    paused = pauses.in_force("kaching")
    assert (paused.by, paused.reason, paused.until, paused.at) == (
        "alice", "ka-ching maintenance window", None, clock())
    assert pauses.in_force("trademax") is None
    clock.advance(60)
    ended = pauses.resume("kaching", by="bob", reason="window over")
    assert ended.by == "alice"
    assert pauses.in_force("kaching") is None
    trail = pauses.history()
    assert [(e.action, e.actor, e.destination, e.reason) for e in trail] == [
        ("resume", "bob", "kaching", "window over"),
        ("pause", "alice", "kaching", "ka-ching maintenance window")]
    assert trail[0].at == clock() and trail[0].was["by"] == "alice"
    assert pauses.history("trademax") == []


def test_resuming_what_is_not_paused_changes_and_audits_nothing(pauses):
    assert pauses.resume("kaching", by="bob") is None
    assert pauses.history() == []


def test_a_pause_until_ends_by_itself(pauses, clock):
    pauses.pause("trademax", by="alice", reason="Trademax upgrade", until=clock() + 3600)
    assert pauses.in_force("trademax").until == clock() + 3600
    clock.advance(3600)
    assert pauses.in_force("trademax") is None


def test_a_new_pause_replaces_the_one_in_force(pauses, clock):
    pauses.pause("trademax", by="alice", reason="one", until=clock() + 60)
    pauses.pause("trademax", by="bob", reason="two")
    paused = pauses.in_force("trademax")
    assert (paused.by, paused.reason, paused.until) == ("bob", "two", None)
    clock.advance(120)
    assert pauses.in_force("trademax") is not None  # the new pause has no end
    assert len(pauses.history("trademax")) == 2


@pytest.mark.parametrize("by, reason, until, problem", [
    ("", "why", None, "name"), ("alice", " ", None, "reason"), ("alice", "why", -1, "future"),
    ("alice", "why", LONGEST_PAUSE_SECONDS + 1, "within 366 days"), ("alice", "why", 1e20 * 86400, "within"),
    ("alice", "why", float("nan"), "future")])
def test_a_pause_needs_a_person_a_reason_and_a_future_end(pauses, clock, by, reason, until, problem):
    with pytest.raises(ValueError, match=problem):
        pauses.pause("trademax", by=by, reason=reason, until=None if until is None else clock() + until)
    assert pauses.in_force("trademax") is None


@pytest.mark.parametrize("until", ["99999999999999999999999999", "nan", "soon", "1", "-1"])
def test_the_pause_script_refuses_a_bad_end_before_it_writes_anything(store_client, pauses, clock, until):
    """Issue 23.6: the script itself checks ``until`` first (main's DEL + HSET ran, then PEXPIRE failed: a
    pause with no end and no audit entry)."""
    pauses.pause("trademax", by="alice", reason="the one in force", until=clock() + 600)
    script = store_client.register_script(replaying(pause_module._PAUSE))
    with pytest.raises(redis.ResponseError, match="a pause must end after now"):
        script(keys=["wms:flow:pause", pause_module.AUDIT_KEY, "wms:request:bad-until"],
               args=["mallory", f"{clock():.3f}", "why", until, "trademax", 1000, LONGEST_PAUSE_SECONDS])
    kept = pauses.in_force("trademax")
    assert (kept.by, kept.reason, kept.until) == ("alice", "the one in force", clock() + 600)
    assert [entry.actor for entry in pauses.history()] == ["alice"]


def test_an_unknown_destination_is_named(pauses):
    with pytest.raises(KeyError, match="known: trademax, kaching"):
        pauses.pause("shopify", by="alice", reason="x")


def test_the_gate_parks_a_paused_destination_first(store_client, pauses, clock):
    gate = Gate(store_client, "kaching", "wms:kaching", FlowLimits(max_rps=1), title="ka-ching", clock=clock,
                sleep=clock.sleep)
    gate.rate.hold_until(clock() + 100)  # the rate limit would say "later"; the pause comes first
    pauses.pause("kaching", by="alice", reason="stocktake", until=clock() + 600)
    verdict = gate.admit()
    assert verdict.action == PARK and verdict.wait == pytest.approx(600)
    assert "ka-ching is paused until" in verdict.reason and "by alice: stocktake" in verdict.reason
    pauses.resume("kaching", by="alice")
    clock.advance(100)
    assert gate.admit().action == SEND
