"""``wms-relay status [--destination D] [--json] [--fail-on-attention]``: is anything stuck, and what needs
a person?

Queue depths (the Redis list of every destination's queues, and messages workers hold unacknowledged),
scheduled retries and the most overdue one, events waiting for their create, uncertain deliveries, dead
letters (count and oldest age), deliveries in the last hour, the workers alive and the scheduler's last
tick (from their heartbeats in the store: no Celery ping, no Flower); then the same per destination
(whether it is on, its ledger's states, delivered in the last hour) and its flow (worker.flow: rate limit
and the current rate, a Retry-After hold, the circuit, a pause in force and who set it why, parked
deliveries, pending batches).  ``--destination`` narrows every figure to one destination.  Ends with what
needs a person: no live worker, no live scheduler, retries overdue by more than a minute, open dead
letters, uncertain events, Redis at 80 % of its maxmemory or more, a destination paused or its circuit
not closed.  ``--fail-on-attention`` exits 1 when anything does (for cron and Nagios); otherwise the exit
code is 0 whatever the report says (3: the store does not answer)."""
from __future__ import annotations

import argparse

from worker.commands.presenting import add_destination_option, age, described, friendly_errors, print_json, \
    say, say_store, shorten
from worker.settings import Settings
from worker.store.heartbeats import STALE_AFTER_SECONDS

# A retry this late has no scheduler moving it (the scheduler moves due retries within a second).
OVERDUE_AFTER_SECONDS = 60.0
# Under maxmemory-policy noeviction a full Redis refuses writes: new events could not be accepted.
MEMORY_ATTENTION_FRACTION = 0.8


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("status", help="queues, retries, dead letters, workers, scheduler: what needs "
                              "a person", **described(__doc__))
    add_destination_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")
    p.add_argument("--fail-on-attention", action="store_true",
                   help="exit 1 when something needs a person (for cron and Nagios)")
    p.set_defaults(handler=run)


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


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


def collect(place, destination: str | None = None) -> dict:
    """Everything ``status`` reports, as one JSON-ready dict (``destination``: narrowed to it);
    ``attention`` lists what needs a person."""
    import redis

    from worker.encoding import iso_time
    from worker.store.broker_queues import queue_depths, unacked
    from worker.store.heartbeats import Heartbeats

    relay, now = place.relay, place.relay.clock()
    schedule, letters = relay.schedule, relay.dead_letters
    beats = Heartbeats(relay.redis, relay.clock)
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
    workers = beats.beats("worker")
    ticks = beats.beats("scheduler")
    try:
        memory = relay.redis.info("memory")
    except redis.ResponseError:  # INFO disabled (some managed Redis; fakeredis): memory not known
        memory = {}
    used = int(memory["used_memory"]) if "used_memory" in memory else None
    limit = int(memory.get("maxmemory", 0))
    report = {
        "store": place.store,
        "checked_at": iso_time(now),
        "queues": queue_depths(relay.redis, destination),
        "in_progress": unacked(relay.redis),
        "scheduled_retries": {
            "count": schedule.count(), "in_flight": schedule.in_flight_count(),
            "next_due_at": iso_time(next_due),
            "next_due_in_seconds": None if next_due is None else round(next_due - now, 1),
            "most_overdue_seconds": None if next_due is None else round(max(0.0, now - next_due), 1)},
        "waiting": by_state["waiting"],
        "uncertain": {"count": by_state["uncertain"], "oldest_age_seconds": max(ages) if ages else None},
        "dead_letters": {"count": dead_count, "oldest_age_seconds": _seconds(oldest_dead)},
        "ledger": by_state,
        "delivered_last_hour": sum(d["delivered_last_hour"] for d in destinations.values()),
        "destinations": destinations,
        "workers": [b.name for b in workers if b.age <= STALE_AFTER_SECONDS],
        "worker_heartbeats": [{"name": b.name, "age_seconds": _seconds(b.age),
                               "alive": b.age <= STALE_AFTER_SECONDS} for b in workers],
        "scheduler": {"name": ticks[0].name if ticks else None,
                      "last_tick_at": iso_time(ticks[0].at) if ticks else None,
                      "last_tick_age_seconds": _seconds(ticks[0].age) if ticks else None,
                      "alive": bool(ticks) and ticks[0].age <= STALE_AFTER_SECONDS},
        "redis_memory": {"used_bytes": used, "max_bytes": limit,
                         "used_fraction": round(used / limit, 4) if limit and used is not None else None},
    }
    report["attention"] = ([{"flag": flag, "message": _say(flag, report)} for flag in needs_a_person(report)]
                           + flow_attention(report))
    return report


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
        when = "within a minute, as the scheduler grants it" if circuit.get("fault") else when
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


def flow_attention(report: dict) -> list[dict]:
    """What needs a person in the destinations' flow, one item each (flag ``paused``, ``circuit_open`` or
    ``clock_skew``, with its ``destination``): a pause in force, a circuit not closed (``clock_skew``: open
    because the destination refuses our clock)."""
    items = []
    for name, part in report["destinations"].items():
        flow = part.get("flow") or {}
        if flow.get("paused"):
            items.append({"flag": "paused", "destination": name,
                          "message": f"{part['title']} is paused by {flow['paused']['by']}: "
                                     f"`wms-relay resume {name}` sends to it again."})
        if flow and flow["circuit"].get("fault") == "clock_skew":  # a configuration fault: its own flag
            items.append({"flag": "clock_skew", "destination": name,
                          "message": f"{part['title']} refuses our requests' timestamps: this machine's "
                                     "clock is off "
                                     f"({shorten(flow['circuit']['last_failure'] or '-', 160)}). "
                                     "Fix the clock (NTP) on the worker hosts; deliveries wait without "
                                     "spending attempts, and one probe a minute resumes sending once it is "
                                     "right."})
        elif flow and flow["circuit"]["state"] != "closed":
            items.append({"flag": "circuit_open", "destination": name,
                          "message": f"{part['title']} is failing (circuit {flow['circuit']['state']}): its "
                                     "deliveries wait without spending attempts; check it is up "
                                     "(`wms-relay check`)."})
    return items


