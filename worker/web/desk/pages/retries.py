"""Scheduled retries: events that failed transiently (or wait for their dispatch.create) and will be tried
again on their own — run one now, or discard it with a reason."""
from __future__ import annotations

from flask import Blueprint, g, render_template, request

from worker.web.desk.auth import operator_only
from worker.web.desk.pages import services
from worker.web.desk.presenting import Pager, page_number
from worker.web.desk.services import scheduled

bp = Blueprint("retries", __name__)


@bp.get("/retries")
def page():
    s = services()
    pager = Pager(page_number(), s.relay.schedule.count())
    entries = scheduled(s.place, offset=pager.offset, limit=pager.per_page)
    return render_template("retries.html", entries=entries, pager=pager)


def _ids() -> list[str]:
    return list(dict.fromkeys(i for i in request.form.getlist("ids") if i))


@bp.post("/retries/run-now")
@operator_only
def run_now():
    s = services()
    user = g.user.name
    targets = _ids() if request.form.get("all") != "1" else \
        [entry.ref for entry in s.relay.schedule.list(limit=None)]
    if not targets:
        return render_template("error.html", title="Nothing selected",
                               text="Tick the retries to run now."), 400
    job_id = s.jobs.run("run now", user, targets)  # each target: run_retry_now
    return render_template("reports.html", job=s.jobs.get(job_id))


@bp.post("/retries/discard")
@operator_only
def discard():
    s = services()
    reason = (request.form.get("why") or "").strip()
    targets = _ids()
    if not targets or not reason:
        return render_template("error.html", title="Nothing to do yet",
                               text="Tick the retries to discard and say why."), 400
    user = g.user.name
    job_id = s.jobs.run("discard retry", user, targets, reason=reason)  # each target: discard_retry
    return render_template("reports.html", job=s.jobs.get(job_id))
