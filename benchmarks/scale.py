"""Lean at scale (issue 21): bytes per settled delivery and per dead letter, read times with a big store,
and the outage replay (benchmarks/scale_replay.py).

On a private valkey-server (AOF off while seeding: the numbers are memory, not disk):

1. **Bytes per settled delivery.** ``--sample`` deliveries per destination go through the ledger's own
   calls (accept, claim, an attempt, ``delivered`` with the answer) — the baseline, measured in this run:
   a settled record with its details — then ``worker.store.settled_records`` compacts them (the
   scheduler's job after SETTLED_DETAIL_HOURS).  ``used_memory`` before and after, per delivery.
2. **Bytes per dead letter**, with every index entry: ``--sample`` letters written by
   ``DeadLetters.add`` alone (no ledger record), ``used_memory`` per letter.
3. **Read times with ``--settled`` settled deliveries and ``--letters`` dead letters.**  The baseline,
   measured in the same run: each read on the store before it is filled.  Then ``--settled`` compacted
   records are copied straight into the four destinations' ledgers (the compacted sample's fields, a
   fresh key and fingerprint each; pipelined), and the letters written as ``benchmarks/desk_pages.py``
   does (each with its ledger record in ``dead``).  Timed, ``--rounds`` times each: ``wms-relay status
   --json``, ``wms-relay event`` of a compacted delivery and ``wms-relay dead list`` (in this process,
   the command's whole work without the interpreter's start), the desk's overview (the real desk process
   over HTTP) and a metrics scrape (``worker.observe.metrics.StoreCollector``, rendered).
4. **The outage replay** (``--counts`` counts, a 1-hour pause in simulated time, ``--rate`` a second):
   the sweep of issue 21 against the rule before it, in this run (benchmarks/scale_replay.py).

    .venv/bin/python benchmarks/scale.py [--settled 1000000] [--letters 100000] [--counts 100000]
                                         [--rules knows,age|knows|none] [--replay-only]

``--rules knows`` runs the replay with the sweep of issue 21 alone (the age-alone baseline takes as long
again); ``--rules none`` skips the replay; ``--replay-only`` skips parts 1-3.

Bounded: the store holds about 0.4 GB with the defaults (checked against the machine's free memory
first: ``--settled`` and ``--letters`` scale it), and everything runs in its own temporary directory,
removed at the end.  Exit code 1 when a target of issue 21 is missed."""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._harness import Desk, Valkey  # noqa: E402
from benchmarks.desk_pages import PASSWORD, p95, seed as seed_letters, signed_in_session  # noqa: E402
from benchmarks.scale_replay import replay  # noqa: E402
from worker.destinations.table import DESTINATIONS, delivery_ref  # noqa: E402
from worker.store.dead_letters import DeadLetters  # noqa: E402
from worker.store.ledger import Ledger, LedgerEvent  # noqa: E402
from worker.store.records import AttemptEntry  # noqa: E402
from worker.store.settled_records import SettledRecords  # noqa: E402

NOW = time.time()
TARGET_SETTLED_BYTES, TARGET_LETTER_BYTES, TARGET_P95_MS, TARGET_SPARE = 250, 1500, 100.0, 0.01
FIELDS = {"artno": "ART-1", "warehouse_id": "nw", "quantity": 12, "type": "absolute"}


def used(client) -> int:
    """The server's used_memory once the store-call replies are gone (``<ns>:request:*``: kept ten minutes
    after each call, not part of what a delivery or a letter costs for its lifetime)."""
    for key in client.scan_iter(match="*:request:*", count=1000):
        client.unlink(key)
    for _ in range(200):  # what UNLINK and the compaction's DEL hand the background thread is freed first
        memory = client.info("memory")
        if not int(memory.get("lazyfree_pending_objects", 0)):
            break
        time.sleep(0.05)
    return int(memory["used_memory"])


