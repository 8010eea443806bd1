"""The support commands (status, event, dead, retries, uncertain) against a real valkey-server.

Parked events are made by the real delivery pipeline with a scripted Trademax; the commands run as
``wms-relay`` would (``worker.cli.main``, settings from the environment), and once as two real processes
racing to retry one letter.  Every ``--json`` output is parsed back."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.worker.support.test_actions import ScriptedTrademax, example, refused
from worker.delivery.pipeline import deliver
from worker.errors import OutcomeUnknownError, TransientError
from worker.store.ledger import Ledger
from worker.redaction import url_without_password

ROOT = Path(__file__).resolve().parents[3]


def park(relay, operation: str, event: dict, *answers) -> str:
    relay.client = ScriptedTrademax(*answers)
    return deliver(relay, operation, event, owner="worker-1")


@pytest.fixture
def parked(relay):
    """One of each: a refused receipt (dead), an invalid one (dead, not in the ledger), a relative stock
    adjustment that timed out (uncertain), a receipt that failed transiently (scheduled retry)."""
    refused_receipt = example("receipt.create", transaction_id="R-DEAD")
    assert park(relay, "receipt.create", refused_receipt, refused()) == "dead"
    invalid = json.loads((ROOT / "examples" / "invalid-receipt.json").read_text())
    assert park(relay, "receipt.create", invalid) == "dead"
    relative = example("stock.adjust", event_id="rel-1", type="relative", quantity=-2, reason=2)
    assert park(relay, "stock.adjust", relative, OutcomeUnknownError("timeout", operation="adjust_stock")) \
        == "uncertain"
    transient = TransientError("", operation="create_receipt", status=503, retry_after=600.0)  # due later
    assert park(relay, "receipt.create", example("receipt.create", transaction_id="R-LATER"), transient) \
        == "retrying"
    return relay


def test_status_json_counts_what_needs_a_person(cli, parked):
    report = cli.json("status")
    assert report["dead_letters"]["count"] == 2
    assert report["dead_letters"]["oldest_age_seconds"] >= 0
    assert report["uncertain"]["count"] == 1
    assert report["scheduled_retries"]["count"] == 1 and report["scheduled_retries"]["next_due_at"]
    assert report["queues"] == {"trademax.dispatch": 0, "trademax.receipt": 0, "trademax.stock": 0,
                                "trademax.inventory": 0, "trademax.orders": 0, "kaching.stock": 0,
                                "stocktrim.stock": 0, "stocktrim.dispatch": 0, "stock2shop.stock": 0}
    assert report["delivered_last_hour"] == 0
    assert report["workers"] == []
    assert [a["flag"] for a in report["attention"]] == ["no_worker", "no_scheduler", "dead_letters",
                                                        "uncertain"]
    assert report["destinations"]["trademax"]["ledger"]["uncertain"] == 1
    assert report["destinations"]["kaching"]["on"] is None  # no worker has recorded its configuration
    assert report["configuration"]["recorded_by"] is None
    narrowed = cli.json("status", "--destination", "kaching")
    assert narrowed["uncertain"]["count"] == 0 and narrowed["dead_letters"]["count"] == 0
    assert list(narrowed["queues"]) == ["kaching.stock"] and list(narrowed["destinations"]) == ["kaching"]
    code, out, _ = cli("status")
    assert code == 0
    assert "Dead letters:          2" in out and "wms-relay dead list" in out


def test_dead_list_show_and_event_print_json_that_parses_back(cli, parked):
    letters = cli.json("dead", "list")["dead_letters"]
    assert sorted(letter["reason"] for letter in letters) == ["invalid", "permanent"]
    refused_letter = next(letter for letter in letters if letter["reason"] == "permanent")
    assert refused_letter["key"] == "R-DEAD" and refused_letter["attempts"][0]["error_code"] == 451
    found = cli.json("dead", "list", "--grep", "R-DEAD")["dead_letters"]
    assert [letter["key"] for letter in found] == ["R-DEAD"]
    assert cli.json("dead", "list", "--operation", "stock.adjust")["dead_letters"] == []
    assert len(cli.json("dead", "list", "--since", "1h")["dead_letters"]) == 2
    newest = cli.json("dead", "list", "--limit", "1")["dead_letters"]  # read as a page (issue 21)
    assert newest == letters[:1]
    assert cli("dead", "list", "--limit", "0")[0] == 2

    shown = cli.json("dead", "show", refused_letter["id"])
    assert shown["ledger_state"] == "dead" and shown["event"]["transaction_id"] == "R-DEAD"

    view = cli.json("event", "receipt.create", "R-DEAD")
    assert {"operation", "key", "state", "attempts", "result", "history"} <= set(view)
    assert (view["operation"], view["key"], view["state"], view["attempts"]) == ("receipt.create", "R-DEAD",
                                                                                 "dead", 1)
    assert [h["to"] for h in view["history"]] == ["accepted", "sending", "dead"]
    assert view["dead_letter"]["id"] == refused_letter["id"]
    assert cli.json("event", "receipt.create:R-DEAD")["state"] == "dead"
    assert cli.json("event", "R-DEAD")["operation"] == "receipt.create"

    code, out, _ = cli("event", "receipt.create", "R-DEAD")
    assert code == 0
    assert "attempt 1: permanent, HTTP 400, error_code 451" in out
    assert f"wms-relay dead retry {refused_letter['id']}" in out


def test_an_unknown_event_exits_1_and_says_so(cli, parked):
    code, out, _ = cli("event", "receipt.create", "R-NOPE", "--json")
    assert code == 1
    assert json.loads(out)["state"] is None
    code, out, _ = cli("event", "receipt.create", "R-NOPE")
    assert code == 1 and "No event receipt.create R-NOPE" in out


def test_retry_all_shows_progress_and_a_summary_then_there_is_nothing_to_do(cli, parked, env):
    code, out, _ = cli("dead", "retry", "--all", "--dry-run")
    assert code == 0
    assert "Summary: 1 would be retried, 1 skipped, 0 failed. Dry run: nothing was changed." in out
    assert env.client().llen("trademax.receipt") == 0

    code, out, _ = cli("dead", "retry", "--all", "--actor", "alice", "--reason", "order type fixed")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Store: {url_without_password(env.url)} (REDIS_URL)"
    assert lines[1].startswith("[1/2] ") and any(line.startswith("[2/2] ") for line in lines)
    assert "still invalid, kept as a dead letter" in out
    assert lines[-1] == "Summary: 1 retried, 1 skipped, 0 failed."
    assert env.client().llen("trademax.receipt") == 1
    assert parked.ledger.get("receipt.create", "R-DEAD").history[-1]["actor"] == "alice"

    code, out, _ = cli("dead", "retry", "--all", "--operation", "stock.adjust")
    assert (code, out.splitlines()[-1]) == (0, "Nothing to do: no open dead letters match.")
    summary = cli.json("dead", "retry", "receipt.create:R-DEAD")
    assert summary["summary"] == {"retried": 0, "skipped": 1, "failed": 0}
    assert "already retried by alice" in summary["results"][0]["message"]


def test_retry_needs_ids_or_all_and_discard_needs_a_reason(cli, parked):
    assert cli("dead", "retry")[0] == 2
    assert cli("dead", "retry", "dl-1", "--all")[0] == 2
    with pytest.raises(SystemExit) as exited:
        cli("dead", "discard", "dl-1")
    assert exited.value.code == 2
    code, out, _ = cli("dead", "discard", "receipt.create:R-DEAD", "--reason", "cancelled", "--actor", "bo")
    assert code == 0 and "Summary: 1 discarded, 0 skipped, 0 failed." in out
    view = cli.json("event", "receipt.create", "R-DEAD")
    assert view["state"] == "discarded" and view["history"][-1]["actor"] == "bo"
    assert view["dead_letter"]["closed_by"] == "bo" and view["dead_letter"]["close_reason"] == "cancelled"
    code, out, _ = cli("dead", "discard", "dl-999", "--reason", "x")
    assert code == 1 and "FAILED" in out and "no such dead letter" in out


def test_uncertain_list_and_resolve(cli, parked):
    listed = cli.json("uncertain", "list")["uncertain"]
    assert [(u["id"], u["state"]) for u in listed] == [("stock.adjust:rel-1", "uncertain")]
    code, out, _ = cli("uncertain", "list")
    assert "stock.adjust:rel-1" in out and "uncertain resolve" in out
    assert cli("uncertain", "resolve", "rel-1", "--delivered", "--reason", "x")[0] == 2
    result = cli.json("uncertain", "resolve", "stock.adjust:rel-1", "--delivered",
                      "--reason", "seen in Trademax", "--actor", "dana")
    assert result["summary"] == {"resolved": 1, "skipped": 0, "failed": 0}
    view = cli.json("event", "stock.adjust", "rel-1")
    assert view["state"] == "delivered" and view["history"][-1]["actor"] == "dana"
    assert cli.json("uncertain", "list")["uncertain"] == []


def test_retries_list_and_run_now(cli, parked):
    entries = cli.json("retries", "list")["retries"]
    assert [(e["id"], e["state"], e["attempts"]) for e in entries] == [
        ("receipt.create:R-LATER", "retrying", 1)]
    assert entries[0]["due_in_seconds"] > 0 and "HTTP 503" in entries[0]["last_error"]
    result = cli.json("retries", "run-now", "--all")
    assert result["summary"]["made due now"] == 1
    assert cli.json("retries", "list")["retries"][0]["due_in_seconds"] <= 0
    code, out, _ = cli("retries", "run-now", "receipt.create:R-GONE")
    assert code == 0 and "not in the retry schedule" in out


def test_retries_discard_and_the_audit_of_every_persons_action(cli, parked):
    code, _, err = cli("retries", "discard", "receipt.create:R-LATER", "--reason", " ")
    assert code == 2 and "--reason" in err
    result = cli.json("retries", "discard", "receipt.create:R-LATER", "--reason", "order cancelled",
                      "--actor", "erin")
    assert result["summary"]["discarded"] == 1
    assert cli.json("retries", "list")["retries"] == []
    assert cli.json("event", "receipt.create", "R-LATER")["state"] == "discarded"
    cli("retries", "run-now", "receipt.create:R-GONE", "--actor", "erin")
    entries = cli.json("audit", "--actor", "erin")["entries"]
    assert [(e["action"], e["target"], e["status"], e["via"]) for e in entries] == [
        ("run-now", "receipt.create:R-GONE", "skipped", "cli"),
        ("discard-retry", "receipt.create:R-LATER", "done", "cli")]
    assert entries[1]["reason"] == "order cancelled"
    assert cli.json("audit", "--action", "retry")["entries"] == []
    code, out, _ = cli("audit", "--since", "1h")
    assert code == 0 and "discard-retry" in out and "erin" in out


def test_empty_listings_say_so_plainly(cli, relay, env):
    store = f"Store: {url_without_password(env.url)} (REDIS_URL)\n"
    assert cli("dead", "list") == (0, store + "No dead letters. Nothing needs a person.\n", "")
    assert cli.json("dead", "list")["dead_letters"] == []
    assert cli("retries", "run-now", "--all")[1].startswith(store + "Nothing to do")
    assert cli.json("retries", "list")["retries"] == [] and cli.json("uncertain", "list")["uncertain"] == []
    # An empty selection keeps the JSON summary's keys (a script reads the same keys either way).
    assert cli.json("retries", "run-now", "--all")["summary"] == {
        "made due now": 0, "skipped": 0, "failed": 0}
    assert cli.json("dead", "retry", "--all", "--dry-run")["summary"] == {
        "would be retried": 0, "skipped": 0, "failed": 0}


def test_a_bad_since_is_one_plain_sentence(cli, relay):
    code, _, err = cli("dead", "list", "--since", "yesterday")
    assert code == 2 and "--since 'yesterday': use a duration like 30m" in err


def test_an_unreachable_redis_is_one_plain_sentence(cli, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    code, out, err = cli("dead", "list")
    assert code == 3 and "cannot reach Redis" in err and "Traceback" not in err


def test_two_people_retrying_one_letter_at_once_queue_it_once(parked, env, tmp_path):
    letter = parked.dead_letters.latest_for("receipt.create", "R-DEAD").letter_id
    proc_env = dict(os.environ)
    people = [subprocess.Popen([sys.executable, "-m", "worker.cli", "dead", "retry", letter, "--actor", who,
                                "--json"], cwd=ROOT, env=proc_env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE) for who in ("alice", "bob")]
    results = []
    for person in people:
        out, err = person.communicate(timeout=120)
        assert person.returncode == 0, err.decode()
        results.append(json.loads(out)["summary"])
    assert sorted(r["retried"] for r in results) == [0, 1]
    assert sorted(r["skipped"] for r in results) == [0, 1]
    assert env.client().llen("trademax.receipt") == 1
    ledger = Ledger(env.client(), lease_seconds=120, delivered_retention_seconds=0)
    record = ledger.get("receipt.create", "R-DEAD")
    assert [h["to"] for h in record.history].count("accepted") == 2  # accepted once, reopened once


def test_retries_and_uncertain_lists_filter_by_operation_text_and_limit(cli, parked):
    assert [e["id"] for e in cli.json("retries", "list", "--operation", "receipt.create")["retries"]] == [
        "receipt.create:R-LATER"]
    assert cli.json("retries", "list", "--operation", "stock.adjust")["retries"] == []
    found = cli.json("retries", "list", "--grep", "http 503")["retries"]
    assert [e["id"] for e in found] == ["receipt.create:R-LATER"]
    assert cli.json("retries", "list", "--grep", "no-such-text")["retries"] == []
    found = cli.json("uncertain", "list", "--grep", "REL-1", "--limit", "1")["uncertain"]
    assert [u["id"] for u in found] == ["stock.adjust:rel-1"]
    assert cli.json("uncertain", "list", "--operation", "receipt.create")["uncertain"] == []
    code, _, err = cli("uncertain", "list", "--limit", "0")
    assert code == 2 and "--limit must be 1 or more" in err
