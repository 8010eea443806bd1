"""The outage replay of benchmarks/scale.py: a backlog of counts behind a paused destination, then resumed.

Simulated time (the clock is injected) on a real valkey-server, with the relay's own store code for
everything that touches the store — the door's admission (``Ledger.admit_all``: record and message in one
script), parking (``worker.flow.parking``), the retry schedule, the ledger's claim and transitions, and
the stranded-event sweep (``worker.scheduling.stranded``) — and small stand-ins for the processes, each
run once per simulated second:

- the worker takes messages off the queue (FIFO, as Celery's BRPOP does): while the destination is paused
  it holds each back as ``worker.delivery.held`` does (``retrying``, parked); once resumed it sends at the
  rate limit (``rate`` a second: claim, ``delivered``); a message whose delivery is settled already is a
  spare copy (the claim answers ``done``);
- the flow keeper releases ``rate`` parked deliveries a second once resumed; the scheduler publishes due
  retries (the message stamped with its publish time, as ``tasks.publishing`` does) and confirms them;
- the sweep runs every ``sweep_every`` simulated seconds with ``after`` (STRANDED_AFTER_SECONDS).

The same replay runs twice, with the sweep of issue 21 (``knows``) and with the rule before it (``age``:
a record unmoved for ``after`` seconds is sent again, at most once per ``after``): the spare copies each
made, the longest the queue got, and the simulated time to drain (against the ideal: backlog ÷ rate).
Halfway through the drain the store is restarted (SHUTDOWN, AOF) and at the end every count must be
delivered exactly once — nothing lost."""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

import redis

from tasks.events import validate_event
from tasks.raw_messages import task_envelope
from worker.destinations.table import DESTINATIONS, ROWS
from worker.flow.parking import Parking
from worker.scheduling.stranded import StrandedSweep
from worker.store.ledger import Ledger
from worker.store.requests import request_id
from worker.store.retry_schedule import RetrySchedule

T0 = 1_800_000_000.0
DESTINATION = DESTINATIONS["trademax"]
ROW = ROWS["trademax", "stock.adjust"]


class _Noting:
    """A retry schedule that notes what the baseline sweep scheduled, and when."""

    def __init__(self, schedule: RetrySchedule, sent: dict) -> None:
        self._schedule, self._sent = schedule, sent

    def __getattr__(self, name):
        return getattr(self._schedule, name)

    def schedule(self, ref: str, message, due_at: float) -> None:
        self._sent[ref] = due_at
        self._schedule.schedule(ref, message, due_at)


class AgeOnlySweep(StrandedSweep):
    """The rule before issue 21, for the baseline: sent again on age alone, at most once per ``after``."""

    def __init__(self, ledger, schedule, **kwargs) -> None:
        self._sent_again: dict[str, float] = {}
        super().__init__(ledger, _Noting(schedule, self._sent_again), **kwargs)

    def sweep(self) -> int:
        now = self._clock()
        for ref in [ref for ref, at in self._sent_again.items() if at <= now - self._after]:
            del self._sent_again[ref]
        return super().sweep()

    def _left_its_queue(self, destination, operation, ref, entered_at, retried_at, gone_before) -> bool:
        return ref not in self._sent_again


@dataclass
class ReplayResult:
    rule: str
    counts: int
    spare_copies: int = 0  # copies the sweep scheduled
    spare_taken: int = 0  # messages the worker took for a delivery already settled
    peak_queue: int = 0
    drain_seconds: float = 0.0  # simulated, from the resume to the last delivery
    delivered: int = 0
    wall_seconds: float = 0.0


def count_event(n: int):
    return validate_event("stock.adjust", {"event_id": f"CNT-{n:06d}", "occurred_at": "2026-05-01T06:00:00Z",
                                           "artno": f"ART-{n}", "warehouse_id": "nw", "quantity": n % 50,
                                           "type": "absolute"})


class _World:
    """The stores on one client, all on the simulated clock."""

    def __init__(self, url: str, clock, rule: str, after: float) -> None:
        self.client = redis.Redis.from_url(url)
        self.ledger = Ledger(self.client, lease_seconds=60, delivered_retention_seconds=86400, clock=clock)
        self.schedule = RetrySchedule(self.client, clock=clock)
        self.parking = Parking(self.client, DESTINATION.namespace, self.schedule, clock=clock)
        kind = StrandedSweep if rule == "knows" else AgeOnlySweep
        self.sweep = kind(self.ledger, self.schedule, broker=self.client, clock=clock, after_seconds=after)


def _event_of(raw: bytes) -> dict:
    envelope = json.loads(raw)
    return json.loads(base64.b64decode(envelope["body"]))[0][0]