def settled_bytes(client, per_destination: int) -> tuple[float, float, dict]:
    """Bytes per settled delivery with its details and compacted; a compacted record per destination.
    One delivery per destination goes first, unmeasured: the scripts' cache and the ledgers' counters
    are the store's, not a delivery's."""
    client.flushdb()
    deliver_some(client, 0, 1)
    before = used(client)
    deliver_some(client, 1, per_destination + 1)
    count = per_destination * len(DESTINATIONS)
    full = (used(client) - before) / count
    for target in DESTINATIONS.values():
        SettledRecords(client, target.namespace, operations=["stock.adjust"],
                       detail_seconds=3600.0).compact_due(max_batches=10**6)
    compact = (used(client) - before) / count
    samples = {}
    first = Ledger(client, lease_seconds=60, delivered_retention_seconds=30 * 86400)
    for name, target in DESTINATIONS.items():
        record_key = first.sibling(target.namespace).record_key("stock.adjust", f"S-{name}-0000001")
        samples[name] = client.hgetall(record_key)
    return full, compact, samples


def deliver_some(client, start: int, stop: int) -> None:
    """Deliveries ``start`` .. ``stop - 1`` of stock adjustments to each destination, through the ledger's
    own calls, settled two days ago."""
    clock = {"now": NOW - 2 * 86400}
    first = Ledger(client, lease_seconds=60, delivered_retention_seconds=30 * 86400,
                   clock=lambda: clock["now"])
    for name, target in DESTINATIONS.items():
        ledger = first.sibling(target.namespace)
        for n in range(start, stop):
            key = f"S-{name}-{n:07d}"
            accepted = ledger.accept(LedgerEvent("stock.adjust", key, {**FIELDS, "quantity": n},
                                                 "2026-05-01T06:00:00Z", key))
            ledger.claim("stock.adjust", key, accepted.fingerprint, "bench")
            ledger.transition("stock.adjust", key, "delivered", reason="sent: 200 OK", owner="bench",
                              result={"status": 200, "body": {"ok": True, "artno": "ART-1"}},
                              log=AttemptEntry(attempt=1, at=clock["now"], outcome="sent", status=200,
                                               latency=0.12))


def letter_bytes(client, count: int) -> float:
    """Bytes per dead letter, its indexes included (the first letter, unmeasured, loads the scripts)."""
    client.flushdb()
    letters = DeadLetters(client, lambda: NOW, delivery_ref=delivery_ref)
    before = 0
    for n in range(count + 1):
        if n == 1:
            before = used(client)
        key = f"L-{n:07d}"
        attempt = {"attempt": 1, "at": NOW, "outcome": "permanent", "status": 400, "error_code": 451,
                   "messages": [f"param artno ART-{n} does not exist"], "latency": 0.12}
        letters.add("stock.adjust", key, {**FIELDS, "artno": f"ART-{n}", "event_id": key,
                                          "occurred_at": "2026-05-01T06:00:00Z"}, "permanent",
                    attempt["messages"], [attempt], detail=f"Trademax refused it: artno ART-{n}")
    return (used(client) - before) / count


def copy_settled(client, samples: dict, total: int) -> tuple[int, float]:
    """``total`` compacted records, a quarter per destination, written straight (pipelined); how many,
    and the bytes each took."""
    before = used(client)
    first = Ledger(client, lease_seconds=60, delivered_retention_seconds=30 * 86400)
    per = total // len(samples)
    for name, fields in samples.items():
        ledger = first.sibling(DESTINATIONS[name].namespace)
        fields = {k.decode(): v for k, v in fields.items()}
        for start in range(0, per, 10_000):
            pipe = client.pipeline(transaction=False)
            for n in range(start, min(start + 10_000, per)):
                key = ledger.record_key("stock.adjust", f"M-{n:07d}")
                pipe.hset(key, mapping={**fields, "e": f"{n:032x}"})
                pipe.expire(key, 30 * 86400)
            pipe.execute()
    return per * len(samples), (used(client) - before) / (per * len(samples))


def timed(call, rounds: int) -> list[float]:
    call()  # warm: scripts loaded, connections open
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def cli(*argv: str):
    from worker.cli import main

    def run() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            code = main(list(argv))
        if code not in (0, 1):
            raise RuntimeError(f"wms-relay {' '.join(argv)} exited {code}")
    return run


