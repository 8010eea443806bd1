"""Uncertain deliveries, every destination's: the evidence (attempts, what the worker saw), and a person's
verdict after checking that destination — "it is there" (delivered, never sent again) or "it is not,
resend" (to that destination only) — with a reason."""
from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request

from worker.destinations.table import DESTINATIONS, WMS_DESTINATION
from worker.web.desk.auth import operator_only
from worker.web.desk.pages import services
from worker.web.desk.presenting import Pager, page_number

bp = Blueprint("uncertain", __name__)


def _uncertain(relay, offset: int, limit: int) -> tuple[int, list[tuple[str, str, object]]]:
    """(how many, this page of (destination, its title, record)): each destination's ledger in turn, the
    first destination's first (each ledger pages its own; the page is cut across them)."""
    total, page, skip = 0, [], offset
    for name, destination in DESTINATIONS.items():
        ledger = relay.ledger_of(name)
        count = ledger.count_by_state()["uncertain"]
        total += count
        if skip >= count:
            skip -= count
            continue
        want = limit - len(page)
        if want > 0:
            page += [(name, destination.title, record)
                     for record in ledger.list_in_state("uncertain", limit=want, offset=skip)]
        skip = 0
    return total, page


@bp.get("/uncertain")
def page():
    s = services()
    total, _ = _uncertain(s.relay, 0, 0)
    pager = Pager(page_number(), total)
    _, records = _uncertain(s.relay, pager.offset, pager.per_page)
    return render_template("uncertain.html", records=records, pager=pager, now=s.now())


@bp.post("/uncertain/resolve")
@operator_only
def resolve():
    s = services()
    operation, key = request.form.get("operation", ""), request.form.get("key", "")
    destination = request.form.get("destination") or WMS_DESTINATION.name
    verdict, reason = request.form.get("verdict"), (request.form.get("why") or "").strip()
    if verdict not in ("delivered", "resend") or not operation or not key or destination not in DESTINATIONS:
        abort(400)
    if not reason:
        title = DESTINATIONS[destination].title
        return render_template("error.html", title="A reason is needed",
                               text=f"Say what you saw in {title} (it is kept in the event's history)."), 400
    user = g.user.name
    ref = DESTINATIONS[destination].delivery_ref(operation, key)
    job_id = s.jobs.run(f"resolve: {verdict}", user, [ref], reason=reason)  # resolve_uncertain
    return render_template("reports.html", job=s.jobs.get(job_id))
