"""``wms-relay event OPERATION KEY [--destination D] [--json]``: one event's delivery to every destination —
each one's state, attempts, the destination's answer and history.

Also ``event OPERATION:KEY`` and ``event KEY`` (looked up under every operation).  The history interleaves
state changes (with who did them, for a person's actions) and send attempts (outcome, HTTP status, the
destination's error code and messages, latency).  ``--json`` prints one object with at least
``operation``, ``key``, ``state``, ``attempts``, ``result`` and ``history`` — scripts rely on these names:
they describe the delivery the WMS published (Trademax's) — plus its dead letter and scheduled retry, if
any, and ``deliveries``: the same view of every destination's delivery of the event, each with its
``destination``."""
from __future__ import annotations

import argparse
import json

from worker.commands.presenting import (
    add_destination_option, age, described, destination_title, friendly_errors, print_json, say, say_store,
    shorten,
)
from worker.encoding import one_line
from worker.support.event_view import describe, next_step, timeline, with_liveness
from worker.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("event",
                              help="one event's delivery to each destination: state, attempts, history",
                              **described(__doc__))
    p.add_argument("operation", help="e.g. receipt.create (or OPERATION:KEY, or just the KEY)")
    p.add_argument("key", nargs="?", help="the event's key: transaction_id or event_id")
    add_destination_option(p, "show only this destination's delivery")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)


def _candidates(place, operation: str, key: str | None) -> list[tuple[str, str]]:
    from tasks.events import OPERATIONS

    if key is not None:
        return [(operation, key)]
    op, colon, rest = operation.partition(":")
    if colon and op in OPERATIONS:
        return [(op, rest)]
    return [(op_name, operation) for op_name in OPERATIONS]  # just a key: try every operation


def _history_lines(view: dict) -> list[str]:
    lines = []
    for at, kind, item in timeline(view):
        if kind == "t":
            who = f" by {item['actor']}" if item.get("actor") else ""
            reason = shorten(item["reason"], 140)
            lines.append(f"  {at}  {item['from'] or '(new)'} → {item['to']}{who}: {reason}")
        else:
            parts = [f"attempt {item['attempt']}: {item['outcome']}"]
            if item.get("status") is not None:
                parts.append(f"HTTP {item['status']}")
            if item.get("error_code") not in (None, 0):
                parts.append(f"error_code {item['error_code']}")
            if item.get("latency") is not None:
                parts.append(f"{item['latency'] * 1000:.0f} ms")
            if item.get("messages"):
                parts.append(shorten("; ".join(map(str, item["messages"])), 120))
            lines.append(f"  {at}    " + ", ".join(parts))
    return lines


@friendly_errors
def run(args: argparse.Namespace) -> int:
    from worker.support.workplace import workplace

    with workplace(Settings.from_env()) as place:
        views = [v for op, key in _candidates(place, args.operation, args.key)
                 if (v := describe(place.relay, op, key, args.destination)) is not None]
        views = [with_liveness(place, view) for view in views]
    store = place.store
    if not args.json:
        say_store(store)
    if not views:
        shown = one_line(f"{args.operation} {args.key}" if args.key else args.operation)
        if args.json:
            op, _, key = (args.operation, None, args.key) if args.key else args.operation.partition(":")
            print_json({"operation": op if key else None, "key": key or args.operation, "state": None,
                        "attempts": 0, "result": None, "history": [], "found": False, "store": store})
        else:
            say(f"No event {shown} in the ledger or the dead letters. Check the operation and key; delivered "
                "events are kept DELIVERED_RETENTION_DAYS (30 by default).")
        return 1
    if len(views) > 1:
        say(f"Key {args.operation} is used by {len(views)} operations; name one:")
        for view in views:
            say(f"  wms-relay event {view['operation']} {one_line(view['key'])}    ({view['state']})")
        return 1
    view = {**views[0], "store": store}
    if args.json:
        print_json(view)
        return 0
    deliveries = view["deliveries"]
    say(f"{view['operation']} {one_line(view['key'])}: " + ", ".join(
        f"{destination_title(d['destination'])} {d['state']}" for d in deliveries))
    for delivery in deliveries:
        _show_delivery(delivery)
    return 0


def _show_delivery(view: dict) -> None:
    title = destination_title(view["destination"])
    say(f"{title}: {view['state']}")
    say(f"  attempts: {view['attempts']}")
    if view.get("created_at"):
        say(f"  first seen: {view['created_at']}, last change: {view['updated_at']}")
    result = json.dumps(view["result"], ensure_ascii=False) if view["result"] else "none"
    say(f"  {title}'s answer: {result}")
    if view["result"] and view["result"].get("batch"):
        say(f"  carried by batch {view['result']['batch']} ({view['result'].get('batch_size')} items in its "
            "request; `wms-relay event` of any of them shows the same batch)")
    retry = view["scheduled_retry"]
    if retry:
        due = "on its way now" if retry["in_flight"] else "in " + age(retry["due_in_seconds"])
        say(f"  next retry: {due}")
    letter = view["dead_letter"]
    if letter:
        closed = f" by {letter['closed_by']} at {letter['closed_at']}: {letter['close_reason']}" \
            if letter["status"] != "open" else ""
        say(f"  dead letter {letter['id']} ({letter['status']}{closed}): {letter['reason']} — "
            f"{shorten(letter['detail'] or letter['messages'], 200)}")
    if not view["in_ledger"]:
        say("  never entered the ledger: it was invalid (see the dead letter) and was never sent")
    lines = _history_lines(view)
    if lines:
        say("  History (UTC):")
        for line in lines:
            say("  " + line)
    say(f"  Next: {next_step(view)}")
