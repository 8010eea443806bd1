"""``wms-relay pause`` / ``resume`` / ``pauses`` and what ``status`` shows of the flow, against a real
valkey-server: a pause names who, why and until when, is audited, shows in ``status`` (text and JSON);
while it lasts an event is still accepted but not sent — parked ``retrying`` with no attempt counted —
and on resume it is released and delivered with one attempt.  A pause without a reason, ending in the
past or beyond a year (a typo like 99999999999999999999d: issue 23.6), is refused with a sentence and
nothing applied; a far-future pause an earlier version stored does not stop ``status`` or ``pauses``."""
from __future__ import annotations

import pytest

from tests.worker.support.test_actions import ScriptedTrademax, example
from worker.delivery.flow_keeper import DestinationKeeper
from worker.delivery.pipeline import deliver
from worker.observe.configuration import recorded_text
from worker.settings import Settings
from worker.store.heartbeats import Heartbeats


def test_pause_status_resume_with_audit(cli, relay):
    code, out, err = cli("pause", "trademax", "--reason", "Trademax maintenance window", "--until", "2h",
                         "--actor", "alice")
    assert code == 0, err
    assert "Trademax is paused until" in out and "alice" in out

    relay.client = ScriptedTrademax()
    event = example("receipt.create", transaction_id="R-PAUSED")
    assert deliver(relay, "receipt.create", event, owner="w-1") == "retrying"
    record = relay.ledger.get("receipt.create", "R-PAUSED")
    assert record.attempts == 0 and relay.client.calls == []
    assert "Trademax is paused until" in record.history[-1]["reason"]
    assert relay.flow.parking("trademax").count() == 1

    # a worker recorded its configuration (Trademax only): status reads which destinations are on from it
    Heartbeats(relay.redis).beat("worker", "relay-1@h", recorded_text(Settings()))
    status = cli.json("status")
    flow = status["destinations"]["trademax"]["flow"]
    assert flow["paused"]["by"] == "alice" and flow["paused"]["reason"] == "Trademax maintenance window"
    assert flow["paused"]["until"] > relay.clock() + 7000 and flow["parked"] == 1
    assert flow["circuit"]["state"] == "closed" and flow["max_rps"] is None
    assert status["destinations"]["kaching"]["flow"] is None  # off
    assert {"flag": "paused", "destination": "trademax"}.items() <= next(
        item for item in status["attention"] if item["flag"] == "paused").items()  # needs a person
    code, out, _ = cli("status")
    assert "PAUSED until" in out and "by alice: Trademax maintenance window" in out
    assert "`wms-relay resume trademax`" in out

    code, out, err = cli("resume", "trademax", "--reason", "done early", "--actor", "bob")
    assert code == 0 and "Trademax resumed" in out and "1 waiting deliveries" in out
    said = cli("resume", "trademax", "--actor", "bob")[1].splitlines()
    assert said[0].startswith("Store: ") and said[1].startswith("Trademax was not paused")
    history = cli.json("pauses")["entries"]
    assert [(e["action"], e["actor"], e["reason"]) for e in history] == [
        ("resume", "bob", "done early"), ("pause", "alice", "Trademax maintenance window")]
    audit = cli.json("audit")["entries"]  # with every other person's action
    assert [(e["action"], e["actor"], e["target"], e["status"]) for e in audit] == [
        ("resume", "bob", "trademax", "skipped"), ("resume", "bob", "trademax", "done"),
        ("pause", "alice", "trademax", "done")]

    assert DestinationKeeper(relay, "trademax").release_if_open() == 1  # the workers' keeper lets it go
    entry = relay.schedule.get("receipt.create:R-PAUSED")
    assert entry is not None and entry.due_at <= relay.clock()
    assert deliver(relay, "receipt.create", entry.message["event"], owner="w-2") == "delivered"
    assert relay.ledger.get("receipt.create", "R-PAUSED").attempts == 1


@pytest.mark.parametrize("argv, problem", [
    (["pause", "kaching"], "--reason"),
    (["pause", "kaching", "--reason", " "], "--reason must say why"),
    (["pause", "kaching", "--reason", "x", "--until", "2001-01-01T00:00"], "has passed already"),
    (["pause", "kaching", "--reason", "x", "--until", "soon"], "--until 'soon'"),
    (["pause", "kaching", "--reason", "x", "--until", "99999999999999999999d"], "is longer than 100 years"),
    (["pause", "kaching", "--reason", "x", "--until", "1e400d"], "--until '1e400d'"),
    (["pause", "kaching", "--reason", "x", "--until", "400d"], "is more than 366 d ahead"),
    (["pause", "kaching", "--reason", "x", "--until", "2999-01-01"], "outside 1970-2099"),
])
def test_a_pause_without_a_reason_or_with_a_past_end_is_refused(cli, env, capsys, argv, problem):
    try:
        code, _, err = cli(*argv)
    except SystemExit as exc:  # argparse: a required option missing
        code, err = exc.code, capsys.readouterr().err
    assert code == 2 and problem in err
    assert cli.json("pauses")["entries"] == []


def test_a_far_future_pause_stored_earlier_does_not_stop_status_or_pauses(cli, relay):  # noqa: F811
    """What main's ``pause --until 99999999999999999999d`` left behind: the pause written, its audit entry
    (a pause until year 10^17), before the script failed."""
    far = f"{1e20 * 86400:.3f}"
    relay.redis.hset("wms:flow:pause", mapping={"by": "alice", "at": "1714550000.000", "reason": "x",
                                                "until": far})
    relay.redis.xadd("wms:flow:pauses", {"at": "1714550000.000", "actor": "alice", "action": "pause",
                                         "destination": "trademax", "reason": "x", "until": far})
    code, out, err = cli("status")
    assert code == 0 and "Traceback" not in err and "PAUSED until 9999-12-31" in out
    code, out, err = cli("pauses")
    assert code == 0 and "9999-12-31" in out
    assert cli.json("pauses")["entries"][0]["until"] == float(far)
    verdict = relay.flow.gate("trademax").ask()  # a worker's gate reads it without failing the task
    assert verdict.action == "park" and "paused until a time beyond the calendar" in verdict.reason
