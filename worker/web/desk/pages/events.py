"""One event's delivery to one destination (``?destination=``, Trademax's by default): its state, every
attempt, the whole history as a timeline, the destination's stored answer, the signing explanation
(Trademax's), its dead letter or scheduled retry — the actions that fit its state —, the catalog row a count
was sent with (or that it waits for one: ``unmapped``), and links to the event's deliveries to the other
destinations."""
from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for

from worker.destinations.table import DESTINATIONS, WMS_DESTINATION
from worker.web.desk.pages import services
from worker.web.desk.services import (
    describe, next_step, split_event_ref, timeline, unknown_id_of, unmapped_artno, with_liveness,
)
from worker.web.desk.signing_view import explain

bp = Blueprint("events", __name__)
MOVING = ("accepted", "sending", "retrying", "waiting")


def _operations() -> list[str]:
    from tasks.events import OPERATIONS

    return sorted(OPERATIONS)


@bp.get("/events")
def find():
    """Find an event by its key (or OPERATION:KEY) under every operation."""
    s = services()
    wanted = (request.args.get("q") or "").strip()
    if not wanted:
        return render_template("find_event.html", q="", found=[])
    named = split_event_ref(wanted)
    candidates = [named] if named and named[0] in _operations() else [(op, wanted) for op in _operations()]
    found = [view for op, key in candidates if (view := describe(s.relay, op, key)) is not None]
    if len(found) == 1:
        return redirect(url_for("events.page", operation=found[0]["operation"], key=found[0]["key"]))
    return render_template("find_event.html", q=wanted, found=found)


@bp.get("/events/<operation>/<path:key>")
def page(operation: str, key: str):
    s = services()
    destination = request.args.get("destination") or None
    letter_id = request.args.get("letter")
    letter = s.relay.dead_letters.get(letter_id) if letter_id else None
    if letter is not None and destination is None:
        destination = letter.destination  # a letter's page is its destination's delivery
    if operation not in _operations() or (destination is not None and destination not in DESTINATIONS):
        abort(404)
    every = describe(s.relay, operation, key)
    view = every if destination is None or every is None else next(
        (d for d in every["deliveries"] if d["destination"] == destination), None)
    if view is None:
        abort(404)
    view = with_liveness(s.place, {**view, "deliveries": every["deliveries"]})  # the next step says
    # when no worker (or scheduler) runs
    if letter_id:  # one letter of several (an invalid event's "(no key)" is shared by many)
        if letter is None or (letter.operation, letter.key) != (operation, key):
            abort(404)
        view["dead_letter"] = letter.to_dict()
    # Only a validated event (one in the ledger) becomes a request; an invalid one was never sent.  The
    # signing explanation is Trademax's (the other destinations sign nothing per request).
    fields = view["event"].get("fields") if view["in_ledger"] else None
    dispatch_id = None
    if isinstance(fields, dict) and fields.get("transaction_id") and s.relay.dispatch_waiters is not None:
        dispatch_id = s.relay.dispatch_waiters.dispatch_id_for(fields["transaction_id"])
    signing = (explain(operation, fields, dispatch_id)
               if fields and view["destination"] == WMS_DESTINATION.name else None)
    unknown_id = unknown_id_of(view)  # waits for a person: no refresh while they type the id
    unmapped = unmapped_artno(view)  # waits for a catalog row: no refresh, nothing moves until an import
    return render_template("event.html", view=view, story=timeline(view), next=next_step(view),
                           signing=signing,
                           moving=view["state"] in MOVING and unknown_id is None and unmapped is None,
                           unknown_id=unknown_id, unmapped_artno=unmapped,
                           title=DESTINATIONS[view["destination"]].title, titles={
                               name: d.title for name, d in DESTINATIONS.items()})


@bp.get("/dead-letter/<letter_id>")
def letter(letter_id: str):
    found = services().relay.dead_letters.get(letter_id)
    if found is None:
        abort(404)
    return redirect(url_for("events.page", operation=found.operation, key=found.key, letter=letter_id,
                            destination=found.destination))
