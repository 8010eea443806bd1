"""``wms-relay uncertain list|resolve``: deliveries that may or may not have reached their destination.

A read timeout (or a worker dying mid-send) leaves it unknown whether the destination applied a request.
Where a second copy would do harm (a relative stock adjustment adds twice, at Trademax or at ka-ching),
wms-relay does not guess: the delivery is ``uncertain`` until a person checks the destination and says
which it is.  Only that destination's delivery is affected.

    uncertain list [--destination D] [--operation OP] [--grep TEXT] [--limit N | --all] [--json]
                                                     the 50 oldest unless --limit or --all
    uncertain resolve ID --delivered --reason TEXT   it is at the destination: never send it again
    uncertain resolve ID --resend --reason TEXT      it is not: send it once more (there only)

ID is ``OPERATION:KEY`` (Trademax's delivery, or ``--destination``'s) or ``DESTINATION/OPERATION:KEY``
(``kaching/stock.adjust:adj-42``), as `uncertain list` shows it.

Resolving is atomic: if two people resolve one event, the first one counts."""
from __future__ import annotations

import argparse
import json

from worker.commands.presenting import (
    Page, add_destination_option, add_list_filters, age, complain, default_actor, described,
    destination_title, filtered, friendly_errors, more_line, page_limit, paged, print_listing, run_actions,
    say, say_store, shorten, table,
)
from worker.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("uncertain",
                              help="deliveries that may or may not have reached their destination",
                              **described(__doc__))
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])
    sub = p.add_subparsers(dest="uncertain_command", metavar="ACTION")
    ls = sub.add_parser("list", help="uncertain deliveries, oldest first")
    add_destination_option(ls)
    add_list_filters(ls, "deliveries", "the oldest")
    ls.add_argument("--json", action="store_true",
                    help="print one JSON object: store, count, uncertain (an array: the page), total, limit, "
                         "more")
    ls.set_defaults(handler=run_list)
    resolve = sub.add_parser("resolve", help="say what you found at the destination")
    resolve.add_argument("id", metavar="ID", help="[DESTINATION/]OPERATION:KEY, as `uncertain list` shows it")
    add_destination_option(resolve, "with OPERATION:KEY: that destination's delivery (default Trademax)")
    choice = resolve.add_mutually_exclusive_group(required=True)
    choice.add_argument("--delivered", action="store_true", help="the destination has it: mark it delivered")
    choice.add_argument("--resend", action="store_true", help="it does not have it: send it once more")
    resolve.add_argument("--reason", required=True, help="what you saw there (kept in the history)")
    resolve.add_argument("--actor", default=None, help="who is acting (default: your OS account)")
    resolve.add_argument("--json", action="store_true", help="print the result as JSON")
    resolve.set_defaults(handler=run_resolve)


@friendly_errors
def run_list(args: argparse.Namespace) -> int:
    from worker.support.workplace import workplace

    from worker.destinations.table import DESTINATIONS

    limit = page_limit(args)  # a bad --limit is refused before anything is read
    whole = bool(args.operation or args.grep) or limit is None  # filtered here: every one is read
    with workplace(Settings.from_env()) as place:
        ledgers = [(destination, place.relay.ledger_of(destination.name))
                   for destination in DESTINATIONS.values() if args.destination in (None, destination.name)]
        found = filtered([(destination, record) for destination, ledger in ledgers
                          for record in ledger.list_in_state("uncertain", limit=None if whole else limit)],
                         args, operation=lambda found: found[1].operation,
                         text=lambda found: json.dumps(found[1].to_dict(), ensure_ascii=False, default=str))
        total = None if whole else sum(ledger.count_by_state()["uncertain"] for _, ledger in ledgers)
        now = place.relay.clock()
    page = paged(found, args)
    if total is not None:  # each destination's first ``limit`` were read: the count is the index's
        page = Page(page.items, total, limit, total > len(page.items))
    found = page.items
    if args.json:
        print_listing(place.store, "uncertain", [
            {**record.to_dict(), "destination": destination.name,
             "id": destination.delivery_ref(record.operation, record.key)} for destination, record in found],
            page)
        return 0
    say_store(place.store)
    if not found:
        say("No uncertain deliveries. Nothing to check at a destination.")
        return 0
    rows = []
    for destination, record in found:
        fields = record.event["fields"]
        about = " ".join(f"{k}={fields[k]}" for k in ("artno", "warehouse_id", "type", "quantity", "order_no")
                         if k in fields)
        rows.append((destination.delivery_ref(record.operation, record.key), destination.title,
                     age(now - record.updated_at), record.attempts, about,
                     shorten(record.history[-1]["reason"] if record.history else "", 60)))
    say(table(["ID", "DESTINATION", "SINCE", "ATTEMPTS", "WHAT", "WHY"], rows, widths={0: 48}))
    if page.more:
        say(f"{len(found)} of {page.total:,} shown (the oldest). " + more_line(page))
    say("Next: check each at its destination, then `wms-relay uncertain resolve ID --delivered --reason ...` "
        "if it arrived, or `--resend --reason ...` if it did not.")
    return 0


@friendly_errors
def run_resolve(args: argparse.Namespace) -> int:
    from worker.support.workplace import workplace
    from worker.destinations.table import destination as destination_named, split_delivery_ref
    from worker.support.actions import resolve_uncertain

    found = split_delivery_ref(args.id)
    if found is None:
        complain(f"{args.id!r} is not [DESTINATION/]OPERATION:KEY (e.g. stock.adjust:adj-42 or "
                 "kaching/stock.adjust:adj-42); see `wms-relay uncertain list`.")
        return 2
    destination, operation, key = found
    if args.destination and "/" not in args.id.partition(":")[0]:
        destination = destination_named(args.destination)
    if not args.reason.strip():
        complain(f"--reason must say what you saw at {destination_title(destination.name)}.")
        return 2
    actor = args.actor or default_actor()
    with workplace(Settings.from_env()) as place:
        return run_actions([args.id], lambda _: resolve_uncertain(
            place.tools, operation, key, delivered=args.delivered, actor=actor, reason=args.reason,
            destination=destination.name), verb="resolved", as_json=args.json, store=place.store)
