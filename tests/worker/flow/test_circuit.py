"""The circuit breaker's moves: closed → open after N failures in a row within the window (not on failures
spread wider, not across a success); open → half-open for exactly one probe, once the probe period has
passed; half-open → closed on an answer, → open again (another period) on a failure; a probe whose taker
died is taken again after its lease.  While the destination is not known to be up, no more sends leave
than failures could still open it.  A configuration fault (a clock skew) opens it at once; its probe is
granted by a scheduler, once a minute by the scheduler's clock, whatever the workers' clocks say."""
from __future__ import annotations

import pytest

from worker.flow.circuit import Circuit
from worker.flow.gate import LATER, PARK, SEND, Gate
from worker.settings import FlowLimits

LIMITS = FlowLimits(circuit_failures=3, circuit_window_seconds=60, probe_seconds=30)


@pytest.fixture
def circuit(store_client, clock):
    return Circuit(store_client, "wms", failures=3, window_seconds=60, probe_seconds=30, clock=clock)


@pytest.fixture
def gate(store_client, clock):
    return Gate(store_client, "trademax", "wms", LIMITS, title="Trademax", clock=clock, sleep=clock.sleep)


def test_n_failures_in_a_row_open_it(circuit):
    assert circuit.report("failed", why="HTTP 503") == "closed"
    assert circuit.report("failed") == "closed"
    assert circuit.report("failed", why="connection refused") == "opened"
    state = circuit.state()
    assert state["state"] == "open" and state["last_failure"] == "connection refused"
    assert state["probe_at"] == pytest.approx(state["opened_at"] + 30)


def test_an_answer_in_between_starts_the_count_again(circuit):
    circuit.report("failed")
    circuit.report("failed")
    assert circuit.report("ok") == "closed"
    circuit.report("failed")
    circuit.report("neutral")  # a request that never left: neither
    assert circuit.report("failed") == "closed"
    assert circuit.state()["failures"] == 2


def test_failures_spread_wider_than_the_window_do_not_open_it(circuit, clock):
    circuit.report("failed")
    circuit.report("failed")
    clock.advance(61)
    assert circuit.report("failed") == "closed"  # the first of the run is too old: a new run starts
    assert circuit.state()["failures"] == 1


def test_open_half_open_closed(circuit, clock):
    for _ in range(3):
        circuit.report("failed")
    assert not circuit.take_probe(lease_seconds=10)  # not yet: one probe per period
    clock.advance(30)
    assert circuit.take_probe(lease_seconds=10)
    assert not circuit.take_probe(lease_seconds=10)  # one probe at a time
    assert circuit.state()["state"] == "half_open"
    assert circuit.probe_result(False, why="HTTP 503") == "open"
    assert not circuit.take_probe(lease_seconds=10)
    clock.advance(30)
    assert circuit.take_probe(lease_seconds=10)
    assert circuit.probe_result(True) == "closed"
    state = circuit.state()
    assert state["state"] == "closed" and state["failures"] == 0 and state["probes"] == 2


def test_a_probe_whose_taker_died_is_taken_again_after_its_lease(circuit, clock):
    for _ in range(3):
        circuit.report("failed")
    clock.advance(30)
    assert circuit.take_probe(lease_seconds=10)
    clock.advance(5)
    assert not circuit.take_probe(lease_seconds=10)
    clock.advance(6)
    assert circuit.take_probe(lease_seconds=10)


def test_a_send_answered_while_open_closes_it(circuit):
    for _ in range(3):
        circuit.report("failed")
    assert circuit.report("ok") == "reclosed"  # it left before the circuit opened, and came back: it is up


def test_the_gate_parks_while_open_and_sends_once_closed(gate, clock):
    for _ in range(3):
        verdict = gate.admit()
        assert verdict.action == SEND
        gate.report(_server_error(), ticket=verdict.ticket)
    parked = gate.admit()
    assert parked.action == PARK and "circuit is open" in parked.reason
    assert parked.wait == pytest.approx(30)
    clock.advance(30)
    assert gate.circuit.take_probe(lease_seconds=10)
    assert gate.admit().action == PARK  # half-open: only the probe goes
    gate.circuit.probe_result(True)
    assert gate.admit().action == SEND


def test_not_known_to_be_up_no_more_sends_leave_than_failures_could_open_it(gate, clock):
    out = [gate.admit() for _ in range(3)]
    assert all(v.action == SEND and v.ticket for v in out)  # counted: nothing answered yet
    waited = gate.admit()  # a fourth would be one more than the failures that open it
    assert waited.action == LATER and "not known to be up" in waited.reason
    assert sum(clock.slept) == pytest.approx(1.0, abs=0.06)  # it looked again for up to max_wait
    gate.report(_server_error(), ticket=out[0].ticket)
    assert gate.admit().action == LATER  # 1 failure + 2 still out = 3
    gate.report(None, ticket=out[1].ticket)  # an answer: it is up
    known = [gate.admit() for _ in range(10)]
    assert all(v.action == SEND and not v.ticket for v in known)  # no longer counted


def test_counted_sends_of_a_dead_worker_lapse(gate, clock):
    for _ in range(3):
        gate.admit()
    clock.advance(121)
    assert gate.admit().action == SEND


def _server_error():
    from worker.errors import TransientError

    return TransientError("boom", status=503)


def test_a_clock_skew_opens_it_at_once_and_its_probe_waits_for_a_schedulers_grant(circuit, gate, clock):
    assert circuit.report("clock_skew", why="configuration error: clock 600 s off") == "opened"
    assert circuit.report("clock_skew") == "open"  # the same fault again: not a second opening
    state = circuit.state()
    assert state["state"] == "open" and state["fault"] == "clock_skew" and state["failures"] == 0
    verdict = gate.ask()
    assert verdict.action == PARK and "configuration fault (clock_skew" in verdict.reason
    clock.advance(3600)  # however far the worker's clock moves, no probe without a grant
    assert not circuit.take_probe(10)

    scheduler = 5_000.0  # the scheduler's clock, far from the worker's
    assert not circuit.grant_fault_probe("s-1", now=scheduler)  # its first look starts its minute
    assert not circuit.grant_fault_probe("s-1", now=scheduler + 59)
    assert circuit.grant_fault_probe("s-1", now=scheduler + 60)
    assert not circuit.grant_fault_probe("s-1", now=scheduler + 65)
    assert circuit.take_probe(10) and not circuit.take_probe(10)  # one probe per grant
    assert circuit.probe_result(False, why="still refused", fault="clock_skew") == "open"
    assert circuit.state()["fault"] == "clock_skew" and not circuit.take_probe(10)
    assert circuit.grant_fault_probe("s-1", now=scheduler + 120)
    assert circuit.take_probe(10)
    assert circuit.probe_result(True) == "closed"
    assert circuit.state()["fault"] is None and gate.ask().action == SEND
    assert not circuit.grant_fault_probe("s-1", now=scheduler + 300)  # no fault: nothing to grant


def test_an_ordinary_failure_of_a_faulted_probe_is_an_ordinary_open_circuit(circuit, clock):
    circuit.report("clock_skew", why="clock")
    circuit.grant_fault_probe("s-1", now=0.0)
    assert circuit.grant_fault_probe("s-1", now=60.0) and circuit.take_probe(10)
    assert circuit.probe_result(False, why="connection refused") == "open"
    state = circuit.state()
    assert state["fault"] is None and state["probe_at"] == pytest.approx(clock() + 30)
    clock.advance(30)
    assert circuit.take_probe(10)  # timed by the probe period again
