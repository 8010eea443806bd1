"""Uncertain events: the evidence (attempts, what the worker saw), and a person's verdict after checking
Trademax — "it is there" (delivered, never sent again) or "it is not, resend" — with a reason."""
from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request

from worker.web.desk.auth import operator_only
from worker.web.desk.pages import services
from worker.web.desk.presenting import Pager, page_number
from worker.web.desk.services import resolve_uncertain

bp = Blueprint("uncertain", __name__)


@bp.get("/uncertain")
def page():
    s = services()
    total = s.relay.ledger.count_by_state()["uncertain"]
    pager = Pager(page_number(), total)
    records = s.relay.ledger.list_in_state("uncertain", limit=pager.per_page, offset=pager.offset)
    return render_template("uncertain.html", records=records, pager=pager, now=s.now())


@bp.post("/uncertain/resolve")
@operator_only
def resolve():
    s = services()
    operation, key = request.form.get("operation", ""), request.form.get("key", "")
    verdict, reason = request.form.get("verdict"), (request.form.get("why") or "").strip()
    if verdict not in ("delivered", "resend") or not operation or not key:
        abort(400)
    if not reason:
        return render_template("error.html", title="A reason is needed",
                               text="Say what you saw in Trademax (it is kept in the event's history)."), 400
    user = g.user.name
    job = s.jobs.run(f"resolve: {verdict}", user, [f"{operation}:{key}"], lambda _: resolve_uncertain(
        s.desk, operation, key, delivered=verdict == "delivered", actor=user, reason=reason))
    return render_template("reports.html", job=job)
