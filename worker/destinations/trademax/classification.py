"""What a Trademax answer (or the lack of one) means for delivery: the one place that decides.

Pure functions over plain values, so the whole policy is a table test:

- :func:`classify_reply` — an HTTP status and Trademax ``error_code`` → a :class:`Classification`;
- :func:`classify_transport_failure` — a requests exception → a :class:`Classification` (transient when the
  request provably never left, outcome-unknown when it may have been sent);
- :func:`parse_retry_after` — a ``Retry-After`` header (delta-seconds or HTTP-date) → seconds, using the
  caller's clock.

- :func:`classification_of` — a failed call's error → the Classification it stands for (what the
  attempt log records as the attempt's ``outcome``).

The rules (Trademax's API documentation, sections "Http status codes" and "Error codes"; where it is
silent, the decisions below, explained in the comments of each function):

=====================================================  ===============
answer                                                 classification
=====================================================  ===============
error_code 452 (duplicate transaction_id), any status  DUPLICATE (delivered: Trademax has it)
status 5xx, 408, 429                                   TRANSIENT
error_code 500–599 (server-side), any status           TRANSIENT
2xx with error_code 0, or with no ``error`` envelope   DELIVERED
2xx with any other error_code (1, 401–451, 453–499…)   PERMANENT
any other status (other 4xx, 3xx, 1xx)                 PERMANENT
connect refused / DNS / connect timeout / TLS          TRANSIENT
read timeout, connection lost after sending            OUTCOME_UNKNOWN
=====================================================  ===============
"""
from __future__ import annotations

from worker.destinations.contract import Classification, classification_of  # noqa: F401 (re-exported)
# Every destination reads transport failures and Retry-After alike (re-exported for Trademax's tests).
from worker.destinations.transport import (  # noqa: F401
    classify_transport_failure,
    parse_retry_after,
    transport_cause,
)


DUPLICATE_ERROR_CODE = 452
TRANSIENT_STATUSES = frozenset({408, 429})


def classify_reply(status: int, error_code: int | None) -> Classification:
    """Classify one HTTP answer.  ``error_code`` is None when the body had no ``error`` envelope."""
    if error_code == DUPLICATE_ERROR_CODE:
        return Classification.DUPLICATE
    if status >= 500 or status in TRANSIENT_STATUSES:
        return Classification.TRANSIENT
    if error_code is not None and 500 <= error_code <= 599:
        return Classification.TRANSIENT
    if 200 <= status < 300:
        # The order-lines answer has no envelope at all: a 2xx without one is a success.  Any other
        # code with a 2xx (1 "general error", 401–451, 453–499, undocumented ones) is Trademax saying
        # no; a person should look rather than the pipeline retrying for a day.
        return Classification.DELIVERED if error_code in (0, None) else Classification.PERMANENT
    # Other 4xx; also 3xx (redirects are never followed: a POST must not silently become a GET, and a
    # moved base URL is a configuration fix) and anything stranger.
    return Classification.PERMANENT


def classify_unreadable_reply(status: int) -> Classification:
    """Classify an answer whose body was not JSON (an HTML error page, a truncated or garbled body).

    The status still speaks for 5xx/408/429 (transient) and 4xx (permanent).  A 2xx with an unreadable
    body is outcome-unknown, not transient: Trademax said "success" and probably applied the request,
    and resending a relative stock adjustment on that guess would apply it twice.
    """
    if 200 <= status < 300:
        return Classification.OUTCOME_UNKNOWN
    return classify_reply(status, None)
