"""What a worker records of its destinations' configuration (worker.observe.configuration), and what
readers make of the records: exactly the whitelist and never a secret or a base URL; none recorded, a
live worker's record, a stale one (no worker alive), and live workers that disagree — against a real
valkey-server."""
from __future__ import annotations

import json

from tests.fixtures.clock import Clock
from tests.fixtures.sandbox import CREDENTIALS
from worker.observe.configuration import FLOW_FIELDS, configuration_of, read_configuration, recorded_text
from worker.settings import FlowLimits, Settings
from worker.store.heartbeats import STALE_AFTER_SECONDS, Heartbeats

SECRETS = {"TRADEMAX_API_KEY": "tm-key-canary-17", "TRADEMAX_SECRET": "tm-secret-canary-23",
           **{name: f"{value}-canary" for api in CREDENTIALS.values() for name, value in api.items()}}


def settings_with(**env: str) -> Settings:
    return Settings.from_env({**SECRETS, **env})


STOCK2SHOP_ON = {"STOCK2SHOP_BASE_URL": "https://relay:url-password-canary@api.stock2shop.example/",
                 "STOCK2SHOP_LOCATIONS": "nw=Main,se=South", "STOCK2SHOP_MAX_RPS": "2"}


def test_a_record_is_the_whitelist_and_nothing_else():
    settings = settings_with(**STOCK2SHOP_ON, KACHING_BATCH_MAX="0", TRADEMAX_PROBE_SECONDS="45")
    recorded = configuration_of(settings)
    assert set(recorded) == {"version", "destinations"}
    assert list(recorded["destinations"]) == ["trademax", "kaching", "stocktrim", "stock2shop"]
    for part in recorded["destinations"].values():
        assert set(part) == {"on", "locations", "batched", *FLOW_FIELDS}
    stock2shop, kaching = recorded["destinations"]["stock2shop"], recorded["destinations"]["kaching"]
    assert stock2shop == {"on": True, "locations": {"nw": "Main", "se": "South"}, "batched": True,
                          "max_rps": 2.0, "probe_seconds": 30.0, "circuit_failures": 10,
                          "circuit_window_seconds": 60.0, "batch_max": 500, "batch_seconds": 1.0}
    assert kaching["on"] is False and kaching["batched"] is False and kaching["locations"] == {}
    assert recorded["destinations"]["trademax"]["locations"] is None  # it routes by no warehouse
    assert recorded["destinations"]["trademax"]["probe_seconds"] == 45.0
    text = recorded_text(settings)
    assert json.loads(text) == recorded
    for needle in (*SECRETS.values(), "url-password-canary", "api.stock2shop.example", "dashboard.trademax"):
        assert needle not in text


def test_nothing_recorded_is_nothing_known(store_client):
    found = read_configuration(store_client, Clock())
    assert found.current is None and not found.stale
    assert found.is_on("stock2shop") is None and found.limits("stock2shop") is None
    assert found.differences() == [] and found.distinct_alive() == 0
    assert found.to_dict()["recorded_by"] is None


def test_a_live_workers_record_then_a_stale_one_after_it_stopped(store_client):
    clock = Clock()
    beats = Heartbeats(store_client, clock)
    beats.beat("worker", "relay-1@a", recorded_text(settings_with(**STOCK2SHOP_ON)))
    clock.advance(3)
    found = read_configuration(store_client, clock)
    assert (found.current.node, found.current.age, found.current.alive) == ("relay-1@a", 3.0, True)
    assert found.is_on("stock2shop") is True and found.is_on("kaching") is False
    assert found.limits("stock2shop") == FlowLimits(max_rps=2.0, batch_max=500)
    assert not found.stale and found.distinct_alive() == 1

    beats.leave("worker", "relay-1@a")  # a clean stop: the beat goes, the record stays, ageing
    clock.advance(3600)
    found = read_configuration(store_client, clock)
    assert found.stale and found.current.age == 3603.0 and found.is_on("stock2shop") is True
    assert found.distinct_alive() == 0 and found.to_dict()["stale"] is True


def test_a_worker_that_stopped_beating_goes_stale_and_a_newer_live_record_wins(store_client):
    clock = Clock()
    beats = Heartbeats(store_client, clock)
    beats.beat("worker", "relay-old@a", recorded_text(settings_with()))
    clock.advance(STALE_AFTER_SECONDS + 1)
    assert read_configuration(store_client, clock).stale
    beats.beat("worker", "relay-new@b", recorded_text(settings_with(**STOCK2SHOP_ON)))
    found = read_configuration(store_client, clock)
    assert found.current.node == "relay-new@b" and not found.stale and found.differences() == []
    assert [(r.node, r.alive) for r in found.records] == [("relay-new@b", True), ("relay-old@a", False)]


def test_live_workers_that_disagree_are_said_to(store_client):
    clock = Clock()
    beats = Heartbeats(store_client, clock)
    beats.beat("worker", "relay-1@a", recorded_text(settings_with(**STOCK2SHOP_ON)))
    beats.beat("worker", "relay-2@b", recorded_text(settings_with()))
    found = read_configuration(store_client, clock)
    assert found.distinct_alive() == 2
    assert "Stock2Shop on: yes at relay-1@a; no at relay-2@b" in found.differences()
    assert "Stock2Shop max_rps: 2 at relay-1@a; 1 at relay-2@b" in found.differences()
    assert found.to_dict()["differences"] == found.differences()


def test_a_record_is_forgotten_a_day_after_its_worker_went_silent(store_client):
    clock = Clock()
    beats = Heartbeats(store_client, clock)
    beats.beat("worker", "relay-1@a", recorded_text(settings_with()))
    clock.advance(86400 + 1)
    beats.beat("worker", "relay-2@b", recorded_text(settings_with()))
    assert [r.name for r in beats.configurations("worker")] == ["relay-2@b"]
    assert store_client.hkeys("wms:heartbeat:worker:configuration") in ([b"relay-2@b"], ["relay-2@b"])
