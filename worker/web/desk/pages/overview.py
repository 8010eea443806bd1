"""The overview: what needs a person (the list ``wms-relay status`` ends with), counts per state and per
destination, and the chart of deliveries and failures per minute."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from worker.web.desk.chart import per_minute_chart
from worker.web.desk.pages import services
from worker.web.desk.services import FINAL_STATES, OPEN_STATES, needs_a_person

bp = Blueprint("overview", __name__)
CHART_HOURS = (1, 3, 6)


@bp.get("/")
def page():
    s = services()
    report = s.status_report()
    try:
        hours = int(request.args.get("hours", "3"))
    except ValueError:
        hours = 3
    hours = hours if hours in CHART_HOURS else 3
    letters = s.relay.dead_letters
    return render_template(
        "overview.html", report=report, needs=needs_a_person(report),
        chart=per_minute_chart(s.relay.ledger.per_minute(), s.now(), hours), chart_hours=CHART_HOURS,
        open_states=OPEN_STATES, final_states=FINAL_STATES, final_totals=s.relay.ledger.final_totals(),
        by_destination=letters.facet_counts("destination"), by_reason=letters.facet_counts("reason"),
        by_operation=letters.facet_counts("operation"))
