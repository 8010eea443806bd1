"""Prometheus metrics: what the store holds, read at scrape time, and what the workers counted.

Two halves:

- :class:`AttemptTally` — in each worker process: every send attempt (``Observer.attempt``) counts by
  destination, operation, outcome and HTTP status, and its latency goes into a histogram.  The tally is
  handed to the store every few seconds by the worker's heartbeat (``worker.observe.heartbeat``) and on
  shutdown, into :class:`worker.store.attempt_counts.AttemptCounts`.  A worker killed with SIGKILL loses
  at most its last few seconds of counts; a store that does not answer keeps them for the next beat.
- :class:`StoreCollector` — in the ``wms-relay metrics`` process: a prometheus-client custom collector
  that reads the store on every scrape (events by state, dead letters open and the oldest one's age,
  uncertain — each per destination — counts waiting for a catalog row (unmapped), every destination's flow
  state (:func:`flow_families`: on or off as the workers recorded it, paused, circuit, parked, pending
  batches), retries scheduled and the most overdue, queue depths, workers alive, the scheduler's last tick,
  Redis memory, the version, the workers' attempt counts and latency, and the desk's sign-in counts).
  prometheus-client writes the exposition format; nothing here formats it by hand.

Why the workers' counts go through the store rather than prometheus-client's multiprocess mode or a port
per worker: docs/operations.md ("Metrics").  No label or value ever holds an event's content or a secret:
labels are destination, operation, outcome, HTTP status, state and queue names.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from worker import __version__
from worker.store.attempt_counts import LATENCY_BUCKETS, AttemptCounts

PREFIX = "wms_relay"


class AttemptTally:
    """Attempt counts and latencies of this process since its last flush (thread-safe: the pool's threads
    record, the heartbeat flushes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: dict[tuple[str, str, str, str], int] = {}
        self._latency: dict[tuple[str, str], tuple[list[int], float, int]] = {}

    def record(self, destination: str, operation: str, outcome: str, status: int | None,
               latency: float | None) -> None:
        labels = (destination, operation, outcome, "none" if status is None else str(status))
        with self._lock:
            self._attempts[labels] = self._attempts.get(labels, 0) + 1
            if latency is not None:
                per_bucket, seconds, count = self._latency.get((destination, operation),
                                                               ([0] * len(LATENCY_BUCKETS), 0.0, 0))
                index = next(i for i, bound in enumerate(LATENCY_BUCKETS) if latency <= bound)
                per_bucket[index] += 1
                self._latency[(destination, operation)] = (per_bucket, seconds + latency, count + 1)

    def flush(self, redis_client) -> None:
        """Add what was counted since the last flush to the store; on failure keep it for the next one."""
        with self._lock:
            attempts, latency = self._attempts, self._latency
            self._attempts, self._latency = {}, {}
        try:
            AttemptCounts(redis_client).add(attempts, latency)
        except Exception:
            self._merge_back(attempts, latency)
            raise

    def _merge_back(self, attempts, latency) -> None:
        with self._lock:
            for labels, count in attempts.items():
                self._attempts[labels] = self._attempts.get(labels, 0) + count
            for labels, (per_bucket, seconds, count) in latency.items():
                mine, my_seconds, my_count = self._latency.get(labels, ([0] * len(LATENCY_BUCKETS), 0.0, 0))
                self._latency[labels] = ([a + b for a, b in zip(mine, per_bucket)], my_seconds + seconds,
                                         my_count + count)


_TALLY = AttemptTally()


def process_tally() -> AttemptTally:
    """This process's tally (the Observer records into it; the heartbeat flushes it)."""
    return _TALLY


def _gauge(name: str, doc: str, value: float | None, labels: dict | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=list(labels or {}))
    if value is not None:
        family.add_metric(list((labels or {}).values()), value)
    return family


def flow_families(redis_client, settings, now: float, clock: Callable[[], float]) -> Iterator:
    """Per destination: on or off as the workers recorded it (worker.observe.configuration: absent while
    none is recorded), paused, circuit state (one-hot), a configuration fault holding it open, parked
    deliveries, pending batches; how old the recorded configuration is, and how many different ones the
    live workers run with."""
    from worker.destinations.table import DESTINATIONS, WMS_DESTINATION
    from worker.flow.circuit import CLOSED, HALF_OPEN, OPEN
    from worker.flow.controls import FlowControls
    from worker.flow.policy import FAULTS
    from worker.observe.configuration import read_configuration
    from worker.store.retry_schedule import RetrySchedule

    recorded = read_configuration(redis_client, clock)
    flow = FlowControls(redis_client, settings, RetrySchedule(redis_client, clock=clock), clock=clock)
    on = GaugeMetricFamily(f"{PREFIX}_destination_on", "1 when the workers' recorded configuration has the "
                           "destination on, 0 off (absent: none recorded)", labels=["destination"])
    paused = GaugeMetricFamily(f"{PREFIX}_destination_paused", "1 while a pause is in force (wms-relay "
                               "pause)", labels=["destination"])
    circuit = GaugeMetricFamily(f"{PREFIX}_circuit_state", "The destination's circuit: 1 for its state, 0 "
                                "for the others", labels=["destination", "state"])
    fault = GaugeMetricFamily(f"{PREFIX}_circuit_fault", "1 while a configuration fault holds the circuit "
                              "open (clock_skew: the destination refuses our clock)",
                              labels=["destination", "fault"])
    parked = GaugeMetricFamily(f"{PREFIX}_parked_deliveries", "Deliveries parked by a pause or an open "
                               "circuit, waiting without spending attempts", labels=["destination"])
    pending = GaugeMetricFamily(f"{PREFIX}_batch_pending", "Stock counts waiting for the next batch (bulk "
                                "destinations)", labels=["destination"])
    for name, target in DESTINATIONS.items():
        is_on = True if target is WMS_DESTINATION else recorded.is_on(name)
        if is_on is not None:
            on.add_metric([name], float(is_on))
        paused.add_metric([name], float(flow.pauses.in_force(name) is not None))
        state = flow.gate(name).circuit.state()
        for each in (CLOSED, OPEN, HALF_OPEN):
            circuit.add_metric([name, each], float(state["state"] == each))
        for each in FAULTS:
            fault.add_metric([name, each], float(state["state"] != CLOSED and state.get("fault") == each))
        parked.add_metric([name], flow.parking(name).count())
        if target.batch is not None:
            pending.add_metric([name], flow.batches(name).pending_count())
    yield from (on, paused, circuit, fault, parked, pending)
    current = recorded.current
    yield _gauge("configuration_age_seconds", "Seconds since a worker last recorded the destinations' "
                 "configuration (absent: never)", None if current is None else current.age)
    yield _gauge("worker_configurations", "Different destination configurations among the live workers "
                 "(more than 1: they disagree)", float(recorded.distinct_alive()))


class StoreCollector:
    """Reads the store at scrape time.  ``client()`` gives the Redis client (it may raise when there is no
    store yet: the scrape then says ``wms_relay_store_up 0`` and nothing else)."""

    def __init__(self, client: Callable[[], object], settings,
                 clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._settings = settings
        self._clock = clock

    def describe(self):  # no fixed list: registering must not read the store
        return []

    def collect(self) -> Iterator:
        up = GaugeMetricFamily(f"{PREFIX}_store_up", "1 when the store answered this scrape, else 0")
        try:
            families = list(self._read(self._client()))
        except Exception:  # noqa: BLE001 — no store, or it failed mid-read: say so, nothing half-read
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self, redis_client) -> Iterator:
        from worker.store.broker_queues import queue_depths, unacked
        from worker.store.dead_letters import DeadLetters
        from worker.store.heartbeats import STALE_AFTER_SECONDS, Heartbeats
        from worker.store.ledger import Ledger
        from worker.store.retry_schedule import RetrySchedule

        from worker.destinations.table import DESTINATIONS, QUEUES, delivery_ref

        now = self._clock()
        first = Ledger.from_settings(redis_client, self._settings, clock=self._clock)
        # One ledger per destination (its namespace): every figure is per destination, as status shows it.
        ledgers = {name: first.sibling(target.namespace) for name, target in DESTINATIONS.items()}
        events = GaugeMetricFamily(f"{PREFIX}_events", "Deliveries in each open ledger state now",
                                   labels=["state", "destination"])
        settled = CounterMetricFamily(f"{PREFIX}_events_settled",
                                      "Deliveries that ever reached each final state",
                                      labels=["state", "destination"])
        uncertain_age = GaugeMetricFamily(f"{PREFIX}_uncertain_oldest_age_seconds",
                                          "Seconds the oldest uncertain delivery has waited (0: none)",
                                          labels=["destination"])
        for name, ledger in ledgers.items():
            for state, count in ledger.count_by_state().items():
                events.add_metric([state, name], count)
            for state, count in ledger.final_totals().items():
                settled.add_metric([state, name], count)
            found = ledger.oldest_in_state("uncertain")
            uncertain_age.add_metric([name], 0.0 if found is None else max(0.0, now - found[2]))
        yield events
        yield settled
        yield uncertain_age
        from worker.store.catalog import Catalog

        unmapped = GaugeMetricFamily(f"{PREFIX}_unmapped_deliveries",
                                     "Counts listed as waiting for their artno's catalog row (unmapped)",
                                     labels=["destination"])
        for name, target in DESTINATIONS.items():
            if target.declaration.catalog is not None:
                unmapped.add_metric([name], Catalog(redis_client, target.namespace).waiting_count())
        yield unmapped

        letters = DeadLetters(redis_client, clock=self._clock, delivery_ref=delivery_ref)
        letters_open = GaugeMetricFamily(f"{PREFIX}_dead_letters_open", "Dead letters waiting for a person",
                                         labels=["destination"])
        letters_age = GaugeMetricFamily(f"{PREFIX}_dead_letter_oldest_age_seconds",
                                        "Seconds the oldest open dead letter has waited (0: none)",
                                        labels=["destination"])
        for name, (count, oldest_at) in letters.open_by("destination", DESTINATIONS).items():
            letters_open.add_metric([name], count)
            letters_age.add_metric([name], 0.0 if oldest_at is None else max(0.0, now - oldest_at))
        yield letters_open
        yield letters_age
        yield from flow_families(redis_client, self._settings, now, self._clock)

        from worker.store.dispatch_waiters import DispatchWaiters

        unknown = DispatchWaiters(redis_client, first).unknown_ids()
        yield _gauge("dispatch_id_unknown_shipments", "Shipments whose dispatch.create Trademax answered 452 "
                     "without a dispatch id: a person records it (wms-relay dispatch set-id)", len(unknown))
        yield _gauge("dispatch_id_unknown_waiting", "Dispatch updates, publishes and deletes waiting for "
                     "such a dispatch id", sum(u.waiting for u in unknown))

        schedule = RetrySchedule(redis_client, clock=self._clock)
        next_due = schedule.next_due()
        yield _gauge("retries_scheduled", "Retries waiting in the retry schedule", schedule.count())
        yield _gauge("retry_most_overdue_seconds",
                     "Seconds the most overdue scheduled retry is late (0: none)",
                     0.0 if next_due is None else max(0.0, now - next_due))

        depth = GaugeMetricFamily(f"{PREFIX}_queue_depth", "Task messages waiting on each queue",
                                  labels=["queue"])
        for queue, count in queue_depths(redis_client, QUEUES).items():
            depth.add_metric([queue], count)
        yield depth
        yield _gauge("messages_unacked", "Task messages workers hold (taken, not yet acknowledged)",
                     unacked(redis_client))

        beats = Heartbeats(redis_client, self._clock)
        yield _gauge("workers_alive", f"Workers whose heartbeat is younger than {STALE_AFTER_SECONDS:g} s",
                     len(beats.alive("worker")))
        ticks = beats.beats("scheduler")
        yield _gauge("scheduler_last_tick_timestamp_seconds",
                     "Unix time of the scheduler's last tick (0: never)", ticks[0].at if ticks else 0.0)
        yield _gauge("scheduler_last_tick_age_seconds",
                     "Seconds since the scheduler's last tick (absent: never)",
                     ticks[0].age if ticks else None)

        yield _gauge("build_info", "Always 1: the version of the wms-relay that serves these metrics",
                     1.0, {"version": __version__})
        memory = redis_client.info("memory")
        yield _gauge("redis_used_memory_bytes", "The store's used_memory",
                     float(memory.get("used_memory", 0)))
        yield _gauge("redis_maxmemory_bytes", "The store's maxmemory (0: no limit)",
                     float(memory.get("maxmemory", 0)))

        counts = AttemptCounts(redis_client)
        attempts = CounterMetricFamily(f"{PREFIX}_attempts", "Send attempts, by how they ended",
                                       labels=["destination", "operation", "outcome", "status"])
        for labels, count in sorted(counts.attempts().items()):
            attempts.add_metric(list(labels), count)
        yield attempts
        latency = HistogramMetricFamily(f"{PREFIX}_destination_latency_seconds",
                                        "Seconds from sending a request to its answer (or the timeout)",
                                        labels=["destination", "operation"])
        for histogram in counts.latency():
            latency.add_metric([histogram.destination, histogram.operation], list(histogram.buckets),
                               histogram.sum)
        yield latency

        from worker.store.sign_ins import sign_in_counts

        signs = sign_in_counts(redis_client)
        sign_ins = CounterMetricFamily(f"{PREFIX}_desk_sign_ins", "Desk sign-in tries by how they ended "
                                       "(blocked: refused unchecked during a lockout)", labels=["outcome"])
        for outcome in ("signed_in", "refused", "blocked"):
            sign_ins.add_metric([outcome], signs[outcome])
        yield sign_ins
        yield CounterMetricFamily(f"{PREFIX}_desk_sign_in_lockouts",
                                  "Desk lockouts: a name from one address, or one address, reached its limit "
                                  "of failed sign-ins", value=signs["lockouts"])
