"""When to try a failed delivery again: exponential backoff with full jitter.  Pure: no I/O, no clock.

Attempt ``n`` (1-based) has just failed transiently.  If :meth:`RetryPolicy.exhausted` says ``n`` was the
last allowed attempt, the event becomes a dead letter; otherwise the next attempt is due after
:func:`next_retry_delay` seconds.  Full jitter (a delay drawn uniformly from 0 up to the exponential
ceiling) spreads the retries of many events that failed together — an outage ends and the backlog does
not arrive at the destination as one wave.  Randomness is injected (``random.Random``) so tests and
simulations are repeatable.

With the defaults (base 1 s, cap 1 h, 80 attempts) the 79 delays add up to ~34 h on average and, in
2,000 seeded simulations, never less than ~25 h: a day-long outage is ridden out
(``tests/worker/delivery/test_retry_policy.py`` checks it).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

# 2.0 ** 1023 is the largest power of two a float holds; past it the ceiling is the cap anyway.
_MAX_EXPONENT = 1023


def backoff_ceiling(attempt: int, *, base: float, cap: float) -> float:
    """The largest delay after failed attempt ``attempt``: ``min(cap, base * 2 ** (attempt - 1))``.

    Safe for any attempt number (no float overflow for huge ones)."""
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt}")
    exponent = attempt - 1
    if exponent >= _MAX_EXPONENT:
        return cap
    return min(cap, base * 2.0 ** exponent)


def compute_backoff(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter delay in seconds after failed attempt ``attempt``: uniform in [0, ceiling]."""
    return rng.uniform(0.0, backoff_ceiling(attempt, base=base, cap=cap))


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff base and cap (seconds) and the total number of attempts an event gets (the first included)."""

    base: float = 1.0
    cap: float = 3600.0
    max_attempts: int = 80

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap <= 0:
            raise ValueError("retry base and cap must be positive")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    @classmethod
    def from_settings(cls, settings) -> "RetryPolicy":
        """The policy configured by RETRY_BASE_SECONDS, RETRY_CAP_SECONDS and RETRY_MAX_ATTEMPTS."""
        return cls(
            base=float(settings.retry_base_seconds),
            cap=float(settings.retry_cap_seconds),
            max_attempts=int(settings.retry_max_attempts),
        )

    def exhausted(self, attempt: int) -> bool:
        """True when failed attempt ``attempt`` was the last one allowed: dead letter, no more retries."""
        return attempt >= self.max_attempts

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds before the next attempt; see :func:`next_retry_delay`."""
        return next_retry_delay(attempt, self, rng, retry_after)


def next_retry_delay(
    attempt: int,
    policy: RetryPolicy,
    rng: random.Random,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait before the attempt after failed attempt ``attempt``.

    ``retry_after`` (seconds, from the destination's ``Retry-After`` header) is a floor: the delay is never
    shorter.  Events throttled together would otherwise all come back at exactly ``retry_after``, so a
    little jitter is added above it (up to a tenth of it, at least ``base``, at most ``cap``); and when
    our own backoff is already longer, it wins — a polite server does not make us retry faster than we
    would have."""
    backoff = compute_backoff(attempt, base=policy.base, cap=policy.cap, rng=rng)
    if retry_after is None:
        return backoff
    floor = max(0.0, float(retry_after))
    spread = min(policy.cap, max(policy.base, 0.1 * floor))
    return max(floor + rng.uniform(0.0, spread), backoff)
