"""Chaos run: "nothing lost, nothing applied twice" measured through the real pipeline.

Run: ``python benchmarks/chaos.py`` (or ``make chaos``): 2,000 mixed events (``--events N`` for another size),
every operation, relative and absolute stock adjustments, dispatch follow-ups sent before their create. The
real processes (``benchmarks._harness``): a valkey-server with AOF, the four sandboxes — Trademax, ka-ching,
StockTrim and Stock2Shop, every warehouse listed at each, so every absolute count is delivered four times and
every relative adjustment twice (Trademax, ka-ching) — each answering 20% of requests with 500, 5% with 429 +
Retry-After and applying 3% and then stalling past the read timeout, Stock2Shop's login tokens expiring every
5 s and its sandbox refusing more than 1 request/s, ka-ching down (500 to all) for 30 s once; the bulk
destinations' counts in batches (the default); two ``wms-relay worker`` processes and the scheduler. Events
arrive in batches through ``wms-relay enqueue``. While they flow, one worker at a time is SIGKILLed and
replaced (3 times), the valkey-server is restarted once and frozen once (SIGSTOP past the store socket
timeout, then SIGCONT), and twice a batch of malformed raw messages ("poison", ``benchmarks/poison.py``: every
shape onto every queue, each destination's too) is pushed. Then the run waits (bounded) for every event to
settle and judges the ledger against the sandbox (``benchmarks.chaos_checks``; the other destinations' ledgers
against their sandboxes: ``benchmarks.chaos_destinations``); it prints counts by state and by fault, the table
per destination, and exits 1 if any check failed. The sandboxes are as strict as their documents: ka-ching
answers an import to an unknown location 200 and fails its values, Stock2Shop ignores a product without a
title or with a product/variant relation it does not hold — so the run loads ka-ching's and Stock2Shop's
catalogs first (every three artnos variants of one product, through ``wms-relay catalog import``) and checks
that 0 values landed in any sandbox's ``ignored`` or ``failed`` list (``not_applied``).
``--trademax-only`` runs without the other three. The reduced run is ``tests/integration/test_chaos.py``.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import RelayRun, catalog_rows, wait_until  # noqa: E402
from benchmarks import chaos_destinations  # noqa: E402
from benchmarks import chaos_sales  # noqa: E402
from benchmarks.chaos_checks import FINAL, Verdict, judge  # noqa: E402
from benchmarks.chaos_events import Planned, build_workload  # noqa: E402
from benchmarks.poison import push_poison  # noqa: E402
from worker.delivery.lost_answers import taken_over  # noqa: E402
from worker.store.connection import STORE_SOCKET_TIMEOUT_SECONDS  # noqa: E402

FAULTS = {"fail_rate": 0.20, "throttle_rate": 0.05, "timeout_after_apply_rate": 0.03,
          "stall_seconds": 2.5,  # a bit above the 2 s read timeout of FAST_SETTINGS
          "latency_ms": 5}  # so that a killed worker has requests on the wire
KILL_AT = (0.15, 0.40, 0.65)  # fraction of deliveries settled when a worker is killed
# The other destinations' sandboxes: Stock2Shop's tokens expire every few seconds (the relay logs in again,
# once for all workers) and it answers 429 above 1 request/s (the relay's own limit: STOCK2SHOP_MAX_RPS,
# default 1).  Their counts go in batches (the default).
OTHERS = {"kaching": (), "stocktrim": (), "stock2shop": ("--max-rps", "1", "--token-ttl", "5")}
# Loaded before any fault is on: every artno a variant of a product (StockTrim's catalog stays identity).
CATALOGS = ("kaching", "stock2shop")
# Flow control (docs/flow-control.md): at OUTAGE_AT of the deliveries settled, ka-ching's sandbox answers
# 500 to everything for OUTAGE_SECONDS; its circuit opens and is probed every few seconds meanwhile.
OUTAGE_AT, OUTAGE_SECONDS, OUTAGE_DESTINATION = 0.30, 30.0, "kaching"
FLOW_SETTINGS = {"STOCK2SHOP_MAX_RPS": "1", "KACHING_PROBE_SECONDS": "5"}
RESTART_REDIS_AT = 0.52
REDIS_DOWN_SECONDS = 3.0  # a real restart (loading a large AOF) takes seconds, not milliseconds
FREEZE_REDIS_AT = 0.30
FREEZE_SECONDS = STORE_SOCKET_TIMEOUT_SECONDS + 2
POISON_AT = (0.10, 0.58)
POISON_SCREEN_WAIT_SECONDS = 60  # at most, before the next action
# The harness's short timeouts (benchmarks/_harness.py FAST_SETTINGS) apply, including the stranded-event
# sweep: every second it re-sends an event nothing has moved for 30 s — the safety net for a message the
# broker itself lost (kombu takes a message off the queue and records it as unacknowledged in two steps;
# a store restart in between loses it).


@dataclass
class ChaosResult:
    verdict: Verdict
    events: int
    actions: list[str] = field(default_factory=list)
    seconds: float = 0.0
    settle_seconds: float = 0.0
    dead_reasons: Counter = field(default_factory=Counter)
    waited: int = 0  # dispatch follow-ups that waited for their create
    killed: set = field(default_factory=set)  # pids the run SIGKILLed
    exits: list = field(default_factory=list)  # processes that exited by themselves
    started_workers: list = field(default_factory=list)  # pid of every worker the run started
    poison: int = 0  # malformed raw messages pushed
    rescued: int = 0  # copies the scheduler's stranded-event sweep queued (all, repeats included)
    copies: Counter = field(default_factory=Counter)  # (destination, state it sat in) -> copies queued
    copied: dict = field(default_factory=dict)  # (destination, state) -> Counter of the final states
    orphans: int = 0  # batches in flight taken again after their flusher was killed
    interrupted: int = 0  # events re-claimed after their sender died or lost the store mid-send
    read_back: int = 0  # one-way dispatch changes found landed by reading the dispatch back
    destinations: list = field(default_factory=list)  # chaos_destinations.DestinationVerdict, one each
    logins: int = 0  # Stock2Shop logins (its tokens expire during the run)
    flow: list = field(default_factory=list)  # what flow control did (circuit, probes, 429s at 1 rps)
    sales: object = None  # chaos_sales.SalesVerdict: StockTrim's sales orders (with StockTrim on)

    @property
    def ok(self) -> bool:
        return (self.verdict.ok and all(v.ok for v in self.destinations)
                and (self.sales is None or self.sales.ok))


def run(count: int = 2000, *, seed: int = 1, workdir: Path, batches: int | None = None,
        settle_timeout: float = 240.0, say=print, every_destination: bool = True,
        outage_seconds: float = OUTAGE_SECONDS) -> ChaosResult:
    """The whole run, bounded: enqueue, chaos, settle (at most ``settle_timeout`` s), judge."""
    batches = batches or max(4, min(10, count // 50))
    planned = build_workload(count, batches=batches, seed=seed)
    started = time.monotonic()
    result = ChaosResult(verdict=Verdict(), events=len(planned))
    others = OTHERS if every_destination else {}
    settings = {**chaos_destinations.settings_for_locations(), **FLOW_SETTINGS} if others else None
    with RelayRun(workdir, sandbox_faults=FAULTS, seed=seed, others=others, settings=settings) as relay:
        if others:
            artnos = [p.event["artno"] for p in planned if p.operation == "stock.adjust"]
            for destination in CATALOGS:
                result.actions.append(f"catalog {destination}: "
                                      + relay.import_catalog(destination, catalog_rows(artnos)))
            for other in relay.others.values():
                other.set_faults(**FAULTS)
        relay.start_scheduler()
        relay.start_worker()
        relay.start_worker()
        say(f"chaos: {len(planned)} events in {batches} batches; faults {FAULTS}")
        feeder = _Feeder(relay, planned)
        feeder.start()
        _make_chaos(relay, planned, feeder, result, started, say, outage_seconds)
        feeder.join()
        if feeder.error:
            raise feeder.error
        settle_start = time.monotonic()
        try:
            wait_until(lambda: _settled(relay, planned) == _expected(relay, planned), settle_timeout,
                       "every delivery to settle", 0.5)
            _wait_quiet(relay)
        except TimeoutError as exc:
            say(f"chaos: {exc}; judging what there is")
        result.settle_seconds = time.monotonic() - settle_start
        ledger = relay.ledger()
        records = {(p.operation, p.key): ledger.get(p.operation, p.key) for p in planned}
        result.verdict = judge(planned, records, relay.sandbox.state(), relay.sandbox.requests())
        for name, other in relay.others.items():
            theirs = relay.ledger(name)
            mine = chaos_destinations.deliveries(planned, name)
            result.destinations.append(chaos_destinations.judge_destination(
                name, planned, {(p.operation, p.key): theirs.get(p.operation, p.key) for p in mine},
                other.state()))
        if "stocktrim" in relay.others:
            theirs = relay.ledger("stocktrim")
            result.sales = chaos_sales.judge_sales(
                planned, {(p.operation, p.key): theirs.get(p.operation, p.key)
                          for p in chaos_sales.sales_deliveries(planned)}, relay.others["stocktrim"].state())
        if "stock2shop" in relay.others:
            state = relay.others["stock2shop"].state()
            result.logins = len(state["authentications"])
            result.flow.append(f"Stock2Shop at 1 request/s: its sandbox refused {state['rate_limited']} "
                               "request(s) with 429 (each holds it for its Retry-After)")
        if others:
            logs = "".join(p.read_text(errors="replace") for p in Path(workdir).glob("worker*.log"))
            result.flow.append(f"circuits opened {logs.count('circuit opened')} time(s), closed again "
                               f"{logs.count('circuit closed')} time(s); probes that found it still failing: "
                               f"{logs.count('probed: still failing')}, that found it up: "
                               f"{logs.count('probed: it answered')}")
        result.exits += [f"pid {p.pid} exited (code {p.returncode}) without being killed; see its log"
                         for p in [*relay.workers, relay.scheduler]
                         if p.poll() is not None and p.pid not in result.killed]
        # Every worker pid replaced only by the run's own kills: the live ones are exactly those started
        # and not killed.
        result.started_workers = [p.pid for p in relay.workers]
        alive = {p.pid for p in relay.workers if p.poll() is None}
        if alive != set(result.started_workers) - result.killed:
            result.exits.append(f"workers alive {sorted(alive)} != started {result.started_workers} minus "
                                f"killed {sorted(result.killed)}")
        for problem in result.exits:
            result.verdict.fail("processes", problem)
        malformed = _malformed_letters(relay)
        if malformed != result.poison:
            result.verdict.fail("poison", f"{result.poison} malformed messages pushed, {malformed} "
                                          "malformed_message dead letters")
        scheduler_log = (Path(workdir) / "scheduler.log").read_text(errors="replace")
        result.copies, swept = sweep_copies(scheduler_log)
        result.rescued = sum(result.copies.values())
        result.copied = {where: Counter(_final_state(relay, ref) for ref in refs)
                         for where, refs in swept.items()}
        result.orphans = sum(p.read_text(errors="replace").count(ORPHAN_TAKEN)
                             for p in Path(workdir).glob("worker*.log"))
        result.dead_reasons = _dead_reasons(relay)
        found = [r for r in records.values() if r is not None]
        result.waited = sum(1 for r in found if any(step["to"] == "waiting" for step in r.history))
        result.interrupted = sum(1 for r in found if taken_over(r.history))
        result.read_back = sum(1 for r in found if (r.result or {}).get("read_back"))
    result.seconds = time.monotonic() - started
    return result


class _Feeder(threading.Thread):
    """The WMS: each batch through ``wms-relay enqueue``, one call per operation.  ``paused`` (held while
    the store restarts) keeps a call from overlapping the outage: a failed call is repeated, and the
    repeat would publish again events of that batch that the pipeline itself might have lost."""

    def __init__(self, relay: RelayRun, planned: list[Planned]) -> None:
        super().__init__(daemon=True)
        self.relay, self.planned = relay, planned
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.paused = threading.Lock()

    def run(self) -> None:
        try:
            for _, group in groupby(self.planned, key=lambda p: (p.batch, p.operation)):
                group = list(group)
                with self.paused:
                    self.relay.enqueue(group[0].operation, [p.event for p in group])
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            self.done.set()


def _expected(relay: RelayRun, planned: list[Planned]) -> int:
    """Deliveries the run makes: one per planned event (Trademax), plus each other destination's."""
    return len(planned) + sum(len(_deliveries(planned, name)) for name in relay.others)


