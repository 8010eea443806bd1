"""``wms-relay status [--json]``: is anything stuck, and what needs a person?

Queue depths (the Redis lists of the five trademax.* queues, and messages workers hold unacknowledged),
scheduled retries and the next one due, events waiting for their create, uncertain events, dead letters
(count and oldest age), deliveries in the last hour, and the workers that answered a ping (Celery's
``control.ping`` over the broker: works without Flower).  Ends with what to do next."""
from __future__ import annotations

import argparse

from worker.commands.presenting import age, friendly_errors, described, print_json, say, say_store
from worker.settings import Settings

PING_TIMEOUT_SECONDS = 1.0
# kombu's Redis transport keeps messages with a priority in extra lists: name + "\x06\x16" + priority.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
UNACKED_HASH = "unacked"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("status", help="queues, retries, dead letters, uncertain events, workers",
                              **described(__doc__))
    p.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")
    p.add_argument("--ping-timeout", type=float, default=PING_TIMEOUT_SECONDS,
                   help=f"seconds to wait for workers to answer (default {PING_TIMEOUT_SECONDS:g})")
    p.set_defaults(handler=run)


def queue_depths(redis_client) -> dict[str, int]:
    from worker.celery_config import QUEUES

    pipe = redis_client.pipeline(transaction=False)
    for queue in QUEUES:
        for suffix in _PRIORITY_SUFFIXES:
            pipe.llen(queue + suffix)
    counts = pipe.execute()
    step = len(_PRIORITY_SUFFIXES)
    return {queue: sum(counts[i * step:(i + 1) * step]) for i, queue in enumerate(QUEUES)}


def workers_seen(app, timeout: float) -> list[str]:
    """Names of the workers that answered a ping within ``timeout`` seconds."""
    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception:  # noqa: BLE001 — a broker hiccup: report no answer rather than fail the status
        return []
    return sorted(name for reply in replies for name in reply)


def collect(place, ping_timeout: float) -> dict:
    """Everything ``status`` reports, as one JSON-ready dict."""
    from worker.encoding import iso_time

    relay, now = place.relay, place.relay.clock()
    ledger, schedule, letters = relay.ledger, relay.schedule, relay.dead_letters
    by_state = ledger.count_by_state()
    next_due = schedule.next_due()
    oldest_dead = letters.oldest_age(now)
    oldest_uncertain = ledger.oldest_in_state("uncertain")
    return {
        "store": place.store,
        "checked_at": iso_time(now),
        "queues": queue_depths(relay.redis),
        "in_progress": int(relay.redis.hlen(UNACKED_HASH)),
        "scheduled_retries": {
            "count": schedule.count(), "in_flight": schedule.in_flight_count(),
            "next_due_at": iso_time(next_due), "next_due_in_seconds": None if next_due is None else
            round(next_due - now, 1)},
        "waiting": by_state["waiting"],
        "uncertain": {"count": by_state["uncertain"], "oldest_age_seconds": None if oldest_uncertain is None
                      else round(now - oldest_uncertain[2], 1)},
        "dead_letters": {"count": letters.count(),
                         "oldest_age_seconds": None if oldest_dead is None else round(oldest_dead, 1)},
        "ledger": by_state,
        "delivered_last_hour": ledger.delivered_since(now - 3600),
        "workers": workers_seen(place.app, ping_timeout),
    }


def next_steps(report: dict) -> list[str]:
    steps = []
    if report["dead_letters"]["count"]:
        steps.append("Dead letters wait for a person: `wms-relay dead list`, then `dead show ID`, "
                     "`dead retry ID` or `dead discard ID --reason ...`.")
    if report["uncertain"]["count"]:
        steps.append("Uncertain events: check each in Trademax, then `wms-relay uncertain list` and "
                     "`uncertain resolve OPERATION:KEY --delivered|--resend --reason ...`.")
    queued = sum(report["queues"].values()) + report["scheduled_retries"]["count"]
    if not report["workers"] and queued:
        steps.append("No worker answered: events will not move. Start one (`wms-relay worker`, or "
                     "`honcho start`) and check its log.")
    return steps


@friendly_errors
def run(args: argparse.Namespace) -> int:
    from worker.support.desk import workplace

    with workplace(Settings.from_env()) as place:
        report = collect(place, args.ping_timeout)
    if args.json:
        print_json(report)
        return 0
    say_store(report["store"])
    queues = report["queues"]
    say("Queues (waiting to be picked up by a worker):")
    for name, depth in queues.items():
        say(f"  {name:<20} {depth}")
    say(f"  being worked on now  {report['in_progress']}")
    retries = report["scheduled_retries"]
    due = retries["next_due_in_seconds"]
    when = "-" if due is None else ("now" if due <= 0 else f"in {age(due)}")
    say(f"Scheduled retries:     {retries['count']} (next due {when})")
    say(f"Waiting for a create:  {report['waiting']}")
    for label, part in (("Uncertain:            ", report["uncertain"]),
                        ("Dead letters:         ", report["dead_letters"])):
        oldest = f" (oldest {age(part['oldest_age_seconds'])})" if part["count"] else ""
        say(f"{label} {part['count']}{oldest}")
    say(f"Delivered last hour:   {report['delivered_last_hour']}")
    workers = report["workers"]
    say(f"Workers answering:     {len(workers)}" + (f" ({', '.join(workers)})" if workers else ""))
    say(f"Checked at {report['checked_at']}.")
    steps = next_steps(report)
    say("Next: " + " ".join(steps) if steps else "Nothing needs a person right now.")
    return 0
