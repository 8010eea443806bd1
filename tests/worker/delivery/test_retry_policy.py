"""The retry policy is arithmetic: called with numbers and a seeded random generator, never a clock."""
from __future__ import annotations

import random
import statistics

import pytest

from worker.delivery.retry_policy import (
    RetryPolicy,
    backoff_ceiling,
    compute_backoff,
    next_retry_delay,
)
from worker.settings import Settings


def test_ceiling_doubles_from_base_until_the_cap():
    ceilings = [backoff_ceiling(n, base=1.0, cap=60.0) for n in range(1, 9)]
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_huge_attempt_numbers_do_not_overflow():
    assert backoff_ceiling(10_000, base=1.0, cap=3600.0) == 3600.0
    assert backoff_ceiling(1024, base=1e300, cap=5.0) == 5.0
    assert 0.0 <= compute_backoff(10**9, base=2.0, cap=30.0, rng=random.Random(1)) <= 30.0


def test_attempt_numbers_start_at_one():
    with pytest.raises(ValueError):
        compute_backoff(0, base=1.0, cap=10.0, rng=random.Random(1))


def test_full_jitter_spreads_delays_over_the_whole_range():
    rng = random.Random(7)
    delays = [compute_backoff(6, base=1.0, cap=3600.0, rng=rng) for _ in range(5000)]
    assert min(delays) >= 0.0 and max(delays) <= 32.0
    # Uniform on [0, 32]: some land near each end, and the mean is near the middle.
    assert min(delays) < 1.0 and max(delays) > 31.0
    assert 15.0 < statistics.fmean(delays) < 17.0


def test_same_seed_same_delays():
    first = [compute_backoff(n, base=1.0, cap=100.0, rng=random.Random(42)) for n in range(1, 20)]
    second = [compute_backoff(n, base=1.0, cap=100.0, rng=random.Random(42)) for n in range(1, 20)]
    assert first == second


def test_retry_after_is_a_floor_with_jitter_above_it():
    policy = RetryPolicy(base=1.0, cap=3600.0, max_attempts=10)
    rng = random.Random(3)
    delays = [next_retry_delay(1, policy, rng, retry_after=30.0) for _ in range(2000)]
    assert min(delays) >= 30.0
    # Spread above the floor (up to a tenth of it here), so throttled events do not return together.
    assert max(delays) <= 33.0
    assert len({round(d, 3) for d in delays}) > 1000


def test_retry_after_shorter_than_our_backoff_does_not_speed_us_up():
    policy = RetryPolicy(base=1.0, cap=3600.0, max_attempts=100)
    for seed in range(200):
        ours = compute_backoff(20, base=1.0, cap=3600.0, rng=random.Random(seed))
        with_header = next_retry_delay(20, policy, random.Random(seed), retry_after=2.0)
        assert with_header >= ours


def test_negative_retry_after_is_treated_as_zero():
    policy = RetryPolicy(base=1.0, cap=10.0, max_attempts=5)
    assert next_retry_delay(1, policy, random.Random(1), retry_after=-50) >= 0.0


def test_exhausted_after_max_attempts():
    policy = RetryPolicy(base=1.0, cap=10.0, max_attempts=3)
    assert [policy.exhausted(n) for n in (1, 2, 3, 4)] == [False, False, True, True]


def test_policy_from_settings():
    settings = Settings(retry_base_seconds=0.5, retry_cap_seconds=120.0, retry_max_attempts=7)
    assert RetryPolicy.from_settings(settings) == RetryPolicy(base=0.5, cap=120.0, max_attempts=7)


def test_invalid_policy_is_refused():
    with pytest.raises(ValueError):
        RetryPolicy(base=0.0)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_defaults_ride_out_a_day_long_outage():
    """Over 2,000 seeded simulations of the DEFAULT policy (base 1 s, cap 3600 s, 80 attempts), the time
    from the first attempt to the last one (the 79 delays before exhaustion) always exceeds 24 h.

    Measured with seed 20240601: minimum 25.4 h, mean 34.0 h (the cap is reached at attempt 13; the
    other 67 delays are uniform on [0, 1 h]).  A transient outage of up to a day never turns an event
    into a dead letter."""
    policy = RetryPolicy.from_settings(Settings())
    assert policy == RetryPolicy(base=1.0, cap=3600.0, max_attempts=80)
    rng = random.Random(20240601)
    totals = []
    for _ in range(2000):
        attempt, total = 1, 0.0
        while not policy.exhausted(attempt):
            total += next_retry_delay(attempt, policy, rng)
            attempt += 1
        assert attempt == 80
        totals.append(total)
    day = 24 * 3600
    assert min(totals) > day, f"minimum {min(totals) / 3600:.1f} h"
    assert 33 * 3600 < statistics.fmean(totals) < 35 * 3600
