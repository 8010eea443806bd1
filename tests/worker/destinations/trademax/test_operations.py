"""The two operation tables agree: what ``tasks.events.OPERATIONS`` documents for each WMS operation
(method, path) is what ``worker.destinations.trademax.calls.SENDERS`` actually calls, as ``worker.destinations.trademax.operations``
defines it."""
from __future__ import annotations

import pytest

from tasks.events import OPERATIONS as EVENT_OPERATIONS
from worker.destinations.trademax.calls import SENDERS
from worker.destinations.trademax.operations import OPERATIONS as TRADEMAX_OPERATIONS


class RecordingClient:
    """Answers every client method by noting its name."""

    def __init__(self) -> None:
        self.called: list[str] = []

    def __getattr__(self, name: str):
        if name not in TRADEMAX_OPERATIONS:
            raise AttributeError(name)

        def call(*args, **kwargs):
            self.called.append(name)
        return call


def test_every_event_operation_has_a_sender():
    assert set(SENDERS) == set(EVENT_OPERATIONS)


@pytest.mark.parametrize("operation", sorted(EVENT_OPERATIONS))
def test_the_documented_request_is_the_one_sent(operation):
    client = RecordingClient()
    SENDERS[operation](client, {"artno": "123", "order_no": "FO1"}, 4711)
    (called,) = client.called
    spec, sent = EVENT_OPERATIONS[operation], TRADEMAX_OPERATIONS[called]
    assert (spec.method, spec.path_template) == (sent.method, sent.path), called
