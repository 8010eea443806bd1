"""``wms-relay enqueue OPERATION FILE|-``: put WMS events on the queue from JSON.

The input is one event (a JSON object), a JSON array of events, or JSON lines.  Each event is validated
and recorded in the ledger first: an invalid one becomes a dead letter at once (it names the fields) and
is never queued.  Prints one line per event: its key and state."""
from __future__ import annotations

import argparse
import json
import logging
import sys

from worker.commands.presenting import friendly_errors, described, say_store
from worker.encoding import one_line
from worker.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("enqueue", help="enqueue WMS events from a JSON file (or - for stdin)",
                              **described(__doc__))
    p.add_argument("operation", help="e.g. dispatch.create, receipt.create, stock.adjust")
    p.add_argument("file", help="a JSON file: one event, an array of events, or JSON lines; - for stdin")
    p.add_argument("--json", action="store_true", help="print one JSON object per event")
    p.set_defaults(handler=run)


def events_of(args: argparse.Namespace) -> list | None:
    """The events in ``args.file`` (``-``: stdin) for ``args.operation``: one JSON object, an array or JSON
    lines.  None after saying what is wrong (an unknown operation, a file that cannot be read as JSON)."""
    from tasks.events import OPERATIONS
    from worker.delivery.admission import read_events

    if args.operation not in OPERATIONS:
        print(f"wms-relay: unknown operation {args.operation!r}; one of: {', '.join(sorted(OPERATIONS))}",
              file=sys.stderr)
        return None
    try:
        if args.file == "-":
            text = sys.stdin.read()
        else:
            with open(args.file, encoding="utf-8-sig") as source:
                text = source.read()
        return read_events(text)
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        print(f"wms-relay: cannot read {args.file}: {exc}", file=sys.stderr)
        return None


@friendly_errors
def run(args: argparse.Namespace) -> int:
    from worker.delivery.admission import STORE_UNREACHABLE, take_in_all
    from worker.delivery.relay import build_relay
    from worker.store.connection import describe

    events = events_of(args)
    if events is None:
        return 2
    if not events:
        print("Nothing to do: no events in the input.")
        return 0
    settings = Settings.from_env()
    # Each event's line below says what became of it; the pipeline's "parked" log line (meant for the
    # worker's log) would repeat an invalid event's on stderr through Python's last-resort handler.
    parked = logging.getLogger("wms_relay.parked")
    parked.addHandler(logging.NullHandler())
    parked.propagate = False
    relay = build_relay(settings, sends=False)  # never starts a store: StoreNotFound, exit 3
    store = describe(settings)
    if not args.json:
        say_store(store)
    counts: dict[str, int] = {}
    abandoned: list = []
    try:
        for intake in take_in_all(relay, args.operation, events, abandon=abandoned.extend):
            shown = intake.state or "not admitted"
            counts[shown] = counts.get(shown, 0) + 1
            if args.json:
                print(json.dumps({"operation": args.operation, "key": intake.key, "state": intake.state,
                                  "note": intake.note, "store": store}))
            else:
                print(f"{args.operation} {one_line(intake.key)}: {shown} — {one_line(intake.note)}")
        if abandoned:  # not admitted, yet the store may have run them before it stopped answering
            try:
                relay.ledger.withdraw_admissions(abandoned)
            except STORE_UNREACHABLE:
                print(f"wms-relay: {len(abandoned)} events not admitted could not be checked: if the store "
                      "ran them before it stopped answering they will be delivered (once; sending them again "
                      "is safe)", file=sys.stderr)
    finally:
        relay.redis.close()
    if not args.json:
        print("Summary: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    if counts.get("not admitted"):
        print("wms-relay: the store did not answer; the events not admitted can be sent again as they are "
              "(an admitted one is recognised by its key)", file=sys.stderr)
        return 3
    return 1 if counts.get("dead") else 0
