"""Recording the dispatch id Trademax did not give (a 452 without one), from the event page of the
shipment's create or of an event waiting for it: the same support action as ``wms-relay dispatch set-id``,
by POST with the desk's CSRF token, for operators only, acting as the signed-in person.  Input the action
cannot use is refused with its sentence (400) and changes nothing."""
from __future__ import annotations

from flask import Blueprint, g, render_template, request

from worker.web.desk.auth import operator_only
from worker.web.desk.pages import services
from worker.web.desk.services import DispatchIdRefused, set_dispatch_id

bp = Blueprint("dispatch_ids", __name__)


@bp.post("/dispatch-id")
@operator_only
def record():
    s = services()
    transaction_id = request.form.get("transaction_id", "")
    dispatch_id, reason = request.form.get("dispatch_id", ""), request.form.get("why", "")
    user = g.user.name
    try:
        report = set_dispatch_id(s.tools, transaction_id, dispatch_id, actor=user, reason=reason)
    except DispatchIdRefused as refused:
        return render_template("error.html", title="The dispatch id was not recorded", text=str(refused)), 400
    job_id = s.jobs.record("record dispatch id", user, report)  # done: kept as a finished one-target job
    return render_template("reports.html", job=s.jobs.get(job_id))
