"""``wms-relay dispatch set-id TRANSACTION_ID DISPATCH_ID --reason TEXT``: record the dispatch id Trademax
did not give.

After a lost answer a dispatch.create is sent again and Trademax answers 452 (request duplication).  When
that answer carries no dispatch id, the create is delivered "dispatch id unknown" and the updates,
publishes and deletes of the shipment wait (reason dispatch_id_unknown; `wms-relay status` lists the
shipment under "Needs a person").  Find the shipment's dispatch id at Trademax, then record it here: the
waiting events are released at once and each is sent once with it.  Audited (who, why; `wms-relay audit`).

Refused, with exit code 2 and nothing changed: an unknown transaction id, a create that is not delivered or
already has an id, a DISPATCH_ID that is not a Trademax dispatch id (a whole number, 1 to 18 digits), an
empty reason."""
from __future__ import annotations

import argparse

from worker.commands.presenting import Refused, default_actor, described, friendly_errors, run_actions
from worker.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("dispatch", help="record the dispatch id Trademax did not give (set-id)",
                              **described(__doc__))
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])
    sub = p.add_subparsers(dest="dispatch_command", metavar="ACTION")
    set_id = sub.add_parser("set-id", help="record a shipment's dispatch id and release its waiting events",
                            **described(__doc__))
    set_id.add_argument("transaction_id", metavar="TRANSACTION_ID", help="the shipment, as the WMS names it")
    set_id.add_argument("dispatch_id", metavar="DISPATCH_ID", help="Trademax's dispatch id (e.g. 390333)")
    set_id.add_argument("--reason", required=True, help="where the id comes from (kept in the history)")
    set_id.add_argument("--actor", default=None, help="who is acting (default: your OS account)")
    set_id.add_argument("--json", action="store_true", help="print the result as JSON")
    set_id.set_defaults(handler=run_set_id)


@friendly_errors
def run_set_id(args: argparse.Namespace) -> int:
    from worker.support.workplace import workplace
    from worker.support.dispatch_ids import Refused as Refusal, set_dispatch_id

    actor = args.actor or default_actor()
    with workplace(Settings.from_env()) as place:
        try:
            report = set_dispatch_id(place.tools, args.transaction_id, args.dispatch_id, actor=actor,
                                     reason=args.reason)
        except Refusal as exc:
            raise Refused(str(exc)) from None
        return run_actions([report.target], lambda _: report, verb="recorded", as_json=args.json,
                           store=place.store)