def needs_a_person(report: dict) -> list[str]:
    """What needs a person, most urgent first: ``no_worker``, ``no_scheduler``, ``overdue_retries``,
    ``dead_letters``, ``uncertain``, ``memory`` (the CLI says each in words; a desk can link each to its
    page)."""
    needs = []
    if not report["workers"]:
        needs.append("no_worker")
    if not report["scheduler"]["alive"]:
        needs.append("no_scheduler")
    overdue = report["scheduled_retries"]["most_overdue_seconds"]
    if overdue is not None and overdue > OVERDUE_AFTER_SECONDS:
        needs.append("overdue_retries")
    if report["dead_letters"]["count"]:
        needs.append("dead_letters")
    if report["uncertain"]["count"]:
        needs.append("uncertain")
    fraction = report["redis_memory"]["used_fraction"]
    if fraction is not None and fraction >= MEMORY_ATTENTION_FRACTION:
        needs.append("memory")
    return needs


def _say(flag: str, report: dict) -> str:
    """One sentence per flag: what is wrong and what to do."""
    if flag == "no_worker":
        seen = report["worker_heartbeats"]
        last = f" (last heartbeat {age(seen[0]['age_seconds'])} ago, {seen[0]['name']})" if seen else ""
        return (f"No worker is alive{last}: events will not move. Start one (`wms-relay worker`) and check "
                "its log.")
    if flag == "no_scheduler":
        tick = report["scheduler"]
        when = (f"has not ticked for {age(tick['last_tick_age_seconds'])}" if tick["name"]
                else "has never ticked")
        return (f"The scheduler {when}: retries and dispatch updates waiting for their create will not be "
                "sent. Start it (`wms-relay scheduler`) and check its log.")
    if flag == "overdue_retries":
        late = age(report["scheduled_retries"]["most_overdue_seconds"])
        return (f"A scheduled retry is {late} overdue: the scheduler is not moving retries. Check that it "
                "runs (`wms-relay health scheduler`) and can reach the store.")
    if flag == "dead_letters":
        return ("Dead letters wait for a person: `wms-relay dead list`, then `dead show ID`, `dead retry ID` "
                "or `dead discard ID --reason ...`.")
    if flag == "uncertain":
        return ("Uncertain deliveries: `wms-relay uncertain list`, check each at its destination, then "
                "`uncertain resolve ID --delivered|--resend --reason ...`.")
    memory = report["redis_memory"]
    return (f"Redis uses {memory['used_fraction']:.0%} of its maxmemory ({_mib(memory['used_bytes'])} of "
            f"{_mib(memory['max_bytes'])}): when full it refuses new events. Raise maxmemory, or purge "
            "closed dead letters (`wms-relay dead purge --closed --older-than 30d`).")


def _mib(size: int) -> str:
    return f"{size / 1048576:.1f} MiB"


def next_steps(report: dict) -> list[str]:
    return [item["message"] for item in report["attention"]]


def _print(report: dict) -> None:
    say_store(report["store"])
    say("Queues (waiting to be picked up by a worker):")
    for name, depth in report["queues"].items():
        say(f"  {name:<20} {depth}")
    say(f"  being worked on now  {report['in_progress']}")
    retries = report["scheduled_retries"]
    due = retries["next_due_in_seconds"]
    when = "-" if due is None else (f"in {age(due)}" if due > 0 else
                                    "now" if -due <= OVERDUE_AFTER_SECONDS else f"{age(-due)} ago")
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
    alive = [b for b in report["worker_heartbeats"] if b["alive"]]
    names = ", ".join(f"{b['name']} {age(b['age_seconds'])} ago" for b in alive)
    say(f"Workers alive:         {len(alive)}" + (f" ({names})" if alive else ""))
    tick = report["scheduler"]
    memory = report["redis_memory"]
    if memory["used_bytes"] is None:
        say("Redis memory:          not known (the server refuses INFO)")
    else:
        say(f"Redis memory:          {_mib(memory['used_bytes'])} of "
            + (f"{_mib(memory['max_bytes'])} ({memory['used_fraction']:.0%})" if memory["max_bytes"]
               else "no maxmemory set"))
    say("Scheduler:             " + (f"last tick {age(tick['last_tick_age_seconds'])} ago ({tick['name']})"
                                     if tick["name"] else "never ticked"))
    say(f"Checked at {report['checked_at']}.")
    if not report["attention"]:
        say("Nothing needs a person right now.")
        return
    say("Needs a person:")
    for item in report["attention"]:
        say(f"  ! {item['message']}")


@friendly_errors
def run(args: argparse.Namespace) -> int:
    from worker.support.desk import workplace

    with workplace(Settings.from_env()) as place:
        report = collect(place, args.destination)
    if args.json:
        print_json(report)
    else:
        _print(report)
    return 1 if args.fail_on_attention and report["attention"] else 0
