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
from worker.support.event_view import describe
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


def with_liveness(place, view: dict) -> dict:
    """``view`` with the workers and the scheduler alive now (heartbeats), for the next step to name."""
    from worker.store.heartbeats import Heartbeats

    beats = Heartbeats(place.relay.redis, place.relay.clock)
    alive = {"workers_alive": [beat.name for beat in beats.alive("worker")],
             "scheduler_alive": bool(beats.alive("scheduler"))}
    deliveries = view.get("deliveries")
    if deliveries is not None:  # every destination's delivery names them too (its own next step)
        return {**view, **alive, "deliveries": [{**d, **alive} for d in deliveries]}
    return {**view, **alive}


def _candidates(place, operation: str, key: str | None) -> list[tuple[str, str]]:
    from tasks.events import OPERATIONS

    if key is not None:
        return [(operation, key)]
    op, colon, rest = operation.partition(":")
    if colon and op in OPERATIONS:
        return [(op, rest)]
    return [(op_name, operation) for op_name in OPERATIONS]  # just a key: try every operation


def next_step(view: dict) -> str:
    from worker.destinations.table import destination as destination_named
    from worker.support.dispatch_ids import unknown_id_of

    state = view["state"]
    shipment = unknown_id_of(view)
    if shipment is not None:
        waits = ("it waits" if state == "waiting"
                 else "its updates, publish and delete wait")
        return (f"find the dispatch id of transaction_id {one_line(shipment)} at Trademax (its 452 answer "
                f"did not give it; {waits} until it is recorded), then `wms-relay dispatch set-id "
                f"{one_line(shipment)} DISPATCH_ID --reason ...`")
    target = destination_named(view.get("destination") or "trademax")
    ref = target.delivery_ref(view["operation"], view["key"])
    letter = view.get("dead_letter")
    if state == "dead" and letter and letter["status"] == "open":
        return letter_next_step(letter["id"], letter["reason"])
    if state == "uncertain":
        return (f"check in {target.title} whether it arrived, then `wms-relay uncertain resolve {ref} "
                "--delivered --reason ...` (it is there) or `--resend --reason ...` (it is not)")
    if state in ("retrying", "waiting"):
        if view.get("scheduler_alive") is False:
            return ("start the scheduler (`wms-relay scheduler`): no scheduler is running, so its next try "
                    "will not happen; `wms-relay status` shows what else is stuck")
        return f"nothing; it is retried automatically (to try now: `wms-relay retries run-now {ref}`)"
    if state in ("accepted", "sending"):
        if view.get("workers_alive") == []:
            return ("start a worker (`wms-relay worker`): no worker is running, so nothing will send it; it "
                    "waits on its queue until one does")
        return "nothing; a worker is on it (if it stays like this, see `wms-relay status`)"
    return "nothing: this event is settled"


def letter_next_step(letter_id: str, reason: str) -> str:
    """What to do about an open dead letter: a retry cannot help an invalid or conflicting event."""
    if reason in ("invalid", "conflict"):
        what = "is invalid" if reason == "invalid" else "reuses a key another event already has"
        return (f"the event {what}: retrying cannot help. Fix it in the WMS and send it again (a new key for "
                f"a conflict), then `wms-relay dead discard {letter_id} --reason ...`")
    return (f"read the error above, fix its cause, then `wms-relay dead retry {letter_id}` — or "
            f"`wms-relay dead discard {letter_id} --reason ...`")


def _order(kind: str, item: dict) -> int:
    if kind == "t":
        return 0 if item["to"] == "sending" else 2
    return 1


def timeline(view: dict) -> list[tuple[str, str, dict]]:
    """The event's story in order: (ISO time, ``t`` for a state change or ``a`` for a send attempt, the
    entry).  In one millisecond the claim (→ sending) comes before its attempt, the attempt before what
    followed."""
    entries = [(h["at"] or "", "t", h) for h in view["history"]] + \
              [(a["at"] or "", "a", a) for a in view.get("attempts_log", [])]
    return sorted(entries, key=lambda e: (e[0], _order(e[1], e[2])))


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
    from worker.support.desk import workplace

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
