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


@friendly_errors
def run(args: argparse.Namespace) -> int:
    from tasks.events import OPERATIONS
    from worker.delivery.relay import build_relay
    from worker.scheduling.scheduler import celery_publisher
    from worker.store.connection import describe
    from worker.support.desk import control_app

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
    settings = Settings.from_env()
    # Each event's line below says what became of it; the pipeline's "parked" log line (meant for the
    # worker's log) would repeat an invalid event's on stderr through Python's last-resort handler.
    parked = logging.getLogger("wms_relay.parked")
    parked.addHandler(logging.NullHandler())
    parked.propagate = False
    relay = build_relay(settings, sends=False)  # never starts a store: StoreNotFound, exit 3
    app = control_app(settings)
    publish = celery_publisher(app)
    store = describe(settings)
    if not args.json:
        say_store(store)
    try:
        counts = _admit_all(relay, publish, args.operation, events, store=store, as_json=args.json)
    finally:
        app.close()
        relay.redis.close()
    if not args.json:
        print("Summary: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return 1 if counts.get("dead") else 0


def _admit_all(relay, publish, operation: str, events: list, *, store: str, as_json: bool) -> dict[str, int]:
    """Admit and queue each event, printing one line each; the count of events by state."""
    from worker.delivery.pipeline import SETTLED, admit

    counts: dict[str, int] = {}
    for message in events:
        admission = admit(relay, operation, message)
        state = admission.state
        if admission.event is not None and state not in SETTLED:
            publish(admission.event.task_message())
            note = "queued" if state == "accepted" else f"already {state}; queued again (it is sent once)"
        elif admission.event is not None:
            note = f"already {state}; not sent again"
        else:
            note = admission.detail
        counts[state] = counts.get(state, 0) + 1
        if as_json:
            print(json.dumps({"operation": operation, "key": admission.key, "state": state, "note": note,
                              "store": store}))
        else:
            print(f"{operation} {one_line(admission.key)}: {state} — {one_line(note)}")
    return counts
