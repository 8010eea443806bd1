"""Dead letters: filter (operation, destination, reason, age, status), search (key, order_no, artno,
transaction_id or any text), select some or all matching, then retry (after a dry-run preview) or
discard — each with a reason, each letter through the CLI's own support action."""
from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from worker.web.desk.auth import operator_only
from worker.web.desk.pages import services
from worker.web.desk.presenting import Pager, page_number
from worker.web.desk.services import (
    LetterQuery, all_matching_ids, has_identifier, retry_letter, search, search_walk,
)

bp = Blueprint("dead_letters", __name__)
# age filter -> (newer than, older than), in seconds before now
AGES = {"": (None, None), "1h": (3600, None), "1d": (86400, None), "7d": (7 * 86400, None),
        "older-1d": (None, 86400), "older-7d": (None, 7 * 86400)}
AGE_LABELS = {"": "any age", "1h": "last hour", "1d": "last day", "7d": "last 7 days",
              "older-1d": "older than a day", "older-7d": "older than 7 days"}
STATUS_LABELS = {"open": "open (waiting for a person)", "retried": "retried", "discarded": "discarded",
                 "any": "any status"}
FILTERS = ("operation", "destination", "reason", "age", "q", "status")
PREVIEWED = 50
# A text search walks at most this many letters per page (~2.5 µs each on the server): a page stays fast
# with 100,000 letters, and says how far it looked.
TEXT_SCAN_LIMIT = 20_000


def _filters(source) -> dict[str, str]:
    return {name: (source.get(name) or "").strip() for name in FILTERS}


def query_of(filters: dict[str, str], now: float) -> LetterQuery:
    """The search box finds a key, order_no, artno, transaction_id or event_id exactly when some letter
    has it (a lookup), and any other text as a substring of the letters' text (a walk)."""
    newer, older = AGES.get(filters["age"], (None, None))
    status = filters["status"] if filters["status"] in STATUS_LABELS else "open"
    needle = filters["q"] or None
    identifier = needle if needle and has_identifier(services().relay.dead_letters, needle) else None
    return LetterQuery(operation=filters["operation"] or None, reason=filters["reason"] or None,
                       destination=filters["destination"] or None, text=None if identifier else needle,
                       identifier=identifier, status=status, since=None if newer is None else now - newer,
                       until=None if older is None else now - older)


@bp.get("/dead-letters")
def page():
    s = services()
    filters = _filters(request.args)
    query = query_of(filters, s.now())
    letters = s.relay.dead_letters
    walk = None
    if query.text:  # a text search: walk a bounded stretch, go on from where the last page stopped
        try:
            start = max(0, int(request.args.get("from", "0")))
        except ValueError:
            start = 0
        walk = search_walk(letters, query, start=start, limit=50, scan_limit=TEXT_SCAN_LIMIT)
        found, pager = walk, None
    else:
        pager = Pager(page_number(), None)
        found = search(letters, query, offset=pager.offset, limit=pager.per_page)
        pager = Pager(pager.page, found.total)
    choices = {facet: sorted(letters.facet_counts(facet)) for facet in ("operation", "reason", "destination")}
    more = None
    if walk is not None and walk.next_from is not None:
        more = url_for("dead_letters.page", **{**request.args.to_dict(), "from": walk.next_from})
    return render_template("dead_letters.html", letters=found.letters, pager=pager, walk=walk, more=more,
                           query=query, filters=filters, choices=choices, ages=AGE_LABELS,
                           statuses=STATUS_LABELS, now=s.now(),
                           filtered=any(filters[f] for f in FILTERS if f != "status"))


def _selection(form) -> tuple[list[str], bool, dict[str, str]]:
    """The letters a form names: its ticked ids, or every letter matching its filters."""
    filters = _filters(form)
    if form.get("all_matching") == "1":
        query = query_of(filters, services().now())
        return all_matching_ids(services().relay.dead_letters, query), True, filters
    ids = [i for i in form.getlist("ids") if i]
    return list(dict.fromkeys(ids)), False, filters


@bp.post("/dead-letters/preview")
@operator_only
def preview():
    s = services()
    action = request.form.get("action")
    if action not in ("retry", "discard"):
        abort(400)
    targets, all_matching, filters = _selection(request.form)
    if not targets:
        return render_template("error.html", title="Nothing selected",
                               text="Tick the letters to act on, or choose “all matching”."), 400
    shown = targets[:PREVIEWED]
    if action == "retry":
        dry = [retry_letter(s.tools, t, actor=g.user.name, dry_run=True) for t in shown]
    else:
        dry = None
    return render_template("preview.html", action=action, targets=targets, shown=shown, dry=dry,
                           letters={x.letter_id: x for x in s.relay.dead_letters.get_many(shown)},
                           all_matching=all_matching, filters=filters, back=request.form.get("back", ""))


@bp.post("/dead-letters/act")
@operator_only
def act():
    s = services()
    action = request.form.get("action")
    reason = (request.form.get("why") or "").strip()
    if action not in ("retry", "discard"):
        abort(400)
    if not reason:
        return render_template("error.html", title="A reason is needed",
                               text="Say why (it is kept with the letter and in the event's history). "
                                    "Go back and fill in the reason."), 400
    targets, _, _ = _selection(request.form)
    if not targets:
        return render_template("error.html", title="Nothing selected",
                               text="No open letter matches any more: nothing to do."), 400
    job_id = s.jobs.run(action, g.user.name, targets, reason=reason)  # retry_letter or discard_letter each
    return redirect(url_for("dead_letters.job", job_id=job_id), code=303)


@bp.get("/jobs/<job_id>")
def job(job_id: str):
    found = services().jobs.get(job_id)
    if found is None:
        abort(404)
    return render_template("reports.html", job=found)


@bp.post("/jobs/<job_id>/resume")
@operator_only
def resume(job_id: str):
    """Publish an interrupted (or waiting) job again: a worker goes on from where it stopped."""
    if services().jobs.get(job_id) is None:
        abort(404)
    services().jobs.resume(job_id)
    return redirect(url_for("dead_letters.job", job_id=job_id), code=303)
