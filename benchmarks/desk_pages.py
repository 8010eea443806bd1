"""How fast the support desk's pages answer with 100,000 dead letters (docs/benchmarks.md, "Support desk").

A private valkey-server is filled through the relay's own stores (``Ledger``, ``DeadLetters``, the retry
schedule, the audit log): ``--letters`` dead letters (each with its ledger record in ``dead`` and one
attempt), a few hundred uncertain events and scheduled retries, six hours of per-minute counts.  Then the
real desk process (``wms-relay desk``: waitress, 8 threads) is signed in to with ``requests`` and each page
is fetched ``--rounds`` times, one after the other; the figure is the whole request as the client sees it.
The baseline, measured in the same run on the same server, is ``/healthz`` (no Redis, no template).

    .venv/bin/python benchmarks/desk_pages.py [--letters 100000] [--rounds 40]

Exit code 1 when a page's p95 is over ``--target-ms`` (300 by default)."""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._harness import Desk, Valkey  # noqa: E402
from worker.store.audit_log import AuditLog  # noqa: E402
from worker.destinations.table import delivery_ref  # noqa: E402
from worker.store.dead_letters import DeadLetters  # noqa: E402
from worker.store.ledger import Ledger, LedgerEvent  # noqa: E402
from worker.store.records import AttemptEntry  # noqa: E402
from worker.store.retry_schedule import RetrySchedule  # noqa: E402

EXAMPLES = ROOT / "examples"
OPERATIONS = ["receipt.create", "stock.adjust", "dispatch.create", "inventory.update_packages",
              "order.lock_lines", "vendor_dispatch.create"]
REASONS = [("permanent", 0.55), ("exhausted", 0.3), ("dependency_timeout", 0.05), ("conflict", 0.05),
           ("invalid", 0.05)]
PASSWORD = "bench-password-1"


def _event(operation: str, n: int) -> tuple[str, dict]:
    fields = json.loads((EXAMPLES / f"{operation}.json").read_text())
    fields.pop("occurred_at", None)
    key = f"BENCH-{n:06d}"
    if "transaction_id" in fields:
        fields["transaction_id"] = key
    if "order_no" in fields:
        fields["order_no"] = f"IO{n:06d}"
    if "artno" in fields:
        fields["artno"] = f"ART-{n % 5000}"
    return key, fields