def _deliveries(planned: list[Planned], name: str) -> list[Planned]:
    """A destination's deliveries of the run: its stock counts, and StockTrim's sales orders."""
    found = chaos_destinations.deliveries(planned, name)
    return found + chaos_sales.sales_deliveries(planned) if name == "stocktrim" else found


def _settled(relay: RelayRun, planned: list[Planned]) -> int:
    """How many planned deliveries (every destination's) are in a final state (0 while the store is
    unreachable)."""
    from worker.destinations.table import DESTINATIONS

    try:
        client = relay.redis(decode_responses=True)
        pipe = client.pipeline(transaction=False)
        for p in planned:
            pipe.hget(f"wms:event:{p.operation}:{p.key}", "s")
        for name in relay.others:
            for p in _deliveries(planned, name):
                pipe.hget(f"{DESTINATIONS[name].namespace}:event:{p.operation}:{p.key}", "s")
        states = pipe.execute()
        client.close()
    except Exception:  # the store is restarting
        return 0
    return sum(1 for s in states if s in FINAL)


def _make_chaos(relay: RelayRun, planned: list[Planned], feeder: _Feeder, result: ChaosResult,
                started: float, say, outage_seconds: float) -> None:
    """Kill a worker at each KILL_AT fraction settled, restart valkey at RESTART_REDIS_AT; every action
    happens at the latest once the feeder is done and nothing more settles for a while."""
    plan = sorted([(f, "kill") for f in KILL_AT] + [(f, "poison") for f in POISON_AT]
                  + [(RESTART_REDIS_AT, "restart"), (FREEZE_REDIS_AT, "freeze")]
                  + ([(OUTAGE_AT, "outage")] if OUTAGE_DESTINATION in relay.others and outage_seconds
                     else []))
    victim = 0
    expected = _expected(relay, planned)
    last_settled, last_change = -1, time.monotonic()
    while plan:
        settled = _settled(relay, planned)
        if settled != last_settled:
            last_settled, last_change = settled, time.monotonic()
        stalled = feeder.done.is_set() and time.monotonic() - last_change > 5
        fraction, action = plan[0]
        if settled >= fraction * expected or stalled:
            plan.pop(0)
            at = f"t={time.monotonic() - started:.1f}s, {settled}/{expected} deliveries settled"
            if action == "kill":
                process = relay.workers[victim]
                if process.poll() is not None:
                    result.exits.append(f"worker pid {process.pid} had exited by itself (code "
                                        f"{process.returncode}) before its kill")
                result.killed.add(process.pid)
                relay.kill_worker(process)
                relay.start_worker()
                victim += 1  # the oldest live worker is next
                result.actions.append(f"SIGKILL worker pid {process.pid} and start another ({at})")
            elif action == "outage":
                _outage(relay.others[OUTAGE_DESTINATION], outage_seconds)
                result.actions.append(f"{OUTAGE_DESTINATION}'s sandbox answers 500 to all for "
                                      f"{outage_seconds:g} s ({at})")
            elif action == "poison":
                pushed = push_poison(relay.redis())
                result.poison += pushed
                # The next action waits until the workers have screened this batch: a worker SIGKILLed
                # between kombu's pop of a raw message and its unacked record loses it (kombu's own gap,
                # documented in docs/events.md); the poison check is about the screen, not that window.
                deadline = time.monotonic() + POISON_SCREEN_WAIT_SECONDS
                while _malformed_letters(relay) < result.poison and time.monotonic() < deadline:
                    time.sleep(0.2)
                result.actions.append(f"push {pushed} malformed raw messages onto the queues ({at})")
            elif action == "freeze":
                with feeder.paused:
                    relay.valkey.freeze(FREEZE_SECONDS)
                result.actions.append(f"freeze valkey-server (SIGSTOP) {FREEZE_SECONDS:g} s, past the "
                                      f"{STORE_SOCKET_TIMEOUT_SECONDS:g} s store socket timeout ({at})")
            else:
                with feeder.paused:
                    relay.valkey.restart(REDIS_DOWN_SECONDS)
                result.actions.append(f"restart valkey-server, AOF on, down {REDIS_DOWN_SECONDS:g} s ({at})")
            say(f"chaos: {result.actions[-1]}")
        time.sleep(0.2)


