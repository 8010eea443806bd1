"""Heartbeats: a beat is fresh for STALE_AFTER_SECONDS on the reader's clock, a clean stop removes it, and a
name silent for a day is forgotten by the next beat."""
from __future__ import annotations

import pytest

from tests.fixtures.clock import Clock
from worker.store.heartbeats import FORGET_AFTER_SECONDS, STALE_AFTER_SECONDS, Heartbeats, node_name


def test_a_beat_is_alive_until_it_goes_stale(store_client):
    clock = Clock()
    beats = Heartbeats(store_client, clock)
    beats.beat("worker", "relay-1@a")
    clock.now += 10
    beats.beat("worker", "relay-2@b")
    assert [(b.name, b.age) for b in beats.alive("worker")] == [("relay-2@b", 0.0), ("relay-1@a", 10.0)]
    clock.now += STALE_AFTER_SECONDS - 9
    assert [b.name for b in beats.alive("worker")] == ["relay-2@b"]
    assert [b.name for b in beats.beats("worker")] == ["relay-2@b", "relay-1@a"]  # remembered, not alive
    assert beats.alive("worker", within=3600) and beats.alive("scheduler") == []


def test_a_clean_stop_leaves_and_a_silent_name_is_forgotten(store_client):
    clock = Clock()
    beats = Heartbeats(store_client, clock)
    beats.beat("scheduler", "scheduler-1@a")
    beats.beat("scheduler", "scheduler-2@a")
    beats.leave("scheduler", "scheduler-1@a")
    assert [b.name for b in beats.beats("scheduler")] == ["scheduler-2@a"]
    clock.now += FORGET_AFTER_SECONDS + 1
    beats.beat("scheduler", "scheduler-3@b")
    assert [b.name for b in beats.beats("scheduler")] == ["scheduler-3@b"]


def test_names_and_roles():
    assert node_name("scheduler", pid=7, host="pod-1") == "scheduler-7@pod-1"
    with pytest.raises(ValueError, match="not 'flower'"):
        Heartbeats(None).leave("flower", "x")
