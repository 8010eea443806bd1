"""The shared rate limit spaces requests evenly, 2% wider than the limit (at most max_rps in any second, plus
one on the edge),
lets a sender reserve a slot at most max_wait away and refuses one further away without taking anything,
lets an unlimited destination through at once, and a Retry-After hold makes everyone wait."""
from __future__ import annotations

import pytest

from worker.flow.rate_limit import RateLimit


@pytest.fixture
def limit(store_client, clock):
    return RateLimit(store_client, "wms:kaching", clock=clock)


def test_slots_are_evenly_spaced_and_reserved_up_to_max_wait(limit):
    waits = [limit.take(10, max_wait=1.0) for _ in range(11)]
    assert [s.taken for s in waits] == [True] * 10 + [False]
    assert [round(s.wait, 3) for s in waits[:10]] == [round(0.102 * n, 3) for n in range(10)]
    assert round(waits[10].wait, 3) == 1.02  # refused: the slot after the tenth, nothing taken
    assert round(limit.take(10, max_wait=5.0).wait, 3) == 1.02  # that same slot is still free


def test_slots_free_up_as_time_passes(limit, clock):
    assert limit.take(2).wait == 0
    assert limit.take(2).wait == pytest.approx(0.51)
    clock.advance(2.0)
    assert limit.take(2).wait == 0


def test_no_limit_lets_everything_through_at_once(limit):
    assert all(s.taken and s.wait == 0 for s in (limit.take(0) for _ in range(100)))
    assert limit.next_slot() is None


def test_a_hold_makes_every_sender_wait_limited_or_not(limit, clock):
    assert limit.hold_until(clock() + 30)
    assert not limit.hold_until(clock() + 10)  # a shorter hold does not shorten it
    refused = limit.take(0, max_wait=1.0)
    assert not refused.taken and refused.wait == pytest.approx(30)
    clock.advance(29.5)
    assert limit.take(0).wait == pytest.approx(0.5)
    assert limit.take(4).wait == pytest.approx(0.5)  # limited: the slot after the hold ...
    assert limit.take(4).wait == pytest.approx(0.755)  # ... and evenly on from there


def test_current_rate_counts_whole_past_seconds(limit, clock):
    clock.now = 1000.0
    for _ in range(30):
        limit.take(0)
    clock.now = 1001.0
    for _ in range(10):
        limit.take(0)
    clock.now = 1002.5
    assert limit.sent_per_second(seconds=2) == pytest.approx(20.0)
    assert limit.sent_per_second(seconds=10) == pytest.approx(4.0)