def scrape(url: str):
    from prometheus_client import CollectorRegistry, generate_latest

    from worker.observe.metrics import StoreCollector
    from worker.settings import Settings

    client = redis.Redis.from_url(url)
    registry = CollectorRegistry()
    registry.register(StoreCollector(lambda: client, Settings.from_env()))
    return lambda: generate_latest(registry)


def reads(url: str, desk_session, desk_url: str, event: tuple[str, str], rounds: int) -> dict[str, list]:
    return {
        "wms-relay status --json": timed(cli("status", "--json"), rounds),
        "wms-relay event (compacted)": timed(cli("event", *event, "--json"), rounds),
        "wms-relay dead list --limit 50": timed(cli("dead", "list", "--limit", "50"), rounds),
        "desk overview (HTTP)": timed(lambda: desk_session.get(desk_url, timeout=60).raise_for_status(),
                                      rounds),
        "metrics scrape": timed(scrape(url), rounds),
    }


RULES = ("knows", "age")


def rules_of(value: str) -> tuple[str, ...]:
    """``--rules``: a comma-separated choice of the replay's sweep rules, or ``none``."""
    if value.strip() == "none":
        return ()
    rules = tuple(part.strip() for part in value.split(","))
    unknown = [rule for rule in rules if rule not in RULES]
    if unknown or not rules:
        raise argparse.ArgumentTypeError(f"unknown sweep rule {', '.join(unknown) or value!r}: "
                                         f"choose from {', '.join(RULES)} (comma-separated) or none")
    return rules


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settled", type=int, default=1_000_000)
    parser.add_argument("--letters", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=1000, help="per destination / letters for the bytes")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--counts", type=int, default=100_000, help="the outage replay's backlog")
    parser.add_argument("--rate", type=int, default=100, help="the replay's rate limit (per second)")
    parser.add_argument("--rules", type=rules_of, default=RULES,
                        help="the replay's sweep rules, comma-separated: knows (issue 21), age (the baseline "
                             "before it); none skips the replay (default: knows,age)")
    parser.add_argument("--replay-only", action="store_true",
                        help="only the outage replay: no bytes, no reads with the big store")
    args = parser.parse_args()
    if args.replay_only and not args.rules:
        parser.error("--replay-only with --rules none leaves nothing to run")
    need = 0 if args.replay_only else args.settled * 350 + args.letters * 4000  # a letter has its record too
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if need > free // 2:
        print(f"refused: about {need / 1e9:.1f} GB needed, {free / 1e9:.1f} GB free", file=sys.stderr)
        return 2
    logging.disable(logging.WARNING)  # the sweep's line per copy
    work = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    valkey = Valkey(work / "valkey").start()
    desk, met = None, True
    try:
        client = redis.Redis.from_url(valkey.url)
        if not args.replay_only:
            measured = measure_store(args, client, valkey, work)
            desk = measured.pop("desk")
            met = report_store(args, **measured)
        client.config_set("appendonly", "yes")  # the replay restarts the store: its AOF brings it back
        outcomes = []
        for rule in args.rules:
            outcomes.append(replay(valkey.url, valkey.restart, rule=rule, counts=args.counts, rate=args.rate,
                                   progress=progress_line))
            print_replay(args, outcomes[-1:], header=len(outcomes) == 1)  # each rule as it ends: a long run
    finally:
        if desk is not None:
            desk.stop()
        valkey.kill()
        shutil.rmtree(work, ignore_errors=True)
    return report(met, outcomes)


def measure_store(args, client, valkey, work: Path) -> dict:
    """Parts 1-3: bytes per settled delivery and per letter, then the reads with the big store."""
    client.config_set("appendonly", "no")
    full, compact, samples = settled_bytes(client, args.sample)
    per_letter = letter_bytes(client, args.sample)
    client.flushdb()
    os.environ.update({"REDIS_URL": valkey.url, "WMS_RELAY_VAR_DIR": str(work / "var"),
                       "LOG_LEVEL": "ERROR"})
    users = work / "desk-users"
    from worker.web.desk.users import UsersFile

    UsersFile(users).add("bench", "operator", PASSWORD)
    desk = Desk({**os.environ, "DESK_USERS_FILE": str(users)}, work / "desk.log")
    session = signed_in_session(desk.url)
    event = ("stock.adjust", "M-0000007", "--destination", "kaching")
    empty = reads(valkey.url, session, desk.url, event, args.rounds)
    started = time.monotonic()
    copied, per_copied = copy_settled(client, samples, args.settled)
    seed_letters(valkey.url, args.letters)
    seeded = time.monotonic() - started
    full_store = reads(valkey.url, session, desk.url, event, args.rounds)
    return {"desk": desk, "sizes": (full, compact, per_copied, per_letter), "copied": copied,
            "seeded": seeded, "memory": used(client), "empty": empty, "full_store": full_store}


