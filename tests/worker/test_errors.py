"""The exception tree: names other code depends on, pickling, readable messages."""
from __future__ import annotations

import pickle

import pytest

from worker.errors import (
    OutcomeUnknownError,
    PermanentError,
    RelayError,
    TrademaxError,
    TransientError,
)


def test_tree():
    assert issubclass(TrademaxError, RelayError)
    for cls in (TransientError, OutcomeUnknownError, PermanentError):
        assert issubclass(cls, TrademaxError)
    assert not issubclass(TransientError, PermanentError)
    assert not issubclass(OutcomeUnknownError, TransientError)


ERRORS = [
    TransientError("HTTP 503", operation="create_dispatch", status=503, error_code=None, retry_after=1.5,
                   latency_seconds=0.25),
    OutcomeUnknownError("ReadTimeout: read timed out", operation="adjust_stock", latency_seconds=30.0),
    PermanentError("", operation="create_receipt", status=400, error_code=450,
                   error_messages=["required param order_no not specified"], latency_seconds=0.01),
    TrademaxError("plain"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_pickle_round_trip_keeps_every_attribute(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert copy.__dict__ == error.__dict__
    assert str(copy) == str(error)
    assert copy.args == error.args


def test_message_names_operation_status_code_and_messages():
    error = PermanentError("", operation="create_receipt", status=400, error_code=450,
                           error_messages=["required param order_no not specified", "second"])
    assert str(error) == ("create_receipt, HTTP 400, error_code 450: "
                          "required param order_no not specified; second")


def test_transient_message_names_retry_after():
    error = TransientError("", operation="get_stock", status=429, error_code=1, retry_after=1.0)
    assert str(error) == "get_stock, HTTP 429, error_code 1 [retry after 1 s]"
    assert error.retry_after == 1.0


def test_transport_error_without_status():
    error = OutcomeUnknownError("ReadTimeout: read timed out", operation="adjust_stock")
    assert str(error) == "adjust_stock, no HTTP status (ReadTimeout: read timed out)"
    assert error.status is None and error.error_code is None and error.error_messages == []
    assert repr(error) == f"OutcomeUnknownError({str(error)!r})"


def test_each_error_stands_for_its_classification():
    from worker.destinations.trademax.classification import classification_of

    errors = (TransientError("x"), OutcomeUnknownError("x"), PermanentError("x"))
    assert [classification_of(e).value for e in errors] == ["transient", "outcome_unknown", "permanent"]
