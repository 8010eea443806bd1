"""What every destination's HTTP client shares: the pooled session (connect retries only), how a
transport failure is classified, ``Retry-After``, and a transport error described without its URL.

- :func:`build_session` — one :class:`PooledSession` (a ``requests.Session``) per client, shared by a
  process's threads;
- :func:`classify_transport_failure` — a requests exception → a :class:`Classification` (transient when the
  request provably never left, outcome-unknown when it may have been sent);
- :func:`parse_retry_after` — a ``Retry-After`` header (delta-seconds or HTTP-date) → seconds, using the
  caller's clock;
- :func:`describe` — ``ConnectionError: NewConnectionError: ...`` without the URL (which may carry a
  credential: ka-ching's api key, Trademax's signed query, Stock2Shop's token).
"""
from __future__ import annotations

import email.utils
import functools
import http.cookiejar
from collections.abc import Mapping
from datetime import timezone
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
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


class PooledSession(requests.Session):
    """A ``requests.Session`` whose :meth:`request` goes the short way for what our clients send.

    ``Session.request`` spends about half of a call's Python (a quarter of a delivery's, issue 21) on
    what :func:`build_session` has turned off: the environment's proxies and ``.netrc``, a cookie jar that
    accepts no cookie (merged into a new jar per call, then searched for the request's cookies),
    redirects (never followed: their next request is computed all the same), hooks (none), and settings
    merged from the session through slow type checks (``typing`` Protocols).  The short way prepares the
    request with the same ``PreparedRequest`` steps and the session's headers merged as requests merges
    them (``merge_setting``: the session's first, ours over them, a None dropped), so the same bytes go on
    the wire (tests/worker/destinations/test_pooled_session.py compares it with
    ``Session.prepare_request``), and sends it through the same adapter (its pool, connect retries and
    exceptions).  A call the short
    way does not cover (redirects followed, auth, cookies, files, a session with other settings) takes
    ``Session.request``."""

    def request(self, method: str, url: Any, params: Any = None, data: Any = None, headers: Any = None,
                timeout: Any = None, allow_redirects: bool = True, **other: Any) -> requests.Response:
        if other or allow_redirects or not self._plain():
            return super().request(method, url, params=params, data=data, headers=headers, timeout=timeout,
                                   allow_redirects=allow_redirects, **other)
        prepared = self.prepare_plain(method, url, params=params, data=data, headers=headers)
        response = self.get_adapter(url=prepared.url).send(
            prepared, stream=False, timeout=timeout, verify=self.verify, cert=self.cert,
            proxies=_without_none(dict(self.proxies)))
        response.content  # read it all: the connection goes back to the pool (Session.send does the same)
        return response

    def prepare_plain(self, method: str, url: str, *, params: Any = None, data: Any = None,
                      headers: Any = None) -> requests.PreparedRequest:
        """What ``Session.prepare_request`` makes of ``Request(method, url, headers, data or {}, params or
        {})`` for this session (no cookies, auth or hooks to merge: :meth:`_plain`)."""
        if headers is None:
            merged = self.headers
        elif isinstance(headers, Mapping):
            merged = CaseInsensitiveDict(self.headers)
            merged.update(headers)
            merged = _without_none(merged)
        else:
            merged = headers  # pairs: requests does not merge them with the session's either
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method.upper())
        params = _without_none(params or {})
        if params or not isinstance(url, str) or "?" in url or "@" in url:
            prepared.prepare_url(url, params)
        else:  # a path alone (Trademax's POST and PATCH): as requests quotes it, worked out once per URL
            prepared.url = _prepared_url(url)
        prepared.prepare_headers(merged)
        prepared.prepare_body(data or {}, None, None)
        if "@" in prepared.url:  # credentials in the URL (user:password@host), as requests takes them
            prepared.prepare_auth(None, url)
        return prepared

    def _plain(self) -> bool:
        """Nothing of this session's own to merge into a request but its headers."""
        return (not self.trust_env and self.auth is None and not self.params and not self.stream
                and not any(self.hooks.values()) and len(self.cookies) == 0)


@functools.lru_cache(maxsize=4096)
def _prepared_url(url: str) -> str:
    """``PreparedRequest.prepare_url(url, {})``'s URL: a pure function of the URL (its IDNA host, its
    path quoted again as requests quotes it), kept for the URLs a process calls most (Trademax's dispatch
    and receipt, an artno's stock).  Only a URL with no query and no user info comes here (a credential or
    a token travels in one or the other: never kept); a URL requests refuses raises each time."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, {})
    return prepared.url


def _without_none(setting: Any) -> Any:
    """A mapping without its None values (``merge_setting`` drops them); anything else as it is."""
    if isinstance(setting, Mapping) and any(value is None for value in setting.values()):
        kept = type(setting)() if isinstance(setting, CaseInsensitiveDict) else {}
        for name, value in setting.items():
            if value is not None:
                kept[name] = value
        return kept
    return setting


def build_session(pool_maxsize: int = POOL_MAXSIZE) -> requests.Session:
    """A session whose adapters pool connections for a threads pool and retry connects only."""
    retries = Retry(
        total=CONNECT_RETRIES, connect=CONNECT_RETRIES, read=0, redirect=0, status=0, other=0,
        allowed_methods=None, backoff_factor=0, raise_on_status=False, respect_retry_after_header=False,
    )
    session = PooledSession()
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