def _outage(sandbox, seconds: float) -> None:
    """Every request refused with 500 for ``seconds``, then the run's faults again."""
    sandbox.set_faults(fail_rate=1.0, throttle_rate=0.0, timeout_after_apply_rate=0.0)
    timer = threading.Timer(seconds, lambda: sandbox.set_faults(**FAULTS))
    timer.daemon = True
    timer.start()


def _wait_quiet(relay: RelayRun) -> None:
    """Queues, unacknowledged messages and the retry schedule empty, and the sandbox sees no new
    request for 2 s: nothing is still on its way that could change what we judge."""
    from worker.destinations.table import QUEUES

    client = relay.redis()

    def quiet() -> bool:
        pipe = client.pipeline(transaction=False)
        for queue in QUEUES:
            pipe.llen(queue)
        pipe.hlen("unacked").zcard("wms:retry:due").zcard("wms:retry:in-flight")
        return not any(pipe.execute())

    wait_until(quiet, 60, "queues and the retry schedule to empty", 0.2)
    seen = -1
    for _ in range(30):
        count = sum(len(s.requests()) for s in [relay.sandbox, *relay.others.values()])
        if count == seen:
            return
        seen = count
        time.sleep(2.0)
    raise TimeoutError("the sandbox still received requests after 60 s")


