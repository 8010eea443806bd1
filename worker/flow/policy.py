"""What a destination's answers mean for its flow (pure: no Redis, no clock, no I/O).

==========================================  ==================================================================
the answer (or its absence)                 what it does to the destination's flow
==========================================  ==================================================================
any answer but a 5xx                        ``ok``: the destination is up (a 4xx refuses the request, not the
                                            service; a 408 or 429 asks us to slow down, which a service that
                                            is down does not; a 200 that confirms less than was sent,
                                            UnconfirmedError, is an answer) — its consecutive failures start
                                            again from 0
no connection, connect timeout (no status)  ``failed``: counts towards opening the circuit
a read timeout, connection lost mid-answer  ``failed`` (outcome unknown: no answer came)
5xx                                         ``failed``
a request we could not even build           ``neutral`` (nothing reached the destination)
a 401 for our clock (ClockSkewError)        ``clock_skew``: a configuration fault — the circuit opens at once
                                            and stays open until a probe is answered; the probe goes out
                                            once a minute by the scheduler's clock (worker.flow.circuit)

A 429 or 503 with ``Retry-After`` also holds the whole destination that long (:func:`hold_seconds`).
==========================================  ==================================================================

A refusal *for its content* (400, 422) of a batch of several items is split in halves to find the
item(s) refused (:func:`refused_for_content`); any other refusal (401, 403, 404, ...) would refuse every
half alike, so the batch fails whole.
"""
from __future__ import annotations

from typing import Any

from worker.errors import (
    ClockSkewError, OutcomeUnknownError, PermanentError, TransientError, UnconfirmedError)

OK, FAILED, NEUTRAL = "ok", "failed", "neutral"
# Configuration faults: answers that say *we* are wrong (not the destination, not the event).  Each opens
# the circuit at once, until the fault is gone; ``wms-relay status`` flags it by its name.
CLOCK_SKEW = "clock_skew"
FAULTS = (CLOCK_SKEW,)
FAULT_TEXT = {CLOCK_SKEW: "it refuses our requests' timestamps: this machine's clock is off"}
HOLDING_STATUSES = (429, 503)
CONTENT_STATUSES = (400, 422)
# A destination never holds itself longer than this on one Retry-After (a broken header must not stop
# a destination for a day: a person can still pause it for longer).
LONGEST_HOLD_SECONDS = 3600.0


def circuit_signal(error: Any) -> str:
    """What the circuit breaker hears of one send — its *signal*: ``ok``, ``failed``, ``neutral`` or a
    configuration fault (``clock_skew``); ``error`` None means delivered.  (Not the attempt's *outcome*,
    which the attempt log records.)"""
    if error is None:
        return OK
    if isinstance(error, ClockSkewError):
        return CLOCK_SKEW
    if isinstance(error, UnconfirmedError):  # it answered (200): the destination is up
        return OK
    if isinstance(error, OutcomeUnknownError):
        return FAILED
    if isinstance(error, TransientError):
        if error.status is None or error.status >= 500:
            return FAILED
        return OK
    if isinstance(error, PermanentError):
        return OK if error.status is not None else NEUTRAL
    return NEUTRAL


def hold_seconds(error: Any) -> float | None:
    """How long a 429 or 503 with ``Retry-After`` holds its whole destination (None: no hold)."""
    if not isinstance(error, TransientError) or error.status not in HOLDING_STATUSES:
        return None
    if error.retry_after is None or error.retry_after <= 0:
        return None
    return min(float(error.retry_after), LONGEST_HOLD_SECONDS)


def refused_for_content(error: Any) -> bool:
    """A whole request refused because of what it carried: splitting it can find the bad item(s)."""
    return isinstance(error, PermanentError) and error.status in CONTENT_STATUSES


# Requests are spaced this much wider than the limit: a request leaves a little after its slot (a thread
# waking, a connection taken from the pool), by a different little each time, and a destination counting
# strictly (Stock2Shop's sliding second) would refuse the one that left on time after one that left late.
SLOT_MARGIN = 0.02


def emission_interval(max_rps: float) -> float:
    """Seconds between two requests at ``max_rps`` (0: no limit), SLOT_MARGIN wider than the limit."""
    return (1.0 + SLOT_MARGIN) / max_rps if max_rps > 0 else 0.0
