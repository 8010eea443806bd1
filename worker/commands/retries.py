"""``wms-relay retries list|run-now``: the durable retry schedule — deliveries that failed transiently (or
wait for their dispatch.create) and will be tried again on their own, each to its own destination.

    retries list [--destination D] [--operation OP] [--grep TEXT] [--limit N | --all] [--json]
                     the 50 due soonest unless --limit or --all, and how many more there are
    retries run-now ID... | --all [--destination D]
    retries discard ID... | --all [--destination D] [--operation OP] [--grep TEXT] [--dry-run] --reason TEXT
                     give up on them: the delivery is discarded (kept, never sent)
                     (ID: OPERATION:KEY for Trademax, DESTINATION/OPERATION:KEY for the others, as
                      `retries list` shows it)

``run-now`` makes an entry due at once; the scheduler puts it back on its queue within a second.  It does
not change the retry limit: an event that keeps failing still becomes a dead letter.  Both are audited
(``--actor``, default your OS account; ``wms-relay audit`` lists every person's actions)."""
from __future__ import annotations

import argparse
import json

from worker.commands.presenting import (
    Page, add_destination_option, add_list_filters, age, complain, default_actor, described, filtered,
    friendly_errors, more_line, page_limit, paged, print_listing, run_actions, say, say_store, shorten, table,
)
from worker.settings import Settings
from worker.support.retry_view import scheduled, scheduled_page


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("retries", help="list scheduled retries, or run them now", **described(__doc__))
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])
    sub = p.add_subparsers(dest="retries_command", metavar="ACTION")
    ls = sub.add_parser("list", help="scheduled retries, soonest first")
    add_destination_option(ls)
    add_list_filters(ls, "retries", "the soonest due")
    ls.add_argument("--json", action="store_true",
                    help="print one JSON object: store, count, retries (an array: the page), total, limit, "
                         "more")
    ls.set_defaults(handler=run_list)
    now = sub.add_parser("run-now", help="make scheduled retries due now")
    now.add_argument("ids", nargs="*", metavar="ID", help="[DESTINATION/]OPERATION:KEY")
    now.add_argument("--all", action="store_true", help="every scheduled retry (of --destination)")
    add_destination_option(now, "with --all: only this destination's")
    now.add_argument("--actor", default=None, help="who is acting (default: your OS account)")
    now.add_argument("--json", action="store_true", help="print the results as JSON")
    now.set_defaults(handler=run_now)
    discard = sub.add_parser("discard", help="give up on scheduled retries (the deliveries are discarded)")
    discard.add_argument("ids", nargs="*", metavar="ID", help="[DESTINATION/]OPERATION:KEY")
    discard.add_argument("--all", action="store_true", help="every scheduled retry that matches the filters")
    add_destination_option(discard, "with --all: only this destination's")
    discard.add_argument("--operation", help="with --all: only this operation, e.g. stock.adjust")
    discard.add_argument("--grep", help="with --all: only entries whose id, event or error contain this text")
    discard.add_argument("--dry-run", action="store_true",
                         help="show what would be discarded; change nothing")
    discard.add_argument("--reason", required=True, help="why (required; kept in the event's history)")
    discard.add_argument("--actor", default=None, help="who is acting (default: your OS account)")
    discard.add_argument("--json", action="store_true", help="print the results as JSON")
    discard.set_defaults(handler=run_discard)


@friendly_errors
def run_list(args: argparse.Namespace) -> int:
    from worker.support.workplace import workplace

    limit = page_limit(args)  # a bad --limit is refused before anything is read
    with workplace(Settings.from_env()) as place:
        if args.operation or args.grep:  # filtered here: every entry is read
            every = scheduled(place, args.destination)
            page = paged(filtered(every, args, operation=lambda e: e["operation"],
                                  text=lambda e: json.dumps(e, ensure_ascii=False)), args)
        else:  # only the page is read
            entries, total = scheduled_page(place, args.destination, limit=limit)
            page = Page(entries, total, limit, total > len(entries))
    entries = page.items
    if args.json:
        print_listing(place.store, "retries", entries, page)
        return 0
    say_store(place.store)
    if not entries:
        say("No scheduled retries: nothing is waiting to be tried again.")
        return 0
    rows = [(e["id"], e["destination"],
             "now" if e["due_in_seconds"] <= 0 else f"in {age(e['due_in_seconds'])}",
             e["state"] or "-", e["attempts"], shorten(e["last_error"] or "", 70)) for e in entries]
    say(table(["ID", "DESTINATION", "DUE", "STATE", "ATTEMPTS", "LAST ERROR"], rows, widths={0: 48}))
    shown = f"{len(entries)} scheduled" if not page.more else f"{len(entries)} of {page.total:,} shown"
    say(f"{shown}. They run on their own; `wms-relay retries run-now ID` (or --all "
        "[--destination D]) tries now, e.g. once the destination is back.")
    if page.more:
        say(more_line(page))
    return 0


@friendly_errors
def run_now(args: argparse.Namespace) -> int:
    from worker.support.workplace import workplace
    from worker.support.actions import run_retry_now

    if bool(args.ids) == bool(args.all):
        complain("name the retries to run now ([DESTINATION/]OPERATION:KEY, see `wms-relay retries "
                 "list`), or use --all.")
        return 2
    with workplace(Settings.from_env()) as place:
        targets = args.ids or [entry["id"] for entry in scheduled(place, args.destination)]
        actor = args.actor or default_actor()
        return run_actions(targets, lambda t: run_retry_now(place.tools, t, actor=actor), verb="made due now",
                           as_json=args.json, store=place.store,
                           nothing="Nothing to do: no retries are scheduled.")


@friendly_errors
def run_discard(args: argparse.Namespace) -> int:
    from worker.support.actions import discard_retry
    from worker.support.workplace import workplace

    if bool(args.ids) == bool(args.all):
        complain("name the retries to discard ([DESTINATION/]OPERATION:KEY, see `wms-relay retries list`), "
                 "or use --all (with filters).")
        return 2
    if args.ids and (args.operation or args.grep or args.destination):
        complain("--destination, --operation and --grep go with --all; with IDs, name exactly what to "
                 "discard.")
        return 2
    if not args.reason.strip():
        complain("--reason must say why the retry is given up.")
        return 2
    actor = args.actor or default_actor()
    with workplace(Settings.from_env()) as place:
        targets = args.ids or [entry["id"] for entry in filtered(
            scheduled(place, args.destination), args, operation=lambda e: e["operation"],
            text=lambda e: json.dumps(e, ensure_ascii=False))]
        return run_actions(targets, lambda t: discard_retry(place.tools, t, actor=actor, reason=args.reason,
                                                            dry_run=args.dry_run),
                           verb="discarded", as_json=args.json, store=place.store, dry_run=args.dry_run,
                           nothing="Nothing to do: no scheduled retries match.")
