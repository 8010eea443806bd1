"""``wms-relay audit [--actor NAME] [--action ACTION] [--since 2h] [--grep TEXT] [--limit N] [--json]``:
every person's action — retries, discards, resolutions, run-nows, desk sign-ins — newest first, whether
done in this CLI or on the support desk (``worker.store.audit_log``)."""
from __future__ import annotations

import argparse

from worker.commands.presenting import (
    friendly_errors, page_size, parse_since, print_listing, say, say_store, shorten, table,
)
from worker.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("audit", help="every person's action (CLI and desk), newest first",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--actor", help="only this person's actions")
    p.add_argument("--action", help="only this action: retry, discard, resolve-delivered, resolve-resend, "
                                    "run-now, discard-retry, sign-in, sign-in-locked, sign-out, pause, "
                                    "resume")
    p.add_argument("--since", help="only actions since: 30m, 2h, 3d or a date (2024-05-01)")
    p.add_argument("--grep", help="only actions whose target, reason or message contain this text")
    p.add_argument("--limit", default="50", metavar="N", help="at most N (default 50)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: store, count, entries (an array)")
    p.set_defaults(handler=run)


@friendly_errors
def run(args: argparse.Namespace) -> int:
    from worker.store.audit_log import AuditFilter
    from worker.support.workplace import workplace

    page_size(args.limit)  # a bad --limit is refused before anything is read
    with workplace(Settings.from_env()) as place:
        since = parse_since(args.since, place.relay.clock()) if args.since else None
        entries, _ = place.tools.audit.page(AuditFilter(actor=args.actor, action=args.action, text=args.grep,
                                                        since=since), limit=page_size(args.limit))
    if args.json:
        print_listing(place.store, "entries", [entry.to_dict() for entry in entries])
        return 0
    say_store(place.store)
    if not entries:
        say("No actions recorded" + (" match those filters." if args.actor or args.action or args.since
                                     or args.grep else " yet."))
        return 0
    rows = [(entry.to_dict()["at"], entry.actor, entry.via, entry.action, entry.target, entry.status,
             shorten(entry.reason, 40), shorten(entry.message, 60)) for entry in entries]
    say(table(["AT (UTC)", "WHO", "VIA", "ACTION", "TARGET", "STATUS", "WHY", "WHAT HAPPENED"], rows))
    return 0