def replay(url: str, restart, *, rule: str, counts: int, rate: int, pause: float = 3600.0,
           sweep_every: float = 60.0, after: float = 900.0, take_per_second: int = 500,
           progress=None, progress_every: float = 600.0) -> ReplayResult:
    """One replay on the store at ``url`` (flushed first); ``restart()`` restarts that store.
    ``progress(rule, simulated seconds, result so far, queue length)`` is called every ``progress_every``
    simulated seconds (a long replay says how far it got)."""
    clock = {"now": T0}
    now = lambda: clock["now"]  # noqa: E731
    world = _World(url, now, rule, after)
    world.client.flushdb()
    result, started = ReplayResult(rule, counts), time.monotonic()
    for first in range(0, counts, 1000):  # the door: record and message together
        events = [count_event(n) for n in range(first, min(first + 1000, counts))]
        world.ledger.admit_all([(e, ROW.queue, task_envelope(ROW.task_name, e.to_message(), ROW.queue,
                                                             published_at=now()), request_id())
                                for e in events], not_after=None)
    resumed_at, restarted, last_sweep = T0 + pause, False, T0
    while result.delivered < counts:
        paused = clock["now"] < resumed_at
        result.peak_queue = max(result.peak_queue, world.client.llen(ROW.queue))
        _work(world, result, paused, take_per_second if paused else rate)
        if not paused:
            world.parking.release(rate)
        _publish_due(world, now())
        if clock["now"] - last_sweep >= sweep_every:
            last_sweep = clock["now"]
            result.spare_copies += world.sweep.sweep()
        if not paused and not restarted and result.delivered >= counts // 2:
            restart()  # the store restarts halfway through the drain: nothing may be lost
            restarted = True
            world = _World(url, now, rule, after) if rule == "knows" else _rebuilt(world, url, now, after)
        clock["now"] += 1.0
        if progress is not None and (clock["now"] - T0) % progress_every == 0:
            result.wall_seconds = time.monotonic() - started
            progress(rule, clock["now"] - T0, result, world.client.llen(ROW.queue))
        if clock["now"] > resumed_at + 20 * pause:
            raise RuntimeError(f"the replay did not drain: {result}")
    result.drain_seconds = clock["now"] - resumed_at
    result.wall_seconds = time.monotonic() - started
    _check_nothing_lost(world, counts)
    world.client.close()
    return result


def _rebuilt(world: _World, url: str, now, after: float) -> _World:
    """A new world after the restart, keeping the baseline sweep's memory (the scheduler lived on)."""
    fresh = _World(url, now, "age", after)
    fresh.sweep._sent_again.update(world.sweep._sent_again)
    return fresh


def _work(world: _World, result: ReplayResult, paused: bool, limit: int) -> None:
    """The worker's second: take up to ``limit`` messages; hold each back (paused) or send it."""
    for _ in range(limit):
        raw = world.client.rpop(ROW.queue)
        if raw is None:
            return
        event = validate_event("stock.adjust", _event_of(raw))
        ref = DESTINATION.delivery_ref("stock.adjust", event.key)
        if paused:
            if world.ledger.transition("stock.adjust", event.key, "retrying", reason="paused; not sent",
                                       expected_states=("accepted", "retrying", "waiting")):
                world.parking.park(ref, {"task": ROW.task_name, "event": event.to_message()})
            else:
                result.spare_taken += 1
            continue
        record = world.ledger.get("stock.adjust", event.key)
        claim = world.ledger.claim("stock.adjust", event.key, record.fingerprint, "bench-worker")
        if not claim.claimed:
            result.spare_taken += 1
            continue
        world.ledger.transition("stock.adjust", event.key, "delivered", reason="sent", owner="bench-worker",
                                result={"ok": True})
        result.delivered += 1


def _publish_due(world: _World, now: float) -> None:
    """The scheduler's second: publish every due retry, stamped, and confirm it."""
    while True:
        due = world.schedule.take_due(now, 1000)
        for ref, message in due:
            envelope = task_envelope(message["task"], message["event"], ROW.queue, published_at=now)
            world.client.lpush(ROW.queue, envelope)
            world.schedule.confirm(ref)
        if len(due) < 1000:
            return


def _check_nothing_lost(world: _World, counts: int) -> None:
    pipe = world.client.pipeline(transaction=False)
    for n in range(counts):
        pipe.hget(world.ledger.record_key("stock.adjust", f"CNT-{n:06d}"), "s")
    states = [s.decode() if s else None for s in pipe.execute()]
    lost = [n for n, s in enumerate(states) if s != "delivered"]
    if lost:
        raise RuntimeError(f"{len(lost)} counts not delivered after the replay (first: CNT-{lost[0]:06d}, "
                           f"{states[lost[0]]})")
