"""Support staff's commands against the running service: a real valkey-server, worker, scheduler and the
sandbox Trademax.  A dead letter retried by two people at once is sent once; an uncertain event is settled
the way the person who checked Trademax says."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.fixtures.pipeline import ROOT, wait_until
from tests.integration.test_delivery_pipeline import api_requests, example
from worker.redaction import url_without_password

pytestmark = pytest.mark.integration


def wms_relay(pipeline, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "worker.cli", *argv], cwd=ROOT, env=pipeline.env,
                          capture_output=True, text=True, timeout=120)


def wms_relay_json(pipeline, *argv: str):
    done = wms_relay(pipeline, *argv, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def receipt_posts(pipeline, key: str) -> list[dict]:
    return [r for r in api_requests(pipeline, "POST", "receipt") if r["params"].get("transaction_id") == key]


def test_a_dead_letter_retried_by_two_people_at_once_is_sent_once(pipeline):
    pipeline.env["RETRY_MAX_ATTEMPTS"] = "2"
    pipeline.sandbox.set_faults(fail_rate=1.0)
    pipeline.start_worker()
    pipeline.enqueue("receipt.create", example("receipt.create", transaction_id="R-TWICE"))
    pipeline.wait_for_state("receipt.create", "R-TWICE", "dead")
    pipeline.sandbox.set_faults(fail_rate=0.0)
    assert [r["status"] for r in receipt_posts(pipeline, "R-TWICE")] == [500, 500]

    report = wms_relay_json(pipeline, "status")
    assert report["dead_letters"]["count"] == 1 and len(report["workers"]) == 1
    assert report["scheduler"]["alive"] and [a["flag"] for a in report["attention"]] == ["dead_letters"]
    for role in ("worker", "scheduler"):  # the real processes' heartbeats, as a probe reads them
        probe = wms_relay(pipeline, "health", role)
        assert probe.returncode == 0 and probe.stdout.startswith("OK: "), probe.stdout + probe.stderr
    letters = wms_relay_json(pipeline, "dead", "list")["dead_letters"]
    assert [(letter["key"], letter["reason"]) for letter in letters] == [("R-TWICE", "exhausted")]

    retry = [sys.executable, "-m", "worker.cli", "dead", "retry", letters[0]["id"], "--reason",
             "Trademax is back", "--json", "--actor"]
    people = [subprocess.Popen([*retry, who], cwd=ROOT, env=pipeline.env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for who in ("alice", "bob")]
    summaries = []
    for person in people:
        out, err = person.communicate(timeout=120)
        assert person.returncode == 0, err
        summaries.append(json.loads(out)["summary"])
    assert sorted((s["retried"], s["skipped"]) for s in summaries) == [(0, 1), (1, 0)]

    pipeline.wait_for_state("receipt.create", "R-TWICE", "delivered")
    wait_until(lambda: pipeline.redis().llen("trademax.receipt") == 0, 30, "the receipt queue to drain")
    assert [r["status"] for r in receipt_posts(pipeline, "R-TWICE")] == [500, 500, 200]
    assert [r["transaction_id"] for r in pipeline.sandbox.state()["receipts"]] == ["R-TWICE"]

    view = wms_relay_json(pipeline, "event", "receipt.create", "R-TWICE")
    assert view["state"] == "delivered" and view["attempts"] == 3 and view["result"]["receipt_id"]
    reopened = [h for h in view["history"] if h["from"] == "dead"]
    assert len(reopened) == 1 and reopened[0]["actor"] in ("alice", "bob")
    assert "Trademax is back" in reopened[0]["reason"]
    assert view["dead_letter"]["status"] == "retried"
    # The worker's attempt tally reaches the store with its heartbeat (every few seconds), for the metrics.
    from worker.store.attempt_counts import AttemptCounts

    counts = AttemptCounts(pipeline.redis())

    def receipt():
        return {(o, s): n for (_, op, o, s), n in counts.attempts().items() if op == "receipt.create"}

    wait_until(lambda: sum(receipt().values()) == 3, 30, "the worker's attempt counts in the store")
    assert receipt()[("delivered", "200")] == 1
    assert sum(n for (o, s), n in receipt().items() if s == "500") == 2
    after = wms_relay_json(pipeline, "status")
    assert after["dead_letters"]["count"] == 0 and after["delivered_last_hour"] == 1
    nothing = wms_relay(pipeline, "dead", "retry", "--all")
    assert nothing.returncode == 0
    store = url_without_password(pipeline.redis_server.url)  # the test server's password is never printed
    assert nothing.stdout.splitlines() == [f"Store: {store} (REDIS_URL)",
                                           "Nothing to do: no open dead letters match."]


def test_uncertain_adjustments_are_settled_as_the_person_who_checked_trademax_says(pipeline):
    pipeline.start_worker()
    pipeline.sandbox.set_faults(timeout_after_apply_rate=1.0)
    for key in ("rel-gone", "rel-there"):
        pipeline.enqueue("stock.adjust", example("stock.adjust", event_id=key, type="relative", quantity=4,
                                                 reason=2))
        pipeline.wait_for_state("stock.adjust", key, "uncertain")
    pipeline.sandbox.set_faults(timeout_after_apply_rate=0.0)
    listed = wms_relay_json(pipeline, "uncertain", "list")["uncertain"]
    assert sorted(u["id"] for u in listed) == ["stock.adjust:rel-gone", "stock.adjust:rel-there"]
    patches_before = len(api_requests(pipeline, "PATCH", "stock-adjustment"))

    there = wms_relay(pipeline, "uncertain", "resolve", "stock.adjust:rel-there", "--delivered",
                      "--reason", "seen in Trademax", "--actor", "dana")
    assert there.returncode == 0 and "Summary: 1 resolved, 0 skipped, 0 failed." in there.stdout
    gone = wms_relay(pipeline, "uncertain", "resolve", "stock.adjust:rel-gone", "--resend",
                     "--reason", "not in Trademax's log", "--actor", "dana")
    assert gone.returncode == 0, gone.stderr
    pipeline.wait_for_state("stock.adjust", "rel-gone", "delivered")
    assert pipeline.state("stock.adjust", "rel-there") == "delivered"
    assert len(api_requests(pipeline, "PATCH", "stock-adjustment")) == patches_before + 1
    assert len(pipeline.sandbox.state()["stock_adjustments"]) == 3  # two timed out after applying, one resent
    assert wms_relay_json(pipeline, "uncertain", "list")["uncertain"] == []
    history = pipeline.record("stock.adjust", "rel-there").history
    assert history[-1]["actor"] == "dana" and "seen in Trademax" in history[-1]["reason"]