def report(met: bool, outcomes: list) -> int:
    """The verdict: the store's targets (``met``) and the replay's with the sweep of issue 21."""
    met = met and all(o.spare_copies <= TARGET_SPARE * o.counts and o.peak_queue <= o.counts
                      for o in outcomes if o.rule == "knows")
    print("\nall targets met" if met else "\na target is missed (see above)")
    return 0 if met else 1


def report_store(args, sizes, copied, seeded, memory, empty, full_store) -> bool:
    full, compact, per_copied, per_letter = sizes
    print(f"\n## Bytes (used_memory per item, {args.sample:,} per destination / letters)\n")
    print("| what | bytes | target |\n|---|---:|---:|")
    print(f"| settled delivery with its details (baseline) | {full:,.0f} | |")
    print(f"| settled delivery compacted | {compact:,.0f} | ≤ {TARGET_SETTLED_BYTES} |")
    print(f"| settled delivery compacted, {copied:,} of them | {per_copied:,.0f} "
          f"| ≤ {TARGET_SETTLED_BYTES} |")
    print(f"| dead letter with its indexes | {per_letter:,.0f} | ≤ {TARGET_LETTER_BYTES:,} |")
    print(f"\n## Reads with {copied:,} settled deliveries and {args.letters:,} dead letters "
          f"(seeded in {seeded:.0f} s; store {memory / 1e6:,.0f} MB), {args.rounds} rounds\n")
    print("| read | empty store p50 ms (baseline) | full p50 ms | full p95 ms | p50 ÷ baseline |")
    print("|---|---:|---:|---:|---:|")
    worst = 0.0
    for name, times in full_store.items():
        base = statistics.median(empty[name])
        worst = max(worst, p95(times))
        print(f"| {name} | {base:.1f} | {statistics.median(times):.1f} | {p95(times):.1f} | "
              f"{statistics.median(times) / base:.1f}× |")
    print(f"\nworst p95: {worst:.1f} ms (target ≤ {TARGET_P95_MS:.0f} ms)")
    return per_copied <= TARGET_SETTLED_BYTES and per_letter <= TARGET_LETTER_BYTES and worst <= TARGET_P95_MS


def progress_line(rule: str, simulated: float, result, queue: int) -> None:
    """A line every few simulated minutes of a long replay (to stderr: the tables stay on stdout)."""
    print(f"replay {rule}: {simulated:,.0f} s simulated, {result.delivered:,} delivered, queue {queue:,}, "
          f"spare copies {result.spare_copies:,}, {result.wall_seconds:,.0f} s wall", file=sys.stderr,
          flush=True)


def print_replay(args, outcomes: list, *, header: bool) -> None:
    if header:
        print(f"\n## Outage replay: {args.counts:,} counts, paused 1 h (simulated), rate {args.rate}/s, "
              "store restarted halfway through the drain\n")
        print("| sweep | spare copies | % of counts | copies taken by the worker | peak queue | drain s "
              "(ideal) | wall s |\n|---|---:|---:|---:|---:|---:|---:|")
    for o in outcomes:
        label = "knows (issue 21)" if o.rule == "knows" else "age alone (baseline)"
        print(f"| {label} | {o.spare_copies:,} | {100 * o.spare_copies / o.counts:.2f} | {o.spare_taken:,} "
              f"| {o.peak_queue:,} | {o.drain_seconds:,.0f} ({o.counts / args.rate:,.0f}) "
              f"| {o.wall_seconds:.0f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
