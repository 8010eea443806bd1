"""``wms-relay validate OPERATION FILE|-``: check WMS events against their schema, and nothing else.

For a WMS developer writing a publisher: each event (one JSON object, an array, or JSON lines — what
``enqueue`` and the ingest door read) is judged by the schema the relay validates with, and answered as
the ingest door answers a 422: the same note and the same ``errors`` (field path -> messages).  Needs no
store and no settings; records nothing, queues nothing, makes no dead letter.  ``POST
/v1/events/OPERATION?dry_run=true`` at the ingest door also checks the key against the ledger.

Exit code: 0 every event valid, 1 one or more invalid, 2 a usage problem (unknown operation, unreadable
file, not JSON, no event)."""
from __future__ import annotations

import argparse
import json
import sys

from worker.commands.presenting import described
from worker.encoding import one_line


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("validate", help="check WMS events against their schema (no store, writes "
                                               "nothing)", **described(__doc__))
    p.add_argument("operation", help="e.g. dispatch.create, receipt.create, stock.adjust")
    p.add_argument("file", help="a JSON file: one event, an array of events, or JSON lines; - for stdin")
    p.add_argument("--json", action="store_true",
                   help="print the ingest door's answer: {operation, dry_run, events: [{index, key, state, "
                        "status, note, errors}]}")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from worker.commands.enqueue import events_of
    from worker.delivery.dry_run import judge

    events = events_of(args)
    if events is None:
        return 2
    if not events:
        print(f"wms-relay: {args.file} holds no event", file=sys.stderr)
        return 2
    intakes = [judge(args.operation, event) for event in events]
    if args.json:
        answers = []
        for index, intake in enumerate(intakes):
            entry = {"index": index, "key": intake.key, "state": None,
                     "status": 200 if intake.verdict == "valid" else 422, "note": intake.note}
            if intake.problems is not None:
                entry["errors"] = intake.problems
            answers.append(entry)
        print(json.dumps({"operation": args.operation, "dry_run": True, "events": answers}, indent=2))
    else:
        for intake in intakes:
            print(f"{args.operation} {one_line(intake.key)}: {intake.verdict}")
            for path, messages in (intake.problems or {}).items():
                for message in messages if isinstance(messages, list) else [messages]:
                    print(f"  {one_line(path)}: {one_line(message)}")
        invalid = sum(intake.verdict == "invalid" for intake in intakes)
        print(f"Summary: {len(intakes) - invalid} valid, {invalid} invalid (nothing recorded or queued)")
    return 1 if any(intake.verdict == "invalid" for intake in intakes) else 0
