"""``wms-relay status [--destination D] [--json] [--fail-on-attention]``: is anything stuck, and what needs
a person?

Queue depths (the Redis list of every destination's queues, and messages workers hold unacknowledged),
scheduled retries and the most overdue one, events waiting for their create, uncertain deliveries, dead
letters (count and oldest age), counts waiting for their artno's catalog row (unmapped), deliveries in the
last hour, the workers alive and the scheduler's last tick (from their heartbeats in the store: no Celery
ping, no Flower); then the same per destination (whether it is on, its ledger's states, delivered in the
last hour) and its flow (worker.flow: rate limit and the current rate, a Retry-After hold, the circuit, a
pause in force and who set it why, parked deliveries, pending batches).  ``--destination`` narrows every
figure to one destination.  Ends with what needs a person: no live worker, no live scheduler, retries
overdue by more than a minute, open dead letters, uncertain events, dispatch updates waiting for a
dispatch id Trademax did not give, counts waiting for a catalog row (unmapped: with the first artnos),
Redis at 80 % of its maxmemory or more, a destination paused or its circuit not closed.
``--fail-on-attention`` exits 1 when anything does (for cron and Nagios); otherwise the exit code is 0
whatever the report says (3: the store does not answer)."""
from __future__ import annotations

import argparse

from worker.commands.presenting import add_destination_option, age, described, friendly_errors, print_json, \
    say, say_store, shorten
from worker.settings import Settings
from worker.support.status_report import OVERDUE_AFTER_SECONDS, collect, mib


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("status", help="queues, retries, dead letters, workers, scheduler: what needs "
                              "a person", **described(__doc__))
    add_destination_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")
    p.add_argument("--fail-on-attention", action="store_true",
                   help="exit 1 when something needs a person (for cron and Nagios)")
    p.set_defaults(handler=run)


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
    unknown = report["dispatch_id_unknown"]
    if unknown["shipments"]:
        say(f"Dispatch id unknown:   {unknown['shipments']} shipment(s), {unknown['waiting']} event(s) "
            "waiting for a person (`wms-relay dispatch set-id`)")
    for part in report["unmapped"].values():
        say(f"Unmapped:              {part['deliveries']} count(s) for {part['title']} wait for a catalog "
            f"row (artnos {', '.join(part['first_artnos'])})")
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
        say(f"Redis memory:          {mib(memory['used_bytes'])} of "
            + (f"{mib(memory['max_bytes'])} ({memory['used_fraction']:.0%})" if memory["max_bytes"]
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
    from worker.support.workplace import workplace

    with workplace(Settings.from_env()) as place:
        report = collect(place, args.destination)
    if args.json:
        print_json(report)
    else:
        _print(report)
    return 1 if args.fail_on_attention and report["attention"] else 0
