"""The status report (``worker.support.status_report``) said in words where the CLI and the desk say it
alike: one destination's flow in one line, whose recorded configuration the report shows."""
from __future__ import annotations

from datetime import datetime

from worker.encoding import age, iso_time, shorten


def report_now(report: dict) -> float:
    """When the report was made (Unix seconds)."""
    return datetime.fromisoformat(report["checked_at"].replace("Z", "+00:00")).timestamp()


def flow_line(flow: dict, *, now: float) -> str:
    """One destination's flow in one line: ``rate 1/s (now 0.9/s); circuit closed; not paused; ...``."""
    rate = (f"rate {flow['max_rps']:g}/s" if flow["max_rps"] else "rate unlimited"
            if flow.get("limits_known", True) else "rate limit not recorded")
    parts = [f"{rate} (now {flow['current_rps']:g}/s)"]
    if flow["held_for_seconds"]:
        parts.append(f"held {age(flow['held_for_seconds'])} (Retry-After)")
    circuit = flow["circuit"]
    if circuit["state"] == "closed":
        failing = f", {circuit['failures']} failure(s) in a row" if circuit["failures"] else ""
        parts.append(f"circuit closed{failing}")
    else:
        probe = circuit["probe_at"]
        when = "now" if probe is None or probe <= now else f"in {age(probe - now)}"
        when = "within a minute, as the scheduler grants it" if circuit.get("fault") else when
        parts.append(f"circuit {circuit['state'].replace('_', '-')} since {iso_time(circuit['opened_at'])} "
                     f"(next probe {when}; last failure: {shorten(circuit['last_failure'] or '-', 80)})")
    pause = flow["paused"]
    if pause:
        end = f"until {iso_time(pause['until'])}" if pause["until"] else "until resumed"
        parts.append(f"PAUSED {end} by {pause['by']}: {shorten(pause['reason'], 80)}")
    if flow["parked"]:
        parts.append(f"{flow['parked']} parked")
    batching = flow["batching"]
    if batching is not None:
        flight = batching["in_flight"]
        out = f", batch of {flight['size']} in flight" if flight else ""
        size = (f"batches of <= {batching['max']} every {batching['seconds']:g} s" if batching["max"]
                else "batches (size not recorded)")
        parts.append(f"{size}: {batching['pending']} pending{out}")
    return "; ".join(parts)


def configuration_line(configuration: dict) -> str:
    """Whose recorded configuration the report shows (which destinations are on, their limits), and how
    old it is."""
    if configuration["recorded_by"] is None:
        return ("no worker has recorded its configuration yet: which destinations are on, and their limits, "
                "are not known (?) until a worker runs")
    when = f"recorded by {configuration['recorded_by']} {age(configuration['age_seconds'])} ago"
    if configuration["stale"]:
        return f"{when}; no worker is alive now, so it may have changed since"
    alive = sum(worker["alive"] for worker in configuration["workers"])
    if configuration["differences"]:
        return f"{when}; the {alive} live workers DISAGREE:"
    return when + (f" (the {alive} live workers agree)" if alive > 1 else "")