def _malformed_letters(relay: RelayRun) -> int:
    from worker.destinations.table import delivery_ref
    from worker.store.dead_letters import DeadLetters

    letters = DeadLetters(relay.redis(), delivery_ref=delivery_ref)
    return sum(1 for letter in letters.list() if letter.reason == "malformed_message")


def _dead_reasons(relay: RelayRun) -> Counter:
    from worker.destinations.table import delivery_ref
    from worker.store.dead_letters import DeadLetters

    return Counter(f"{letter.destination} {letter.operation}: {letter.reason}"
                   for letter in DeadLetters(relay.redis(), delivery_ref=delivery_ref).list())


# worker.scheduling.stranded's warning for each copy it queues; worker.delivery.batch_delivery's for each
# orphaned batch taken again.
SWEPT = re.compile(r"wms_relay\.stranded: (\S+) sat (\w+) for \S+ s with nothing to move it")
ORPHAN_TAKEN = "again: the flusher that had it stopped before settling it"


def sweep_copies(scheduler_log: str) -> tuple[Counter, dict]:
    """The copies the stranded-event sweep queued, by (destination, the state its delivery sat in), and the
    deliveries copied, by the same."""
    from worker.destinations.table import split_delivery_ref

    copies, refs = Counter(), {}
    for ref, state in SWEPT.findall(scheduler_log):
        found = split_delivery_ref(ref)
        where = (found[0].name if found is not None else "?", state)
        copies[where] += 1
        refs.setdefault(where, set()).add(ref)
    return copies, refs


