"""``wms-relay pause DESTINATION [--until TIME] --reason TEXT`` / ``wms-relay resume DESTINATION`` /
``wms-relay pauses``: stop sending to a destination for a while (a maintenance window, a stocktake, a
destination misbehaving), start again, and see who did so when and why.

While a destination is paused nothing is sent to it; events keep being accepted, its deliveries wait
(``retrying``, no attempt counted), its batches keep collecting, and its retry clocks stand still.  On
resume (or at ``--until``) the waiting deliveries are released gradually, through its rate limit.  Every
pause and resume is audited (who, when, why, until when; ``wms-relay pauses``, and with every other
person's action in ``wms-relay audit``), and ``wms-relay status`` shows the pause in force."""
from __future__ import annotations

import argparse

from worker.commands.presenting import (
    Refused,
    default_actor,
    destination_title,
    friendly_errors,
    page_size,
    parse_until,
    print_json,
    print_listing,
    say,
    say_store,
    table,
)
from worker.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    from worker.destinations.table import DESTINATIONS

    names = tuple(DESTINATIONS)
    p = subparsers.add_parser("pause", help="stop sending to a destination (audited)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("destination", choices=names, metavar="DESTINATION", help=", ".join(names))
    p.add_argument("--reason", required=True, help="why (shown in status and kept in the audit trail)")
    p.add_argument("--until", help="end the pause by itself: a time (2024-05-01T22:00, UTC unless it says "
                                   "otherwise) or a duration from now (30m, 2h, 1d), within a year")
    p.add_argument("--actor", default=None, help="who is pausing (default: your account name)")
    p.add_argument("--json", action="store_true", help="print the pause as JSON")
    p.set_defaults(handler=run_pause)

    r = subparsers.add_parser("resume", help="send to a paused destination again (audited)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("destination", choices=names, metavar="DESTINATION", help=", ".join(names))
    r.add_argument("--reason", default="", help="why (kept in the audit trail)")
    r.add_argument("--actor", default=None, help="who is resuming (default: your account name)")
    r.add_argument("--json", action="store_true", help="print what was resumed as JSON")
    r.set_defaults(handler=run_resume)

    h = subparsers.add_parser("pauses", help="who paused and resumed which destination, when and why",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    h.add_argument("--destination", choices=names, default=None, help="only this destination's")
    h.add_argument("--limit", default="50", metavar="N", help="at most N, newest first (default 50)")
    h.add_argument("--json", action="store_true",
                   help="print one JSON object: store, count, entries (an array)")
    h.set_defaults(handler=run_history)


def _audit(place, action: str, destination: str, actor: str, reason: str, status: str, message: str) -> None:
    """Also in the audit log of every person's action (``wms-relay audit``, the desk's audit page)."""
    audit = getattr(place.tools, "audit", None)
    if audit is not None:
        audit.record(actor=actor, action=action, target=destination, reason=reason, status=status,
                     message=message, via=getattr(place.tools, "via", "cli"))


def _when(moment: float | None) -> str:
    from worker.encoding import iso_time

    return iso_time(moment) if moment is not None else "until resumed"


@friendly_errors
def run_pause(args: argparse.Namespace) -> int:
    from worker.support.workplace import workplace

    if not args.reason.strip():
        raise Refused("--reason must say why: the next person needs to know")
    with workplace(Settings.from_env()) as place:
        from worker.flow.pause import LONGEST_PAUSE_SECONDS

        until = None if not args.until else parse_until(args.until, place.relay.clock(),
                                                        longest=LONGEST_PAUSE_SECONDS)
        paused = place.relay.flow.pauses.pause(args.destination, by=args.actor or default_actor(),
                                               reason=args.reason, until=until)
        _audit(place, "pause", args.destination, paused.by, paused.reason, "done",
               f"paused {'until ' + _when(paused.until) if paused.until else 'until resumed'}")
    if args.json:
        print_json({"destination": args.destination, **paused.to_dict(), "store": place.store})
        return 0
    say_store(place.store)
    title = destination_title(args.destination)
    say(f"{title} is paused {'until ' + _when(paused.until) if paused.until else 'until resumed'} "
        f"(by {paused.by}: {paused.reason}).")
    say(f"Nothing is sent to {title} meanwhile; its events are still accepted and wait. "
        f"`wms-relay resume {args.destination}` ends it.")
    return 0


@friendly_errors
def run_resume(args: argparse.Namespace) -> int:
    from worker.support.workplace import workplace

    with workplace(Settings.from_env()) as place:
        flow = place.relay.flow
        actor = args.actor or default_actor()
        ended = flow.pauses.resume(args.destination, by=actor, reason=args.reason)
        parked = flow.parking(args.destination).count()
        _audit(place, "resume", args.destination, actor, args.reason, "done" if ended else "skipped",
               f"ended {ended.by}'s pause" if ended else "it was not paused")
    title = destination_title(args.destination)
    if args.json:
        print_json({"destination": args.destination, "resumed": ended is not None,
                    "pause": None if ended is None else ended.to_dict(), "parked": parked,
                    "store": place.store})
        return 0
    say_store(place.store)
    if ended is None:
        say(f"{title} was not paused: nothing to do.")
        return 0
    say(f"{title} resumed (it was paused by {ended.by}: {ended.reason}).")
    if parked:
        say(f"{parked} waiting deliveries are released gradually by the workers.")
    return 0


@friendly_errors
def run_history(args: argparse.Namespace) -> int:
    from worker.support.workplace import workplace

    page_size(args.limit)  # a bad --limit is refused before anything is read
    with workplace(Settings.from_env()) as place:
        entries = place.relay.flow.pauses.history(args.destination, limit=page_size(args.limit))
    if args.json:
        print_listing(place.store, "entries", [entry.to_dict() for entry in entries])
        return 0
    say_store(place.store)
    if not entries:
        say("No destination was ever paused" + (" (of those)." if args.destination else "."))
        return 0
    from worker.encoding import iso_time

    rows = [(iso_time(e.at), e.actor, e.action, destination_title(e.destination),
             _when(e.until) if e.action == "pause" else "", e.reason) for e in entries]
    say(table(["AT (UTC)", "WHO", "ACTION", "DESTINATION", "UNTIL", "WHY"], rows))
    return 0
