"""The classification table (worker.destinations.trademax.classification), with plain numbers and
constructed exceptions."""
from __future__ import annotations

import http.client
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest
import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from worker.destinations.trademax.classification import (
    Classification,
    classify_reply,
    classify_transport_failure,
    classify_unreadable_reply,
    parse_retry_after,
)

D, DUP, T, U, P = (Classification.DELIVERED, Classification.DUPLICATE, Classification.TRANSIENT,
                   Classification.OUTCOME_UNKNOWN, Classification.PERMANENT)


@pytest.mark.parametrize(
    "status, error_code, expected",
    [
        # delivered
        (200, 0, D), (201, 0, D), (204, 0, D),
        (200, None, D),  # no envelope (the order-lines answer)
        # duplicate transaction_id: delivered, whatever the status
        (200, 452, DUP), (400, 452, DUP), (409, 452, DUP),
        # transient: 5xx, 408, 429 whatever the code; server-side codes whatever the status
        (500, 500, T), (500, None, T), (502, None, T), (503, 1, T), (504, 0, T), (599, None, T),
        (408, None, T), (429, None, T), (429, 1, T),
        (200, 500, T), (200, 501, T), (400, 501, T), (200, 599, T),
        # permanent: other 4xx, auth and validation codes
        (400, 450, P), (400, 451, P), (400, 1, P), (400, None, P),
        (401, 401, P), (401, 402, P), (401, 404, P), (401, 405, P), (403, 406, P), (403, 407, P),
        (404, 1, P), (404, None, P), (405, None, P), (409, None, P), (413, None, P), (422, None, P),
        (200, 1, P), (200, 401, P), (200, 450, P), (200, 451, P), (200, 453, P), (200, 499, P),
        (200, 7, P),  # an undocumented code with a 2xx is not a success
        (301, None, P), (302, 0, P), (307, None, P), (100, None, P),
    ],
)
def test_classify_reply(status, error_code, expected):
    assert classify_reply(status, error_code) is expected


@pytest.mark.parametrize(
    "status, expected",
    [(200, U), (201, U), (500, T), (502, T), (503, T), (408, T), (429, T),
     (400, P), (403, P), (404, P), (302, P)],
)
def test_classify_unreadable_reply(status, expected):
    assert classify_unreadable_reply(status) is expected


def test_only_delivered_and_duplicate_count_as_delivered():
    assert {o for o in Classification if o.delivered} == {D, DUP}


def _connection_error(reason):
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/api/dispatch", reason))


@pytest.mark.parametrize(
    "exc, expected",
    [
        (requests.exceptions.ConnectTimeout("connect timed out"), T),
        (_connection_error(NewConnectionError(None, "Connection refused")), T),
        (_connection_error(NameResolutionError("dashboard.trademax.se", None, OSError("no such host"))), T),
        (_connection_error(ConnectTimeoutError(None, "timed out")), T),
        (requests.exceptions.SSLError("handshake failed"), T),
        (requests.exceptions.ProxyError("proxy refused"), T),
        (requests.exceptions.RetryError("too many 503"), T),
        (requests.exceptions.ReadTimeout("read timed out"), U),
        (requests.exceptions.ChunkedEncodingError("IncompleteRead"), U),
        (requests.exceptions.ContentDecodingError("bad gzip"), U),
        (requests.exceptions.ConnectionError(
            ProtocolError("Connection aborted.", http.client.RemoteDisconnected("closed"))), U),
        (_connection_error(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))), U),
        (requests.exceptions.ConnectionError(ReadTimeoutError(None, "/api/x", "read timed out")), U),
        (requests.exceptions.ConnectionError(ConnectionResetError(104, "reset")), U),
        (requests.exceptions.ConnectionError("something else"), U),
        (requests.exceptions.RequestException("unknown"), U),
        (requests.exceptions.InvalidURL("bad url"), P),
        (requests.exceptions.MissingSchema("no scheme"), P),
        (requests.exceptions.InvalidHeader("bad header"), P),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v.value,
)
def test_classify_transport_failure(exc, expected):
    assert classify_transport_failure(exc) is expected


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    "header, expected",
    [
        (None, None), ("", None), ("  ", None), ("soon", None), ("-5", None), ("nan", None), ("inf", None),
        ("0", 0.0), ("1", 1.0), ("120", 120.0), (" 7 ", 7.0), ("2.5", 2.5),
        (format_datetime(datetime.fromtimestamp(NOW + 30, timezone.utc), usegmt=True), 30.0),
        (format_datetime(datetime.fromtimestamp(NOW + 3600, timezone.utc), usegmt=True), 3600.0),
        (format_datetime(datetime.fromtimestamp(NOW - 60, timezone.utc), usegmt=True), 0.0),  # past: now
        ("Tue, 14 Nov 2023 22:14:20 GMT", 60.0),  # NOW is 22:13:20 GMT that day
    ],
)
def test_parse_retry_after(header, expected):
    result = parse_retry_after(header, NOW)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_retry_after_date_is_measured_with_the_callers_clock():
    header = "Tue, 14 Nov 2023 22:14:20 GMT"
    assert parse_retry_after(header, NOW) == pytest.approx(60.0)
    assert parse_retry_after(header, NOW + 50) == pytest.approx(10.0)
    assert parse_retry_after(header, NOW + 100) == 0.0
