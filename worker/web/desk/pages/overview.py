"""The overview: what needs a person (the list ``wms-relay status`` ends with, flow control's pauses and
circuits included), each destination — on or off as the workers recorded it, and its flow in one line, as
``status`` says it — counts per state and per destination, and the chart of deliveries and failures per
minute — every destination's deliveries together (each destination keeps its own counts in its own
ledger)."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from worker.web.desk.chart import per_minute_chart
from worker.web.desk.pages import services
from worker.web.desk.services import FINAL_STATES, OPEN_STATES, configuration_line, flow_line, report_now

bp = Blueprint("overview", __name__)
CHART_HOURS = (1, 3, 6)


def _every_ledger(relay):
    from worker.destinations.table import DESTINATIONS

    return [relay.ledger_of(name) for name in DESTINATIONS]


def per_minute(relay) -> dict[int, tuple[int, int]]:
    """Unix minute -> (deliveries, failures), every destination's added up."""
    found: dict[int, tuple[int, int]] = {}
    for ledger in _every_ledger(relay):
        for minute, (delivered, failed) in ledger.per_minute().items():
            before = found.get(minute, (0, 0))
            found[minute] = (before[0] + delivered, before[1] + failed)
    return found


def final_totals(relay) -> dict[str, int]:
    totals: dict[str, int] = {}
    for ledger in _every_ledger(relay):
        for state, count in ledger.final_totals().items():
            totals[state] = totals.get(state, 0) + count
    return totals


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
    flows = {name: flow_line(part["flow"], now=report_now(report))
             for name, part in report["destinations"].items() if part["flow"] is not None}
    return render_template(
        "overview.html", report=report, flows=flows,
        configuration=configuration_line(report["configuration"]),
        chart=per_minute_chart(per_minute(s.relay), s.now(), hours), chart_hours=CHART_HOURS,
        open_states=OPEN_STATES, final_states=FINAL_STATES, final_totals=final_totals(s.relay),
        by_destination=letters.facet_counts("destination"), by_reason=letters.facet_counts("reason"),
        by_operation=letters.facet_counts("operation"))