def seed(url: str, letters: int, threads: int = 6) -> dict:
    """Fill the store; returns a few keys the pages will look for."""
    import redis

    rng = random.Random(7)
    now = time.time()
    plan = []
    for n in range(letters):
        operation = OPERATIONS[n % len(OPERATIONS)]
        reason = rng.choices([r for r, _ in REASONS], [w for _, w in REASONS])[0]
        # Synthetic: a second destination to filter by.
        destination = "stocktrim" if n % 20 == 0 else "trademax"
        plan.append((n, operation, reason, destination, now - (letters - n) * 2.5))  # ~3 days of letters

    def work(part: list) -> None:
        client = redis.Redis.from_url(url, decode_responses=True)
        clock = {"now": now}
        ledger = Ledger(client, lease_seconds=120, delivered_retention_seconds=86400 * 30,
                        clock=lambda: clock["now"], delivered_window_seconds=6 * 3600)
        dead = DeadLetters(client, lambda: clock["now"], delivery_ref=delivery_ref)
        for n, operation, reason, destination, created in part:
            clock["now"] = created
            key, fields = _event(operation, n)
            message = {**fields, "event_id": key, "occurred_at": "2024-05-13T15:47:10+02:00"}
            attempt = {"attempt": 1, "at": created, "outcome": "permanent", "status": 400, "error_code": 451,
                       "messages": [f"param artno ART-{n % 5000} does not exist"], "latency": 0.12}
            if reason not in ("invalid", "conflict"):
                ledger.accept(LedgerEvent(operation, key, fields, "2024-05-13T13:47:10Z", key))
                ledger.transition(operation, key, "dead", reason=f"{reason}: refused",
                                  log=AttemptEntry(**{**attempt, "messages": tuple(attempt["messages"])}))
            dead.add(operation, key, message, reason, attempt["messages"], [attempt],
                     detail=f"Trademax refused it: HTTP 400, error_code 451: artno ART-{n % 5000}",
                     destination=destination)
        client.close()

    chunks = [plan[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=work, args=(chunk,)) for chunk in chunks]
    for t in workers:
        t.start()
    for t in workers:
        t.join()

    client = redis.Redis.from_url(url, decode_responses=True)
    ledger = Ledger(client, lease_seconds=120, delivered_retention_seconds=86400, clock=lambda: now)
    schedule = RetrySchedule(client, clock=lambda: now)
    for n in range(300):  # uncertain events and scheduled retries
        key, fields = _event("stock.adjust", letters + n)
        ledger.accept(LedgerEvent("stock.adjust", key, fields, None, key))
        ledger.transition("stock.adjust", key, "uncertain" if n % 2 else "retrying", reason="bench")
        if not n % 2:
            schedule.schedule(f"stock.adjust:{key}", {"task": "trademax.stock.adjust"}, now + n)
    minute = int(now // 60)
    delivered = {str(minute - m): rng.randint(20, 400) for m in range(360)}
    client.hset("wms:ledger:delivered:per_minute", mapping={
        **delivered, **{f"f{minute - m}": rng.randint(0, 30) for m in range(360)}})
    client.hincrby("wms:ledger:totals", "delivered", sum(delivered.values()))
    audit = AuditLog(client)
    for n in range(2000):
        audit.record(actor=f"person{n % 7}", action="retry", target=f"dl-{n + 1}", reason="bench",
                     status="done", message="retried: queued for delivery", via="desk")
    client.close()
    first_key, _ = _event(OPERATIONS[3], 3)
    return {"event": (OPERATIONS[3], first_key), "order_no": f"IO{letters // 2:06d}"}


def signed_in_session(desk_url: str) -> requests.Session:
    session = requests.Session()
    page = session.get(desk_url + "sign-in", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = session.post(desk_url + "sign-in", data={"name": "bench", "password": PASSWORD,
                                                      "csrf_token": token}, timeout=30, allow_redirects=False)
    assert answer.status_code == 302, answer.text[:500]
    return session


def measure(session: requests.Session, url: str, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        answer = session.get(url, timeout=60)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])
    return times


def p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--letters", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--target-ms", type=float, default=300.0)
    parser.add_argument("--keep", action="store_true", help="leave the desk running (prints how to reach it)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="desk-bench-"))
    valkey = Valkey(work / "valkey").start()
    desk = None
    try:
        started = time.monotonic()
        found = seed(valkey.url, args.letters)
        print(f"seeded {args.letters:,} dead letters in {time.monotonic() - started:.0f} s", flush=True)
        users = work / "desk-users"
        from worker.web.desk.users import UsersFile

        UsersFile(users).add("bench", "operator", PASSWORD)
        env = {**os.environ, "REDIS_URL": valkey.url, "DESK_USERS_FILE": str(users),
               "WMS_RELAY_VAR_DIR": str(work / "var"), "LOG_LEVEL": "WARNING"}
        desk = Desk(env, work / "desk.log")
        session = signed_in_session(desk.url)
        op, key = found["event"]
        pages = [
            ("baseline: /healthz", "healthz"),
            ("overview", ""),
            ("dead letters, page 1", "dead-letters"),
            ("dead letters, page 1,000", "dead-letters?page=1000"),
            ("filter: operation", "dead-letters?operation=stock.adjust"),
            ("filter: reason + destination", "dead-letters?reason=exhausted&destination=stocktrim"),
            ("filter: age (older than 1 d)", "dead-letters?age=older-1d"),
            ("search: an order_no (lookup)", f"dead-letters?q={found['order_no']}"),
            ("search: an artno + operation (lookup)", "dead-letters?q=art-4242&operation=stock.adjust"),
            ("search: common text (walk)", "dead-letters?q=does+not+exist"),
            ("search: rare text (walk of 20,000)", "dead-letters?q=nowhere+to+be+found"),
            ("search: rare text, next 20,000", "dead-letters?q=nowhere+to+be+found&from=20000"),
            ("event page", f"events/{op}/{key}"),
            ("uncertain", "uncertain"),
            ("scheduled retries", "retries"),
            ("audit", "audit"),
            ("audit, filtered by person", "audit?actor=person3"),
        ]
        for _, path in pages:  # warm up: templates compiled, scripts loaded, connections open
            session.get(desk.url + path, timeout=60)
        rows, worst = [], 0.0
        base = None
        for name, path in pages:
            times = measure(session, desk.url + path, args.rounds)
            median, tail = statistics.median(times), p95(times)
            base = base or median
            rows.append((name, median, tail, median / base))
            if not name.startswith("baseline"):
                worst = max(worst, tail)
        print(f"\n{args.letters:,} dead letters, {args.rounds} requests per page, one at a time\n")
        print("| page | p50 ms | p95 ms | p50 ÷ baseline |\n|---|---:|---:|---:|")
        for name, median, tail, ratio in rows:
            print(f"| {name} | {median:.1f} | {tail:.1f} | {ratio:.0f}× |")
        print(f"\nworst p95: {worst:.1f} ms (target ≤ {args.target_ms:.0f} ms)")
        memory = valkey_memory(valkey.url)
        print(f"store memory: {memory / 1e6:.0f} MB in all ({memory / args.letters:.0f} B per dead letter, "
              "ledger record and indexes included)")
        if args.keep:
            print(f"\nThe desk: {desk.url} (bench / {PASSWORD}). Ctrl-C stops.")
            threading.Event().wait()
        return 0 if worst <= args.target_ms else 1
    except KeyboardInterrupt:
        return 0
    finally:
        if desk is not None:
            desk.stop()
        valkey.kill()


def valkey_memory(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
