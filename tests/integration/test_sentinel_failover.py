"""REDIS_URL=sentinel://... follows a failover, for the broker and the stores alike.  A real primary, a
replica and three Sentinels (valkey-server --sentinel); 1,000 receipts enqueued through the Sentinels;
in the middle of their delivery the Sentinels switch the primary to the replica (SENTINEL FAILOVER).
Every event ends delivered (0 lost), and the sandbox Trademax applied each exactly once (one 200 answer
per transaction_id in its request log: a resend would have been a second request).  The broker channel
behind Sentinel screens raw messages as the plain one does (issue 9): a malformed message pushed onto a
queue after the failover becomes a ``malformed_message`` dead letter, and the workers go on."""
from __future__ import annotations

import os
from collections import Counter

import pytest

from tests.fixtures.pipeline import FAST_SETTINGS, Pipeline, wait_until
from tests.fixtures.sentinel import SentinelGroup
from benchmarks.poison import POISON
from tests.integration.test_delivery_pipeline import api_requests, example
from worker.destinations.table import delivery_ref
from worker.store.dead_letters import DeadLetters

pytestmark = pytest.mark.integration

EVENTS = int(os.environ.get("WMS_RELAY_FAILOVER_EVENTS", "1000"))


class CurrentPrimary:
    """What the Pipeline helpers read the store through: whichever server is the primary now."""

    def __init__(self, group: SentinelGroup) -> None:
        self.group = group

    @property
    def url(self) -> str:
        return self.group.primary_url()


@pytest.fixture
def group(tmp_path):
    directory = tmp_path / "sentinel"
    directory.mkdir()
    started = SentinelGroup(directory)
    try:
        yield started.start()
    finally:
        started.stop()


def test_a_failover_in_the_middle_of_1000_events_loses_none_and_applies_none_twice(group, sandbox, tmp_path):
    sb = sandbox()
    env = {**os.environ, **FAST_SETTINGS, "REDIS_URL": group.url, "TRADEMAX_BASE_URL": sb.base_url,
           "TRADEMAX_API_KEY": sb.api_key, "TRADEMAX_SECRET": sb.secret,
           "WMS_RELAY_VAR_DIR": str(tmp_path / "var")}
    env.pop("SENTRY_DSN", None)
    pipeline = Pipeline(env=env, redis_server=CurrentPrimary(group), sandbox=sb, log_dir=tmp_path)
    try:
        pipeline.start_scheduler()
        pipeline.start_worker()
        pipeline.start_worker()
        sb.set_faults(latency_ms=20)
        keys = [f"R-FO-{n}" for n in range(EVENTS)]
        events = [example("receipt.create", transaction_id=k) for k in keys]
        lines = pipeline.enqueue("receipt.create", events)
        assert Counter(line["state"] for line in lines) == {"accepted": EVENTS}

        def delivered() -> int:
            return pipeline.ledger().final_totals()["delivered"]

        wait_until(lambda: delivered() >= EVENTS // 4, 120, "a quarter delivered")
        before, old_primary = delivered(), group.primary()
        new_primary = group.failover()
        assert new_primary != old_primary and before < EVENTS, "the failover came in the middle"

        ledger = pipeline.ledger()
        pipeline.redis().lpush("trademax.receipt", POISON["not_json"]("trademax.receipt", 0.0))
        wait_until(lambda: delivered() >= EVENTS, 240, f"all {EVENTS} delivered after the failover")
        letters = DeadLetters(pipeline.redis(), delivery_ref=delivery_ref)
        wait_until(lambda: [letter for letter in letters.list() if letter.reason == "malformed_message"], 60,
                   "the malformed dead letter")
        states = Counter(ledger.get("receipt.create", k).state for k in keys)
        assert states == {"delivered": EVENTS}, states
        applied = Counter(r["params"]["transaction_id"] for r in api_requests(pipeline, "POST", "receipt")
                          if r["status"] == 200)
        assert set(applied) == set(keys) and max(applied.values()) == 1
        assert len(sb.state()["receipts"]) == EVENTS
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{pipeline.logs()}") from None
    finally:
        pipeline.stop()