def _final_state(relay: RelayRun, ref: str) -> str:
    from worker.destinations.table import split_delivery_ref

    found = split_delivery_ref(ref)
    record = relay.ledger(found[0].name).get(found[1], found[2]) if found is not None else None
    return record.state if record is not None else "no record"


def copies_line(result: ChaosResult) -> str:
    """What the stranded-event sweep's copies were: by destination and the state their delivery sat in."""
    if not result.rescued:
        return "0 spare copies were queued by the stranded-event sweep"
    parts = []
    for (destination, state), n in sorted(result.copies.items()):
        ended = result.copied.get((destination, state), Counter())
        parts.append(f"{destination} {state} ×{n} ({sum(ended.values())} deliveries, now "
                     + ", ".join(f"{final} {k}" for final, k in sorted(ended.items())) + ")")
    share = result.rescued / max(result.events, 1)
    return (f"{result.rescued} spare copies ({share:.1%} of the events) were queued by the stranded-event "
            f"sweep for deliveries it found sitting with nothing it could see moving them — "
            f"{'; '.join(parts)}; a copy goes through the ledger's claim, so one that found its delivery "
            f"claimed (a batch's claim included) or settled did nothing")


def report(result: ChaosResult) -> str:
    """The tables: events by operation and state, requests by injected fault, the checks."""
    v = result.verdict
    lines = [f"{result.events} events, {result.seconds:.0f} s in all "
             f"({result.settle_seconds:.0f} s to settle "
             f"after the last batch and action)", "", "Chaos actions:"]
    lines += [f"- {a}" for a in result.actions]
    states = ["delivered", "superseded", "uncertain", "dead"]
    other = sorted({s for _, s in v.states} - set(states))
    columns = states + other
    lines += ["", "| operation | " + " | ".join(columns) + " | total |",
              "|---|" + "---:|" * (len(columns) + 1)]
    operations = sorted({op for op, _ in v.states})
    for op in operations + ["all"]:
        counts = [sum(n for (o, s), n in v.states.items() if s == col and (op == "all" or o == op))
                  for col in columns]
        label = "**all**" if op == "all" else op
        lines.append(f"| {label} | " + " | ".join(str(c) for c in counts) + f" | {sum(counts)} |")
    lines += ["", "| injected fault | requests | events that met it |", "|---|---:|---:|"]
    for fault in ("server_error", "throttle", "stall", "interrupted", "none"):
        lines.append(f"| {fault} | {v.faults[fault]} | {len(v.faulted_events[fault])} |")
    lines += ["", f"{result.waited} dispatch follow-ups waited for their create; {result.interrupted} events "
                  f"were taken over after their worker died or lost the store mid-send; "
                  f"{copies_line(result)}; {result.orphans} batches in flight were taken again after "
                  f"their flusher was killed; "
                  f"{result.read_back} publishes/deletes whose resend Trademax refused were read back and "
                  f"found landed. {result.poison} malformed raw messages were pushed; workers started: "
                  f"{len(result.started_workers)}, killed by the run: {len(result.killed)}."]
    if result.dead_reasons:
        letters = ", ".join(f"{k} ×{n}" for k, n in sorted(result.dead_reasons.items()))
        lines += ["", f"Dead letters: {letters}"]
    lines += ["", "| check (Trademax) | result |", "|---|---|"]
    for check, problems in v.violations.items():
        lines.append(f"| {check} | {'ok' if not problems else f'{len(problems)} violation(s)'} |")
    for check, problems in v.violations.items():
        for problem in problems[:20]:
            lines.append(f"VIOLATION {check}: {problem}")
    if result.destinations:
        lines += ["", "The other destinations (each absolute count to each; relative adjustments to "
                      "ka-ching; "
                      f"Stock2Shop logins: {result.logins}):"]
        lines += chaos_destinations.table(result.destinations)
    if result.sales is not None:
        lines += chaos_sales.table(result.sales)
    if result.flow:
        lines += ["", "Flow control:"] + [f"- {line}" for line in result.flow]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep logs and data here (default: a temp dir)")
    parser.add_argument("--trademax-only", action="store_true",
                        help="without ka-ching, StockTrim, Stock2Shop")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wms-chaos-") as tmp:
        result = run(args.events, seed=args.seed, workdir=args.workdir or Path(tmp),
                     every_destination=not args.trademax_only)
    print(report(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
