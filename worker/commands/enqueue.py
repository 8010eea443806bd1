"""``wms-relay enqueue OPERATION FILE|-``: put WMS events on the queue from JSON.

The input is one event (a JSON object), a JSON array of events, or JSON lines.  Each event is validated
and recorded in the ledger first: an invalid one becomes a dead letter at once (it names the fields) and
is never queued.  Prints one line per event: its key and state."""
from __future__ import annotations

import argparse
import json
import sys

from worker.encoding import one_line
from worker.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("enqueue", help="enqueue WMS events from a JSON file (or - for stdin)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("operation", help="e.g. dispatch.create, receipt.create, stock.adjust")
    p.add_argument("file", help="a JSON file: one event, an array of events, or JSON lines; - for stdin")
    p.add_argument("--json", action="store_true", help="print one JSON object per event")
    p.set_defaults(handler=run)


def read_events(text: str) -> list:
    """One JSON value (object or array) or JSON lines → a list of events.  A key given twice in one object
    is refused (ValueError naming it): JSON parsers disagree on which one wins, so the event is ambiguous."""
    from tasks.raw_messages import strict_json

    stripped = text.strip()
    if not stripped:
        return []
    try:
        value = strict_json(stripped)
    except json.JSONDecodeError:
        events = []
        for number, line in enumerate(stripped.splitlines(), 1):
            if line.strip():
                try:
                    events.append(strict_json(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"line {number} is not JSON: {exc.msg}") from None
                except ValueError as exc:
                    raise ValueError(f"line {number}: {exc}") from None
        return events
    return value if isinstance(value, list) else [value]


def run(args: argparse.Namespace) -> int:
    from tasks.events import OPERATIONS
    from worker.celery import app
    from worker.delivery.pipeline import SETTLED, admit
    from worker.delivery.relay import build_relay
    from worker.scheduling.scheduler import celery_publisher

    if args.operation not in OPERATIONS:
        print(f"wms-relay: unknown operation {args.operation!r}; one of: {', '.join(sorted(OPERATIONS))}",
              file=sys.stderr)
        return 2
    try:
        text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()
        events = read_events(text)
    except (OSError, ValueError) as exc:
        print(f"wms-relay: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    if not events:
        print("Nothing to do: no events in the input.")
        return 0
    relay = build_relay(Settings.from_env(), sends=False)
    publish = celery_publisher(app)
    counts: dict[str, int] = {}
    for message in events:
        admission = admit(relay, args.operation, message)
        state = admission.state
        if admission.event is not None and state not in SETTLED:
            publish(admission.event.task_message())
            note = "queued" if state == "accepted" else f"already {state}; queued again (it is sent once)"
        elif admission.event is not None:
            note = f"already {state}; not sent again"
        else:
            note = admission.detail
        counts[state] = counts.get(state, 0) + 1
        if args.json:
            print(json.dumps({"operation": args.operation, "key": admission.key, "state": state,
                              "note": note}))
        else:
            print(f"{args.operation} {one_line(admission.key)}: {state} — {one_line(note)}")
    if not args.json:
        print("Summary: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return 1 if counts.get("dead") else 0
