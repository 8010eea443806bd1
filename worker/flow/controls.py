"""The flow controls one process uses: per destination a gate (pause → circuit → rate limit), its parked
deliveries and, for a bulk destination with batching on, its pending batches; the pauses of all; and
what ``wms-relay status`` shows of each.  Built once per process from Settings (``worker.delivery.relay``
holds one)."""
from __future__ import annotations

import time
from typing import Callable

from worker.destinations.contract import Destination
from worker.destinations.table import DESTINATIONS
from worker.flow.batches import Batches
from worker.flow.gate import Gate
from worker.flow.parking import Parking
from worker.flow.pause import Pauses
from worker.settings import FlowLimits, Settings
from worker.store.retry_schedule import RetrySchedule


class FlowControls:
    """``table``: the destinations (default: worker.destinations.table's); each one's limits are its
    settings' (``<PREFIX>_MAX_RPS`` ..., defaults from its declaration)."""

    def __init__(self, redis_client, settings: Settings, schedule: RetrySchedule, *,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 table: dict[str, Destination] | None = None) -> None:
        self._redis = redis_client
        self.settings = settings
        self._schedule = schedule
        self._clock = clock
        self._sleep = sleep
        self._table = DESTINATIONS if table is None else table
        namespaces = {name: d.namespace for name, d in self._table.items()}
        self.pauses = Pauses(redis_client, namespaces, clock=clock, changed=self._forget_look)
        self._gates: dict[str, Gate] = {}
        self._parking: dict[str, Parking] = {}
        self._batches: dict[str, Batches] = {}

    def gate(self, destination: str) -> Gate:
        found = self._gates.get(destination)
        if found is None:
            target = self._table[destination]
            found = self._gates[destination] = Gate(
                self._redis, destination, target.namespace, self.settings.flow_of(destination),
                title=target.title, clock=self._clock, sleep=self._sleep)
        return found

    def _forget_look(self, destination: str) -> None:
        """A pause or resume through this process: its sends stop (or may go) at once, not within a second."""
        found = self._gates.get(destination)
        if found is not None:
            found.look.forget()

    def parking(self, destination: str) -> Parking:
        found = self._parking.get(destination)
        if found is None:
            found = self._parking[destination] = Parking(self._redis, self._table[destination].namespace,
                                                         self._schedule, clock=self._clock)
        return found

    def batched(self, destination: str) -> bool:
        """Does ``destination`` take its stock counts in batches (a bulk API, ``<DEST>_BATCH_MAX`` > 0)?"""
        return self._table[destination].batch is not None and self.settings.flow_of(destination).batched

    def batches(self, destination: str) -> Batches:
        found = self._batches.get(destination)
        if found is None:
            found = self._batches[destination] = Batches(self._redis, self._table[destination].namespace,
                                                         clock=self._clock)
        return found

    def status(self, destination: str, limits: FlowLimits | None) -> dict:
        """What ``wms-relay status`` shows of one destination's flow: its rate limit and current rate, the
        hold of a Retry-After, the circuit, the pause in force, parked deliveries and pending batches.

        The state comes from the store; the limits are handed in — the ones the workers recorded
        (worker.observe.configuration), not this process's settings: None when none is recorded (the
        limits are then None and ``limits_known`` False; a bulk API's pending batches are shown anyway)."""
        gate = self.gate(destination)
        now = self._clock()
        circuit = gate.circuit.state()
        pause = self.pauses.in_force(destination)
        next_slot = gate.rate.next_slot()
        known = limits is not None
        found = {
            "limits_known": known,
            "max_rps": limits.max_rps or None if known else None,
            "current_rps": round(gate.rate.sent_per_second(), 2),
            "held_for_seconds": round(next_slot - now, 1) if next_slot and next_slot - now > 1 else None,
            "circuit": {**circuit, "failures_to_open": limits.circuit_failures if known else None,
                        "window_seconds": limits.circuit_window_seconds if known else None,
                        "probe_seconds": limits.probe_seconds if known else None},
            "paused": None if pause is None else pause.to_dict(),
            "parked": self.parking(destination).count(),
            "batching": None,
        }
        if self._table[destination].batch is not None and (not known or limits.batched):
            batches = self.batches(destination)
            found["batching"] = {"max": limits.batch_max if known else None,
                                 "seconds": limits.batch_seconds if known else None,
                                 "pending": batches.pending_count(), "in_flight": batches.in_flight(),
                                 "failed_in_a_row": batches.failures()}
        return found
