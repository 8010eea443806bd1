"""wms-relay health worker|scheduler: exit 0 when that process is alive, 1 when it is not - for
Kubernetes probes and process supervisors.

Probes (this pod's own process, read from its own disk; no Redis, one stat, ~30 ms of CPU):
  --liveness    the process's loop ran within --within seconds (default 30): a worker's consumer loop
                beats every 5 s, and keeps beating while it waits for a lost broker; the scheduler on
                every tick.  A Redis outage never fails it: restarting cannot bring Redis back.
  --readiness   the store accepted the process's heartbeat within --within seconds: a Redis outage
                makes the pod unready (taken out of service), never restarted.

Without either: the heartbeat in the store, written within --within seconds (one Redis read with a
2-second timeout; no Celery inspect) - for supervisors and checks from elsewhere.  By default it asks
about a process on THIS host (its node name ends with @HOSTNAME: in Kubernetes, the probed pod's own
process); --name asks about one node, --any-host (store only) about any.  Exit code 3: the store does not
answer (a probe counts any non-zero code as a failure)."""
from __future__ import annotations

import argparse
import os

# Kept lean on purpose (docs/benchmarks.md, "Probes"): the probes import nothing beyond argparse and
# worker.observe.probe_files; the store's path imports redis-py (~0.2 s of CPU alone) only when it runs.
ROLES = ("worker", "scheduler")  # worker.store.heartbeats.ROLES (a test keeps the two equal)
STALE_AFTER_SECONDS = 30.0  # worker.store.heartbeats.STALE_AFTER_SECONDS (likewise)
PROBE_TIMEOUT_SECONDS = 2.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("health", help="exit 0 if this host's worker or scheduler is alive (probes)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("role", choices=ROLES, help="which process to ask about")
    probe = p.add_mutually_exclusive_group()
    probe.add_argument("--liveness", action="store_true",
                       help="this host's process's loop is running (its own file; no Redis)")
    probe.add_argument("--readiness", action="store_true",
                       help="the store accepted this host's process's heartbeat (its own file)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--name", help="one node name, e.g. relay-7@pod-1 (default: any on this host)")
    which.add_argument("--any-host", action="store_true",
                       help="any process of that role, on any host (the store's heartbeats only)")
    p.add_argument("--within", type=float, default=STALE_AFTER_SECONDS,
                   help=f"seconds since the last heartbeat that still count as alive (default "
                        f"{STALE_AFTER_SECONDS:g})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)


def judge(found: list[tuple[str, float]], role: str, *, within: float, name: str | None, host: str | None,
          what: str = "beat", never: str = "has ever beaten (or it stopped cleanly)",
          age=lambda seconds: f"{seconds:.0f} s") -> tuple[bool, str]:
    """(alive?, one sentence) from ``(node name, seconds since it last did ``what``)``, freshest first —
    the store's heartbeats or this host's probe files."""
    if name is not None:
        candidates, which = [f for f in found if f[0] == name], name
    elif host is not None:
        candidates, which = [f for f in found if f[0].rpartition("@")[2] == host], f"{role} on host {host}"
    else:
        candidates, which = list(found), f"{role} on any host"
    fresh = [f for f in candidates if f[1] <= within]
    if fresh:
        return True, f"OK: {fresh[0][0]} {what} {age(fresh[0][1])} ago"
    if candidates:
        return False, (f"FAIL: no {which} {what} within {within:g} s (last: {candidates[0][0]} "
                       f"{age(candidates[0][1])} ago)")
    return False, f"FAIL: no {which} {never}"


def run(args: argparse.Namespace) -> int:
    if args.liveness or args.readiness:
        return _probe(args)
    return _from_store(args)


def _print_json(report: dict) -> None:
    import json

    print(json.dumps(report, indent=2, ensure_ascii=False))


def _probe(args: argparse.Namespace) -> int:
    """--liveness / --readiness: this host's process's own file (worker.observe.probe_files)."""
    from worker.observe.probe_files import ages

    if args.any_host:
        import sys

        print("wms-relay: --any-host asks the store; a probe reads this host's own files (drop one of the "
              "two)", file=sys.stderr)
        return 2
    # Settings.from_env's rule for WMS_RELAY_VAR_DIR, without importing worker.settings (dataclasses and
    # inspect: ~10 ms of a probe's CPU); tests/worker/commands/test_health.py keeps the two equal.
    var_dir = os.environ.get("WMS_RELAY_VAR_DIR") or "var"
    kind = "alive" if args.liveness else "ready"
    host = None if args.name else os.uname().nodename
    found = ages(var_dir, args.role, kind, name=args.name, host=host)
    alive, sentence = judge(found, args.role, within=args.within, name=args.name, host=host,
                            what="ran its loop" if args.liveness else "had its heartbeat accepted",
                            never="has a probe file here (not started yet, or it stopped cleanly)")
    if args.json:
        _print_json({"role": args.role, "probe": "liveness" if args.liveness else "readiness",
                     "alive": alive, "message": sentence,
                     "processes": [{"name": n, "age_seconds": round(a, 1)} for n, a in found]})
    else:
        print(sentence)
    return 0 if alive else 1


def _from_store(args: argparse.Namespace) -> int:
    from worker.commands.presenting import friendly_errors

    return friendly_errors(_from_store_unguarded)(args)


def _from_store_unguarded(args: argparse.Namespace) -> int:
    import socket

    from worker.commands.presenting import age, print_json, say
    from worker.settings import Settings
    from worker.store.connection import connect
    from worker.store.heartbeats import Heartbeats

    client = connect(Settings.from_env(), probe_timeout=PROBE_TIMEOUT_SECONDS)
    try:
        beats = Heartbeats(client).beats(args.role)
    finally:
        client.close()
    host = None if args.name or args.any_host else socket.gethostname()
    alive, sentence = judge([(b.name, b.age) for b in beats], args.role, within=args.within, name=args.name,
                            host=host, age=age)
    if args.json:
        print_json({"role": args.role, "alive": alive, "message": sentence,
                    "beats": [{"name": b.name, "age_seconds": round(b.age, 1)} for b in beats]})
    else:
        say(sentence)
    return 0 if alive else 1
