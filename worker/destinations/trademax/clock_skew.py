"""A worker clock too far from Trademax's is a configuration error, not a failure of the event.

Every request carries a signed Unix ``timestamp``; Trademax's API document ("Authentication") does not say
how far from its own clock one may be — the sandbox, like common practice, allows :data:`ALLOWED_SKEW_SECONDS`
(300 s) and answers 401 "param timestamp has an invalid value" beyond it.  Classified as any 401, that
turned every event into a permanent dead letter.  Instead a 401 is a :class:`ClockSkewError` when its
answer names the timestamp, or when the answer's ``Date`` header is more than the allowed skew from our
clock: Trademax's circuit opens for it as a configuration fault (worker.flow.circuit: one Sentry report,
``wms-relay status`` flags ``clock_skew``), the event waits parked (not counted towards the attempt
limit), one probe a minute — timed by the scheduler's clock, not the worker's — tells when the clock is
right, and the worker logs an ERROR naming the skew, once a minute at most.  Fix the clock (NTP) and
sending resumes by itself.

Pure apart from the alert's log line; the caller passes the clock.
"""
from __future__ import annotations

import email.utils
import logging
import threading
import time
from datetime import timezone
from typing import Iterable

ALLOWED_SKEW_SECONDS = 300.0
ALERT_EVERY_SECONDS = 60.0
log = logging.getLogger("wms_relay.configuration")
_last_alert = [0.0]
_alert_lock = threading.Lock()


def server_time(date_header: str | None) -> float | None:
    """The ``Date`` header as Unix seconds, or None."""
    if not date_header:
        return None
    try:
        when = email.utils.parsedate_to_datetime(date_header)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def refused_for_clock(status: int, messages: Iterable[str], date_header: str | None,
                      now: float) -> tuple[bool, float | None]:
    """(is this 401 our clock's fault?, our clock minus Trademax's in seconds, if the answer dated itself)."""
    if status != 401:
        return False, None
    theirs = server_time(date_header)
    skew = None if theirs is None else now - theirs
    names_timestamp = any("timestamp" in str(message).lower() for message in messages)
    return names_timestamp or (skew is not None and abs(skew) > ALLOWED_SKEW_SECONDS), skew


def describe(skew: float | None) -> str:
    off = "" if skew is None else f" (this machine's clock is {skew:+.0f} s off Trademax's)"
    return (f"configuration error: Trademax refused the request's timestamp{off}; the allowed difference is "
            f"about {ALLOWED_SKEW_SECONDS:.0f} s — fix this machine's clock (NTP). Sending waits and resumes "
            "by itself once the clock is right")


def alert(skew: float | None, clock=time.monotonic) -> None:
    """Log the configuration error at ERROR, at most once a minute per process."""
    with _alert_lock:
        if clock() - _last_alert[0] < ALERT_EVERY_SECONDS and _last_alert[0]:
            return
        _last_alert[0] = clock()
    log.error("%s", describe(skew))
