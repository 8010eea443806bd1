"""The gate: a slot at most a second away is slept for and sent; further away the send is deferred
("later", nothing taken, no attempt); a 429 or 503 with Retry-After holds the whole destination; a send
that did not happen gives its circuit ticket back."""
from __future__ import annotations

import pytest

from worker.errors import PermanentError, TransientError
from worker.flow.gate import LATER, SEND, Gate
from worker.settings import FlowLimits


def gate_for(store_client, clock, **limits):
    return Gate(store_client, "stock2shop", "wms:stock2shop", FlowLimits(**limits), title="Stock2Shop",
                clock=clock, sleep=clock.sleep)


def test_a_near_slot_is_slept_for_a_far_one_deferred(store_client, clock):
    gate = gate_for(store_client, clock, max_rps=2)
    first = [gate.ask() for _ in range(2)]
    assert [(v.action, v.wait) for v in first] == [(SEND, 0.0), (SEND, 0.51)]
    deferred = gate.admit()
    assert deferred.action == LATER and deferred.wait == pytest.approx(1.02)
    assert "rate limit" in deferred.reason and clock.slept == []
    clock.advance(0.5)
    sent = gate.admit()
    assert sent.action == SEND and clock.slept == [pytest.approx(0.52)]


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_holds_the_whole_destination(store_client, clock, status):
    gate = gate_for(store_client, clock)
    verdict = gate.admit()
    gate.report(TransientError("slow down", status=status, retry_after=20), ticket=verdict.ticket)
    held = gate.admit()
    assert held.action == LATER and held.wait == pytest.approx(20)


def test_a_retry_after_on_a_500_holds_nothing(store_client, clock):
    gate = gate_for(store_client, clock)
    gate.report(TransientError("boom", status=500, retry_after=20))
    assert gate.admit().action == SEND


def test_a_send_that_did_not_happen_gives_its_ticket_back(store_client, clock):
    gate = gate_for(store_client, clock, circuit_failures=1)
    verdict = gate.admit()
    assert verdict.ticket  # counted: the destination is not known to be up
    assert gate.admit().action == LATER
    gate.report(ticket=verdict.ticket, sent=False)
    assert gate.admit().action == SEND


@pytest.mark.parametrize("answer", [PermanentError("bad", status=400),
                                    TransientError("slow down", status=429)])
def test_a_refusal_or_a_429_is_an_answer(store_client, clock, answer):
    gate = gate_for(store_client, clock, circuit_failures=2)
    gate.report(TransientError("refused", status=None))
    gate.report(answer)  # the destination is up: the run of failures starts again
    gate.report(TransientError("refused", status=None))
    assert gate.circuit.is_closed()
    gate.report(TransientError("boom", status=502))
    assert not gate.circuit.is_closed()
