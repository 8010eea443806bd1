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

import email.utils
import enum
from datetime import timezone

import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
)

from worker.errors import OutcomeUnknownError, TrademaxError, TransientError


class Classification(str, enum.Enum):
    DELIVERED = "delivered"
    DUPLICATE = "duplicate"
    TRANSIENT = "transient"
    OUTCOME_UNKNOWN = "outcome_unknown"
    PERMANENT = "permanent"

    @property
    def delivered(self) -> bool:
        return self in (Classification.DELIVERED, Classification.DUPLICATE)


def classification_of(error: TrademaxError) -> Classification:
    """The classification a failed call's error stands for: what its attempt's ``outcome`` records."""
    if isinstance(error, TransientError):
        return Classification.TRANSIENT
    if isinstance(error, OutcomeUnknownError):
        return Classification.OUTCOME_UNKNOWN
    return Classification.PERMANENT


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


# requests raises these before anything went on the wire: the URL or a header could not be built.
_NEVER_SENT = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.URLRequired,
)


def transport_cause(exc: BaseException) -> BaseException | None:
    """The urllib3/http.client exception a requests exception wraps (unwrapping MaxRetryError)."""
    cause = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc.__context__
    if isinstance(cause, MaxRetryError):
        cause = cause.reason
    return cause


def classify_transport_failure(exc: BaseException) -> Classification:
    """Classify an exception from ``requests`` (no HTTP answer was read).

    requests raises ``ConnectionError`` both for a refused connect (nothing sent: transient) and for a
    connection dropped mid-response (sent: outcome unknown); the wrapped urllib3 exception tells them
    apart.  Anything not recognised counts as possibly sent.
    """
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Classification.TRANSIENT
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return Classification.OUTCOME_UNKNOWN
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return Classification.OUTCOME_UNKNOWN
    if isinstance(exc, _NEVER_SENT):
        return Classification.PERMANENT
    if isinstance(exc, (requests.exceptions.SSLError, requests.exceptions.ProxyError)):
        return Classification.TRANSIENT  # handshake with the server or the proxy: before the request
    if isinstance(exc, requests.exceptions.RetryError):
        return Classification.TRANSIENT  # urllib3 gave up on retryable statuses (we configure none)
    if isinstance(exc, requests.exceptions.ConnectionError):
        cause = transport_cause(exc)
        # NameResolutionError is a NewConnectionError, which is a ConnectTimeoutError in urllib3 2.
        if isinstance(cause, (NewConnectionError, ConnectTimeoutError)):
            return Classification.TRANSIENT
        # ProtocolError (RemoteDisconnected, ConnectionResetError, IncompleteRead), a ReadTimeoutError
        # while reading the body, a bare OSError: the request may have been sent.
        return Classification.OUTCOME_UNKNOWN
    return Classification.OUTCOME_UNKNOWN


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or None when absent or unreadable.

    Accepts delta-seconds (``120``; decimals tolerated) and an HTTP-date (``Wed, 21 Oct 2015 07:28:00
    GMT``), which is measured against ``now`` (Unix seconds from the caller's clock).  A date in the
    past means "now": 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and seconds == seconds and seconds != float("inf") else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)  # RFC 9110: HTTP-dates are GMT
    return max(0.0, when.timestamp() - now)
