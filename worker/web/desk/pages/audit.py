"""The audit page: every person's action (CLI and desk), newest first, filterable by person, action, text
and age; paged by the stream's own ids."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from worker.web.desk.pages import services
from worker.web.desk.services import AuditFilter

bp = Blueprint("audit", __name__)
ACTIONS = ("retry", "discard", "resolve-delivered", "resolve-resend", "run-now", "discard-retry", "sign-in",
           "sign-in-locked", "sign-out")
SINCE = {"": None, "1h": 3600, "1d": 86400, "7d": 7 * 86400, "30d": 30 * 86400}


@bp.get("/audit")
def page():
    s = services()
    args = {name: (request.args.get(name) or "").strip()
            for name in ("actor", "action", "q", "since", "before")}
    since = SINCE.get(args["since"])
    which = AuditFilter(actor=args["actor"] or None, action=args["action"] or None, text=args["q"] or None,
                        since=None if since is None else s.now() - since)
    try:
        entries, older = s.tools.audit.page(which, before=args["before"] or None, limit=50)
    except ValueError as exc:  # a hand-made ?before= (the "older" link always holds an entry id)
        return render_template("error.html", title="This page address could not be used",
                               text=f"before={exc}. Open the audit page from its first page and page on "
                                    "with its Older link."), 400
    newer_args = {k: v for k, v in args.items() if v and k != "before"}
    return render_template("audit.html", entries=entries, older=older, args=args, actions=ACTIONS,
                           since_choices=SINCE, newer_args=newer_args)
