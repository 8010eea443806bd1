"""The flow keeper: background threads of each worker process, one per destination that is on, that do what
no single delivery does (worker.flow):

- **probe** an open circuit: when its probe is due, one keeper (of all processes) sends the destination's
  harmless check request — the one ``wms-relay check`` sends — and closes the circuit on an answer or
  opens it for another period on a failure.  No delivery is spent on a probe, so an outage costs no
  event an attempt.  A circuit open for a configuration fault (a clock skew) is probed when the scheduler
  grants it, once a minute by the scheduler's clock (worker.flow.circuit);
- **release** parked deliveries once the destination may be sent to (resumed, its pause over, its
  circuit closed): a slice per second — one second's worth of the rate limit where it has one
  (``RELEASE_PER_SECOND`` where it has none) — so they come back gradually, through the rate limit;
- **flush** a bulk destination's batches (worker.delivery.batch_delivery);
- **send products** a catalog import queued, where the destination takes them (worker.delivery.product_sync).

Started when the Celery worker is ready (``tasks.base``), stopped when it shuts down.  Every step is
coordinated through Redis (the probe's lease, the parked list, the batch in flight), so any number of
worker processes may run keepers.
"""
from __future__ import annotations

import logging
import math
import threading
from typing import Any

import redis

from worker.delivery.batch_delivery import BatchFlusher
from worker.delivery.product_sync import ProductSender, takes_products
from worker.delivery.relay import Relay
from worker.destinations.table import DESTINATIONS, configured
from worker.flow import policy
from worker.flow.circuit import CLOSED

log = logging.getLogger("wms_relay.flow")

RELEASE_PER_SECOND = 500
LOOK_SECONDS = 0.5  # a keeper with nothing to flush looks at its circuit and parked list this often
STORE_PAUSE_SECONDS = 1.0


class DestinationKeeper:
    """The keeper of one destination (see the module docstring); :meth:`step` is one round of it."""

    def __init__(self, relay: Relay, destination: str) -> None:
        self.relay = relay
        self.destination = destination
        self.title = DESTINATIONS[destination].title
        self.limits = relay.settings.flow_of(destination)
        self.gate = relay.flow.gate(destination)
        self.parking = relay.flow.parking(destination)
        self.flusher = BatchFlusher(relay, destination) if relay.flow.batched(destination) else None
        self.products = ProductSender(relay, destination) if takes_products(destination) else None
        self._last_release = float("-inf")

    def step(self) -> float:
        """Probe, release, flush as due; seconds until the next round is worth it."""
        self.probe_if_due()
        self.release_if_open()
        if self.products is not None:
            self.products.send_once()
        if self.flusher is None:
            return LOOK_SECONDS
        return min(self.flusher.flush_once(), LOOK_SECONDS)

    def probe_if_due(self) -> bool | None:
        """Send the probe if this keeper takes it: True (answered: closed), False (failed), None (no
        probe due, or another keeper took it)."""
        lease = self.relay.settings.connect_timeout * 2 + self.relay.settings.read_timeout + 5
        if not self.gate.circuit.take_probe(lease):
            return None
        try:
            found = DESTINATIONS[self.destination].check(self.relay.client_of(self.destination))
            error = None
        except Exception as exc:  # noqa: BLE001 — the errors tree, or a client that could not be built
            found, error = None, exc
        signal = policy.circuit_signal(error)
        fault = signal if signal in policy.FAULTS else None
        failed = signal == policy.FAILED or fault is not None  # any other answer, even a 429, says it is up
        if policy.hold_seconds(error) is not None:
            self.gate.rate.hold_until(self.relay.clock() + policy.hold_seconds(error))
        self.gate.circuit.probe_result(not failed, why="" if error is None else str(error), fault=fault)
        if fault:
            log.error("%s probed: still refused for a configuration fault (%s: %s); the next probe when the "
                      "scheduler grants it (once a minute)", self.title, fault, error)
        elif failed:
            log.warning("%s probed: still failing (%s); next probe in %.0f s", self.title, error,
                        self.limits.probe_seconds)
        else:
            log.warning("%s probed: it answered (%s); circuit closed, releasing parked deliveries",
                        self.title, found or error)
        return not failed

    def release_if_open(self) -> int:
        """Release a slice of parked deliveries if the destination may be sent to; how many."""
        now = self.relay.clock()
        if now - self._last_release < 1.0 or self.parking.count() == 0:
            return 0
        if self.relay.flow.pauses.in_force(self.destination) is not None:
            return 0
        if self.gate.circuit.state()["state"] != CLOSED:
            return 0
        self._last_release = now
        slice_ = math.ceil(self.limits.max_rps) if self.limits.max_rps > 0 else RELEASE_PER_SECOND
        released = self.parking.release(max(1, slice_))
        if released:
            log.info("%s: released %d parked deliveries (%d still parked)", self.title, len(released),
                     self.parking.count())
        return len(released)


class FlowKeeper:
    """One thread per destination that is on, in this process."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> "FlowKeeper":
        for destination in configured(self.relay.settings):
            if destination.name not in self.relay.clients:
                continue  # no client in this process: it cannot probe or flush
            keeper = DestinationKeeper(self.relay, destination.name)
            thread = threading.Thread(target=self._run, args=(keeper,), name=f"flow-{destination.name}",
                                      daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def _run(self, keeper: DestinationKeeper) -> None:
        while not self.stop_event.is_set():
            try:
                wait = keeper.step()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("flow keeper of %s: store unreachable (%s); trying again", keeper.title, exc)
                wait = STORE_PAUSE_SECONDS
            except Exception:  # noqa: BLE001 — a keeper must outlive any one bad round
                log.exception("flow keeper of %s failed a round; going on", keeper.title)
                wait = STORE_PAUSE_SECONDS
            self.stop_event.wait(max(wait, 0.002))

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout)


_process_keeper: FlowKeeper | None = None
_lock = threading.Lock()


def start_process_keeper(relay: Any = None) -> FlowKeeper:
    """Start this process's keeper once (the worker's ``worker_ready``)."""
    global _process_keeper
    with _lock:
        if _process_keeper is None:
            if relay is None:
                from worker.delivery.relay import process_relay

                relay = process_relay()
            _process_keeper = FlowKeeper(relay).start()
        return _process_keeper


def stop_process_keeper() -> None:
    global _process_keeper
    with _lock:
        if _process_keeper is not None:
            _process_keeper.stop()
            _process_keeper = None
