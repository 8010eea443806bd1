"""``wms-relay health worker|scheduler``: exit 0 when that process is alive, 1 when it is not — for
Kubernetes liveness/readiness probes and process supervisors.

Alive means it wrote its heartbeat to the store within --within seconds (default 30): a worker beats
every 5 s from the loop that takes messages off the queues, the scheduler after every tick.  By default
the probe asks about a process on THIS host (its node name ends with @HOSTNAME: in Kubernetes, the
probed pod's own process); --name asks about one node, --any-host about any.  One Redis read with a
2-second timeout; no Celery inspect, no broker round trip.  Exit code 3: the store does not answer (a
probe counts any non-zero code as a failure)."""
from __future__ import annotations

import argparse
import socket

from worker.commands.presenting import age, described, friendly_errors, print_json, say
from worker.settings import Settings
from worker.store.heartbeats import ROLES, STALE_AFTER_SECONDS

PROBE_TIMEOUT_SECONDS = 2.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("health", help="exit 0 if this host's worker or scheduler is alive (probes)",
                              **described(__doc__))
    p.add_argument("role", choices=ROLES, help="which process to ask about")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--name", help="one node name, e.g. relay-7@pod-1 (default: any on this host)")
    which.add_argument("--any-host", action="store_true", help="any process of that role, on any host")
    p.add_argument("--within", type=float, default=STALE_AFTER_SECONDS,
                   help=f"seconds since the last heartbeat that still count as alive (default "
                        f"{STALE_AFTER_SECONDS:g})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)


def judge(beats, role: str, *, within: float, name: str | None, host: str | None) -> tuple[bool, str]:
    """(alive?, one sentence) from the remembered beats of ``role`` (newest first)."""
    if name is not None:
        candidates, which = [b for b in beats if b.name == name], name
    elif host is not None:
        candidates, which = [b for b in beats if b.on_host(host)], f"{role} on host {host}"
    else:
        candidates, which = list(beats), f"{role} on any host"
    alive = [b for b in candidates if b.age <= within]
    if alive:
        return True, f"OK: {alive[0].name} beat {age(alive[0].age)} ago"
    if candidates:
        return False, (f"FAIL: no {which} beat within {within:g} s (last: {candidates[0].name} "
                       f"{age(candidates[0].age)} ago)")
    return False, f"FAIL: no {which} has ever beaten (or it stopped cleanly)"


@friendly_errors
def run(args: argparse.Namespace) -> int:
    from worker.store.connection import connect
    from worker.store.heartbeats import Heartbeats

    client = connect(Settings.from_env(), probe_timeout=PROBE_TIMEOUT_SECONDS)
    try:
        beats = Heartbeats(client).beats(args.role)
    finally:
        client.close()
    host = None if args.name or args.any_host else socket.gethostname()
    alive, sentence = judge(beats, args.role, within=args.within, name=args.name, host=host)
    if args.json:
        print_json({"role": args.role, "alive": alive, "message": sentence,
                    "beats": [{"name": b.name, "age_seconds": round(b.age, 1)} for b in beats]})
    else:
        say(sentence)
    return 0 if alive else 1
