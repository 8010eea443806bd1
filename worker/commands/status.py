"""``wms-relay status [--destination D] [--json]``: is anything stuck, and what needs a person?

Queue depths (the Redis list of every destination's queues, and messages workers hold unacknowledged),
scheduled retries and the next one due, events waiting for their create, uncertain deliveries, dead letters
(count and oldest age), deliveries in the last hour, and the workers that answered a ping (Celery's
``control.ping`` over the broker: works without Flower); then the same per destination (whether it is on,
its ledger's states, delivered in the last hour) and its flow (worker.flow: rate limit and the current
rate, a Retry-After hold, the circuit, a pause in force and who set it why, parked deliveries, pending
batches).  ``--destination`` narrows every figure to one
destination.  Ends with what to do next."""
from __future__ import annotations

import argparse

from worker.commands.presenting import add_destination_option, age, friendly_errors, print_json, say, shorten
from worker.settings import Settings

PING_TIMEOUT_SECONDS = 1.0
# kombu's Redis transport keeps messages with a priority in extra lists: name + "\x06\x16" + priority.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
UNACKED_HASH = "unacked"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("status", help="queues, retries, dead letters, uncertain events, workers",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_destination_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")
    p.add_argument("--ping-timeout", type=float, default=PING_TIMEOUT_SECONDS,
                   help=f"seconds to wait for workers to answer (default {PING_TIMEOUT_SECONDS:g})")
    p.set_defaults(handler=run)


def queue_depths(redis_client, destination: str | None = None) -> dict[str, int]:
    from worker.destinations.table import QUEUES

    queues = [q for q in QUEUES if destination is None or q.startswith(destination + ".")]
    pipe = redis_client.pipeline(transaction=False)
    for queue in queues:
        for suffix in _PRIORITY_SUFFIXES:
            pipe.llen(queue + suffix)
    counts = pipe.execute()
    step = len(_PRIORITY_SUFFIXES)
    return {queue: sum(counts[i * step:(i + 1) * step]) for i, queue in enumerate(queues)}


def workers_seen(app, timeout: float) -> list[str]:
    """Names of the workers that answered a ping within ``timeout`` seconds."""
    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception:  # noqa: BLE001 — a broker hiccup: report no answer rather than fail the status
        return []
    return sorted(name for reply in replies for name in reply)


def per_destination(relay, now: float, destination: str | None = None) -> dict[str, dict]:
    """Each destination's (or one's): on or off, its ledger's open states, oldest uncertain and dead,
    delivered in the last hour."""
    from worker.destinations.table import DESTINATIONS, INTAKE

    found = {}
    for target in DESTINATIONS.values():
        if destination not in (None, target.name):
            continue
        ledger = relay.ledger_of(target.name)
        oldest = {state: ledger.oldest_in_state(state) for state in ("uncertain", "dead")}
        on = target is INTAKE or bool(target.is_on(relay.settings))
        found[target.name] = {
            "title": target.title, "on": on, "flow": relay.flow.status(target.name) if on else None,
            "ledger": ledger.count_by_state(), "delivered_last_hour": ledger.delivered_since(now - 3600),
            **{f"oldest_{state}_age_seconds":
               None if oldest[state] is None else round(now - oldest[state][2], 1) for state in oldest}}
    return found


def collect(place, ping_timeout: float, destination: str | None = None, *,
            workers: list[str] | None = None) -> dict:
    """Everything ``status`` reports, as one JSON-ready dict (``destination``: narrowed to it;
    ``workers``: names already known to answer, instead of pinging now — the desk pings in the
    background)."""
    from worker.encoding import iso_time

    relay, now = place.relay, place.relay.clock()
    schedule, letters = relay.schedule, relay.dead_letters
    destinations = per_destination(relay, now, destination)
    by_state = {state: sum(d["ledger"][state] for d in destinations.values())
                for state in next(iter(destinations.values()))["ledger"]}
    next_due = schedule.next_due()
    ages = [d["oldest_uncertain_age_seconds"] for d in destinations.values()
            if d["oldest_uncertain_age_seconds"] is not None]
    if destination is None:
        dead_count, oldest_dead = letters.count(), letters.oldest_age(now)
    else:
        open_letters = letters.list(destination=destination)
        dead_count = len(open_letters)
        oldest_dead = max((letter.age(now) for letter in open_letters), default=None)
    return {
        "checked_at": iso_time(now),
        "queues": queue_depths(relay.redis, destination),
        "in_progress": int(relay.redis.hlen(UNACKED_HASH)),
        "scheduled_retries": {
            "count": schedule.count(), "in_flight": schedule.in_flight_count(),
            "next_due_at": iso_time(next_due), "next_due_in_seconds": None if next_due is None else
            round(next_due - now, 1)},
        "waiting": by_state["waiting"],
        "uncertain": {"count": by_state["uncertain"], "oldest_age_seconds": max(ages) if ages else None},
        "dead_letters": {"count": dead_count,
                         "oldest_age_seconds": None if oldest_dead is None else round(oldest_dead, 1)},
        "ledger": by_state,
        "delivered_last_hour": sum(d["delivered_last_hour"] for d in destinations.values()),
        "destinations": destinations,
        "workers": workers_seen(place.app, ping_timeout) if workers is None else workers,
    }


def report_now(report: dict) -> float:
    from datetime import datetime

    return datetime.fromisoformat(report["checked_at"].replace("Z", "+00:00")).timestamp()


def flow_line(flow: dict, *, now: float) -> str:
    """One destination's flow in one line: ``rate 1/s (now 0.9/s); circuit closed; not paused; ...``."""
    from worker.encoding import iso_time

    rate = f"rate {flow['max_rps']:g}/s" if flow["max_rps"] else "rate unlimited"
    parts = [f"{rate} (now {flow['current_rps']:g}/s)"]
    if flow["held_for_seconds"]:
        parts.append(f"held {age(flow['held_for_seconds'])} (Retry-After)")
    circuit = flow["circuit"]
    if circuit["state"] == "closed":
        failing = f", {circuit['failures']} failure(s) in a row" if circuit["failures"] else ""
        parts.append(f"circuit closed{failing}")
    else:
        probe = circuit["probe_at"]
        when = "now" if probe is None or probe <= now else f"in {age(probe - now)}"
        parts.append(f"circuit {circuit['state'].replace('_', '-')} since {iso_time(circuit['opened_at'])} "
                     f"(next probe {when}; last failure: {shorten(circuit['last_failure'] or '-', 80)})")
    pause = flow["paused"]
    if pause:
        end = f"until {iso_time(pause['until'])}" if pause["until"] else "until resumed"
        parts.append(f"PAUSED {end} by {pause['by']}: {shorten(pause['reason'], 80)}")
    if flow["parked"]:
        parts.append(f"{flow['parked']} parked")
    batching = flow["batching"]
    if batching is not None:
        flight = batching["in_flight"]
        out = f", batch of {flight['size']} in flight" if flight else ""
        parts.append(f"batches of <= {batching['max']} every {batching['seconds']:g} s: "
                     f"{batching['pending']} pending{out}")
    return "; ".join(parts)


def flow_steps(report: dict) -> list[str]:
    """What a person should know of the destinations' flow: a pause in force, a circuit open."""
    steps = []
    for name, part in report["destinations"].items():
        flow = part.get("flow") or {}
        if flow.get("paused"):
            steps.append(f"{part['title']} is paused by {flow['paused']['by']}: `wms-relay resume {name}` "
                         "sends to it again.")
        if flow and flow["circuit"]["state"] != "closed":
            steps.append(f"{part['title']} is failing (circuit {flow['circuit']['state']}): its deliveries "
                         "wait without spending attempts; check it is up (`wms-relay check`).")
    return steps


def needs_a_person(report: dict) -> list[str]:
    """What needs a person, in order: ``dead_letters``, ``uncertain``, ``no_worker`` (the CLI says each in
    words, the desk links each to its page)."""
    needs = []
    if report["dead_letters"]["count"]:
        needs.append("dead_letters")
    if report["uncertain"]["count"]:
        needs.append("uncertain")
    queued = sum(report["queues"].values()) + report["scheduled_retries"]["count"]
    if not report["workers"] and queued:
        needs.append("no_worker")
    return needs


_NEXT_STEPS = {
    "dead_letters": "Dead letters wait for a person: `wms-relay dead list`, then `dead show ID`, "
                    "`dead retry ID` or `dead discard ID --reason ...`.",
    "uncertain": "Uncertain deliveries: `wms-relay uncertain list`, check each at its destination, then "
                 "`uncertain resolve ID --delivered|--resend --reason ...`.",
    "no_worker": "No worker answered: events will not move. Start one (`wms-relay worker`, or "
                 "`honcho start`) and check its log.",
}


def next_steps(report: dict) -> list[str]:
    return [_NEXT_STEPS[need] for need in needs_a_person(report)] + flow_steps(report)


@friendly_errors
def run(args: argparse.Namespace) -> int:
    from worker.support.desk import workplace

    with workplace(Settings.from_env()) as place:
        report = collect(place, args.ping_timeout, args.destination)
    if args.json:
        print_json(report)
        return 0
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
    say("Per destination:        on   delivered/h  retrying  waiting  uncertain  dead")
    for part in report["destinations"].values():
        ledger = part["ledger"]
        say(f"  {part['title']:<21} {'yes' if part['on'] else 'no':<4} {part['delivered_last_hour']:>11}  "
            f"{ledger['retrying']:>8}  {ledger['waiting']:>7}  {ledger['uncertain']:>9}  {ledger['dead']:>4}")
    say("Flow per destination (rate limit, circuit, pause, waiting):")
    for part in report["destinations"].values():
        if part["flow"] is not None:
            say(f"  {part['title']:<21} " + flow_line(part["flow"], now=report_now(report)))
    workers = report["workers"]
    say(f"Workers answering:     {len(workers)}" + (f" ({', '.join(workers)})" if workers else ""))
    say(f"Checked at {report['checked_at']}.")
    steps = next_steps(report)
    say("Next: " + " ".join(steps) if steps else "Nothing needs a person right now.")
    return 0
