"""``wms-relay status [--destination D] [--json] [--fail-on-attention]``: is anything stuck, and what needs
a person?

Queue depths (the Redis list of every destination's queues, and messages workers hold unacknowledged),
scheduled retries and the most overdue one, events waiting for their create, uncertain deliveries, dead
letters (count and oldest age), counts waiting for their artno's catalog row (unmapped), deliveries in the
last hour, the workers alive and the scheduler's last tick (from their heartbeats in the store: no Celery
ping, no Flower); then the same per destination (whether it is on, its ledger's states, delivered in the
last hour) and its flow (worker.flow: rate limit and the current rate, a Retry-After hold, the circuit, a
pause in force and who set it why, parked deliveries, pending batches). Which destinations are on and their
limits are what the workers recorded in the store with their heartbeats — this command needs only the store,
never the destinations' variables: it says whose record it shows and how old, that no worker has recorded
one yet, or that the live workers disagree. ``--destination`` narrows every figure to one destination. Ends
with what needs a person: no live worker, no live scheduler, retries overdue by more than a minute, open
dead letters, uncertain events, dispatch updates waiting for a dispatch id Trademax did not give, counts
waiting for a catalog row (unmapped: with the first artnos), Redis at 80 % of its maxmemory or more, live
workers with different configurations, a destination paused or its circuit not closed (or open for the
clock). ``--fail-on-attention`` exits 1 when anything does (for cron and Nagios); otherwise the exit code is
0 whatever the report says (3: the store does not answer; with ``--json`` an object saying so)."""
from __future__ import annotations

import argparse

from worker.commands.presenting import add_destination_option, age, described, friendly_errors, print_json, \
    say, say_store, store_trouble
from worker.settings import Settings
from worker.support.status_report import OVERDUE_AFTER_SECONDS, collect, mib, never_accepted_in_words
from worker.support.status_words import configuration_line, flow_line, report_now


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("status", help="queues, retries, dead letters, workers, scheduler: what needs "
                              "a person", **described(__doc__))
    add_destination_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")
    p.add_argument("--fail-on-attention", action="store_true",
                   help="exit 1 when something needs a person (for cron and Nagios)")
    p.set_defaults(handler=run)


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
        notes = [f"oldest {age(part['oldest_age_seconds'])}"] if part["count"] else []
        if part.get("never_accepted"):  # in no ledger: the per-destination "dead" column leaves them out
            notes.append(f"{never_accepted_in_words(part['never_accepted'])}: never accepted, so in no "
                         "destination's column below")
        say(f"{label} {part['count']}" + (f" ({'; '.join(notes)})" if notes else ""))
    say(f"Delivered last hour:   {report['delivered_last_hour']}")
    say(f"Configuration:         {configuration_line(report['configuration'])}")
    for difference in report["configuration"]["differences"]:
        say(f"  differs: {difference}")
    say("Per destination:        on   delivered/h  retrying  waiting  uncertain  dead")
    for part in report["destinations"].values():
        ledger = part["ledger"]
        on = {True: "yes", False: "no", None: "?"}[part["on"]]
        say(f"  {part['title']:<21} {on:<4} {part['delivered_last_hour']:>11}  "
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
        say(f"Redis memory:          {mib(memory['used_bytes'])} used, "
            + (f"{memory['used_fraction']:.0%} of its maxmemory {mib(memory['max_bytes'])}"
               if memory["max_bytes"] else "no maxmemory set"))
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

    settings = Settings.from_env()
    try:
        with workplace(settings) as place:
            report = collect(place, args.destination)
    except Exception as exc:
        said = store_trouble(exc)
        if said is None or not args.json:
            raise  # the text says it in one sentence (friendly_errors), exit code 3
        from worker.store.connection import describe

        # Scripts get one object as always — the store, and that it did not answer — and the same exit code.
        print_json({"store": describe(settings), "store_up": False, "error": said,
                    "attention": [{"flag": "store_down", "message": said}]})
        return 3
    if args.json:
        print_json(report)
    else:
        _print(report)
    return 1 if args.fail_on_attention and report["attention"] else 0
