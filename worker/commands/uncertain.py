"""``wms-relay uncertain list|resolve``: events that may or may not have reached Trademax.

A read timeout (or a worker dying mid-send) leaves it unknown whether Trademax applied a request.  Where a
second copy would do harm (a relative stock adjustment adds twice), wms-relay does not guess: the event is
``uncertain`` until a person checks Trademax and says which it is.

    uncertain list [--operation OP] [--grep TEXT] [--limit N] [--json]
    uncertain resolve OPERATION:KEY --delivered --reason TEXT   it is in Trademax: never send it again
    uncertain resolve OPERATION:KEY --resend --reason TEXT      it is not: send it once more

Resolving is atomic: if two people resolve one event, the first one counts."""
from __future__ import annotations

import argparse
import json

from worker.commands.presenting import (
    add_list_filters, age, complain, default_actor, described, filtered, friendly_errors, print_json,
    run_actions, say, say_store, shorten, table,
)
from worker.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("uncertain", help="events that may or may not have reached Trademax",
                              **described(__doc__))
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])
    sub = p.add_subparsers(dest="uncertain_command", metavar="ACTION")
    ls = sub.add_parser("list", help="uncertain events, oldest first")
    add_list_filters(ls)
    ls.add_argument("--json", action="store_true", help="print a JSON array")
    ls.set_defaults(handler=run_list)
    resolve = sub.add_parser("resolve", help="say what you found in Trademax")
    resolve.add_argument("id", metavar="OPERATION:KEY", help="as `uncertain list` shows it")
    choice = resolve.add_mutually_exclusive_group(required=True)
    choice.add_argument("--delivered", action="store_true", help="Trademax has it: mark it delivered")
    choice.add_argument("--resend", action="store_true", help="Trademax does not have it: send it once more")
    resolve.add_argument("--reason", required=True, help="what you saw in Trademax (kept in the history)")
    resolve.add_argument("--actor", default=None, help="who is acting (default: your OS account)")
    resolve.add_argument("--json", action="store_true", help="print the result as JSON")
    resolve.set_defaults(handler=run_resolve)


@friendly_errors
def run_list(args: argparse.Namespace) -> int:
    from worker.support.desk import workplace

    with workplace(Settings.from_env()) as place:
        records = filtered(place.relay.ledger.list_in_state("uncertain", limit=None), args,
                           operation=lambda r: r.operation,
                           text=lambda r: json.dumps(r.to_dict(), ensure_ascii=False, default=str))
        now = place.relay.clock()
    if args.json:
        print_json([{**record.to_dict(), "id": f"{record.operation}:{record.key}"} for record in records])
        return 0
    say_store(place.store)
    if not records:
        say("No uncertain events. Nothing to check in Trademax.")
        return 0
    rows = []
    for record in records:
        fields = record.event["fields"]
        about = " ".join(f"{k}={fields[k]}" for k in ("artno", "warehouse_id", "type", "quantity", "order_no")
                         if k in fields)
        rows.append((f"{record.operation}:{record.key}", age(now - record.updated_at), record.attempts,
                     about, shorten(record.history[-1]["reason"] if record.history else "", 60)))
    say(table(["ID", "SINCE", "ATTEMPTS", "WHAT", "WHY"], rows, widths={0: 48}))
    say("Next: check each in Trademax, then `wms-relay uncertain resolve ID --delivered --reason ...` if it "
        "arrived, or `--resend --reason ...` if it did not.")
    return 0


@friendly_errors
def run_resolve(args: argparse.Namespace) -> int:
    from worker.support.desk import workplace
    from worker.encoding import split_event_ref
    from worker.support.actions import resolve_uncertain

    event = split_event_ref(args.id)
    if event is None:
        complain(f"{args.id!r} is not OPERATION:KEY (e.g. stock.adjust:adj-42); see "
                 "`wms-relay uncertain list`.")
        return 2
    if not args.reason.strip():
        complain("--reason must say what you saw in Trademax.")
        return 2
    actor = args.actor or default_actor()
    with workplace(Settings.from_env()) as place:
        return run_actions([args.id], lambda _: resolve_uncertain(
            place.desk, event[0], event[1], delivered=args.delivered, actor=actor, reason=args.reason),
            verb="resolved", as_json=args.json, store=place.store)
