"""What every destination's HTTP client shares: the pooled session (connect retries only), how a
transport failure is classified, ``Retry-After``, and a transport error described without its URL.

- :func:`build_session` — one ``requests.Session`` per client, shared by a process's threads;
- :func:`classify_transport_failure` — a requests exception → a :class:`Classification` (transient when the
  request provably never left, outcome-unknown when it may have been sent);
- :func:`parse_retry_after` — a ``Retry-After`` header (delta-seconds or HTTP-date) → seconds, using the
  caller's clock;
- :func:`describe` — ``ConnectionError: NewConnectionError: ...`` without the URL (which may carry a
  credential: ka-ching's api key, Trademax's signed query, Stock2Shop's token).
"""
from __future__ import annotations

import email.utils
import http.cookiejar
from datetime import timezone

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
)
from urllib3.util.retry import Retry

from worker import __version__
from worker.destinations.contract import Classification

USER_AGENT = f"wms-relay/{__version__}"
POOL_MAXSIZE = 64  # one connection per worker thread, with room to spare
CONNECT_RETRIES = 1  # one immediate reconnect: connect failures happen before anything is sent


def build_session(pool_maxsize: int = POOL_MAXSIZE) -> requests.Session:
    """A session whose adapters pool connections for a threads pool and retry connects only."""
    retries = Retry(
        total=CONNECT_RETRIES, connect=CONNECT_RETRIES, read=0, redirect=0, status=0, other=0,
        allowed_methods=None, backoff_factor=0, raise_on_status=False, respect_retry_after_header=False,
    )
    session = requests.Session()
    # No proxies, CA bundle or .netrc credentials from the process environment: configuration comes from
    # Settings only (and the per-request environment lookup costs a quarter of the client's CPU).
    session.trust_env = False
    # The API is stateless: keep no cookies, so no state is shared between calls and threads.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=retries)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


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


def describe(exc: BaseException) -> str:
    """``ConnectionError: NewConnectionError: ... Connection refused`` — the wrapper and what it wraps,
    without requests' "Max retries exceeded with url: ..." (the URL carries the signed query)."""
    cause = transport_cause(exc)
    if cause is None or cause is exc:
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {type(cause).__name__}: {cause}"
