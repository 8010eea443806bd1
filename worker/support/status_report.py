"""What ``wms-relay status`` and the desk's overview report: is anything stuck, and what needs a person?

:func:`collect` reads, in one JSON-ready dict, the queue depths (every destination's queues, and the
messages workers hold unacknowledged), the scheduled retries and the most overdue one, events waiting for
their create, uncertain deliveries, dead letters (count and oldest age), deliveries in the last hour, the
workers alive and the scheduler's last tick (from their heartbeats in the store: no Celery ping, no
Flower); then the same per destination (whether it is on, its ledger's states, delivered in the last hour)
and its flow (``worker.flow``: rate limit, circuit, pause, parked, batches).  Its ``attention`` lists what
needs a person (:func:`needs_a_person`, :func:`flow_attention`), each with one sentence saying what is
wrong and what to do.

A read model: it changes nothing.  The CLI prints it (``worker.commands.status``), the desk shows it
(``worker.web.desk``): one report, two faces."""
from __future__ import annotations

from tasks.raw_messages import REASON as MALFORMED
from worker.destinations.table import DESTINATIONS, QUEUES, WMS_DESTINATION
from worker.encoding import age, iso_time, one_line, shorten
from worker.observe.configuration import RecordedConfiguration, read_configuration
from worker.store.broker_queues import queue_depths, unacked
from worker.store.heartbeats import STALE_AFTER_SECONDS, Heartbeats
from worker.support.catalog import waiting_for_rows

# A retry this late has no scheduler moving it (the scheduler moves due retries within a second).
OVERDUE_AFTER_SECONDS = 60.0
# Under maxmemory-policy noeviction a full Redis refuses writes: new events could not be accepted.
MEMORY_ATTENTION_FRACTION = 0.8
# Every flag ``attention`` may carry, most urgent first (docs/operations.md has one alert rule per flag):
# ``store_down`` is ``status --json``'s when the store does not answer (worker.commands.status); the
# others :func:`needs_a_person` and :func:`flow_attention` raise.
ATTENTION_FLAGS = ("store_down", "no_worker", "no_scheduler", "overdue_retries", "dead_letters", "uncertain",
                   "dispatch_id_unknown", "unmapped", "memory", "configuration_differs", "paused",
                   "circuit_open", "clock_skew")
# Dead letters of events no destination's ledger accepted (so no destination's ``dead`` count holds them),
# by reason, with how people say one: refused at the door, a key another event holds, a raw message.
NEVER_ACCEPTED = {"invalid": ("invalid event", "invalid events"),
                  "conflict": ("key conflict", "key conflicts"),
                  MALFORMED: ("malformed message", "malformed messages")}


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def per_destination(relay, now: float, configuration: RecordedConfiguration,
                    destination: str | None = None) -> dict[str, dict]:
    """Each destination's (or one's): on, off or not known (None) — as the workers recorded it
    (``configuration``), never from this process's settings — its flow (shown unless it is known to be
    off), its ledger's open states, oldest uncertain and dead, delivered in the last hour."""
    found = {}
    for target in DESTINATIONS.values():
        if destination not in (None, target.name):
            continue
        ledger = relay.ledger_of(target.name)
        oldest = {state: ledger.oldest_in_state(state) for state in ("uncertain", "dead")}
        on = True if target is WMS_DESTINATION else configuration.is_on(target.name)
        flow = None if on is False else relay.flow.status(target.name, configuration.limits(target.name))
        found[target.name] = {
            "title": target.title, "on": on, "flow": flow,
            "ledger": ledger.count_by_state(), "delivered_last_hour": ledger.delivered_since(now - 3600),
            **{f"oldest_{state}_age_seconds":
               None if oldest[state] is None else round(now - oldest[state][2], 1) for state in oldest}}
    return found


def collect(place, destination: str | None = None) -> dict:
    """Everything ``status`` reports, as one JSON-ready dict (``destination``: narrowed to it);
    ``attention`` lists what needs a person."""
    import redis  # here, not at the top: the CLI's --help imports this module and needs no Redis client

    relay, now = place.relay, place.relay.clock()
    schedule, letters = relay.schedule, relay.dead_letters
    beats = Heartbeats(relay.redis, relay.clock)
    configuration = read_configuration(relay.redis, relay.clock)
    destinations = per_destination(relay, now, configuration, destination)
    by_state = {state: sum(d["ledger"][state] for d in destinations.values())
                for state in next(iter(destinations.values()))["ledger"]}
    next_due = schedule.next_due()
    ages = [d["oldest_uncertain_age_seconds"] for d in destinations.values()
            if d["oldest_uncertain_age_seconds"] is not None]
    if destination is None:
        dead_count, oldest_dead = letters.count(), letters.oldest_age(now)
        by_reason = {reason: n for reason, (n, _) in letters.open_by("reason", NEVER_ACCEPTED).items()}
    else:
        open_letters = letters.list(destination=destination)
        dead_count = len(open_letters)
        oldest_dead = max((letter.age(now) for letter in open_letters), default=None)
        by_reason = {}
        for letter in open_letters:
            by_reason[letter.reason] = by_reason.get(letter.reason, 0) + 1
    never_accepted = {reason: by_reason[reason] for reason in NEVER_ACCEPTED if by_reason.get(reason)}
    workers = beats.beats("worker")
    ticks = beats.beats("scheduler")
    try:
        memory = relay.redis.info("memory")
    except redis.ResponseError:  # INFO disabled (some managed Redis; fakeredis): memory not known
        memory = {}
    used = int(memory["used_memory"]) if "used_memory" in memory else None
    limit = int(memory.get("maxmemory", 0))
    report = {
        "store": place.store,
        "checked_at": iso_time(now),
        "queues": queue_depths(relay.redis, [q for q in QUEUES if destination in (None, q.split(".")[0])]),
        "in_progress": unacked(relay.redis),
        "scheduled_retries": {
            "count": schedule.count(), "in_flight": schedule.in_flight_count(),
            "next_due_at": iso_time(next_due),
            "next_due_in_seconds": None if next_due is None else round(next_due - now, 1),
            "most_overdue_seconds": None if next_due is None else round(max(0.0, now - next_due), 1)},
        "waiting": by_state["waiting"],
        "uncertain": {"count": by_state["uncertain"], "oldest_age_seconds": max(ages) if ages else None},
        "dead_letters": {"count": dead_count, "oldest_age_seconds": _seconds(oldest_dead),
                         "never_accepted": never_accepted},
        "ledger": by_state,
        "delivered_last_hour": sum(d["delivered_last_hour"] for d in destinations.values()),
        "destinations": destinations,
        "configuration": configuration.to_dict(),
        "workers": [b.name for b in workers if b.age <= STALE_AFTER_SECONDS],
        "worker_heartbeats": [{"name": b.name, "age_seconds": _seconds(b.age),
                               "alive": b.age <= STALE_AFTER_SECONDS} for b in workers],
        "scheduler": {"name": ticks[0].name if ticks else None,
                      "last_tick_at": iso_time(ticks[0].at) if ticks else None,
                      "last_tick_age_seconds": _seconds(ticks[0].age) if ticks else None,
                      "alive": bool(ticks) and ticks[0].age <= STALE_AFTER_SECONDS},
        "redis_memory": {"used_bytes": used, "max_bytes": limit,
                         "used_fraction": round(used / limit, 4) if limit and used is not None else None},
        "dispatch_id_unknown": _unknown_dispatch_ids(relay, destination),
        # Counts waiting for their artno's catalog row (a required catalog), per destination.
        "unmapped": waiting_for_rows(relay, destination),
    }
    report["attention"] = ([{"flag": flag, "message": _say(flag, report)} for flag in needs_a_person(report)]
                           + flow_attention(report))
    return report


def _unknown_dispatch_ids(relay, destination: str | None) -> dict:
    """Shipments whose dispatch.create was delivered without Trademax's dispatch id (a 452 without one),
    and how many of their updates, publishes and deletes wait for a person to record it."""
    if destination not in (None, "trademax"):
        return {"shipments": 0, "waiting": 0, "first": []}
    found = relay.dispatch_waiters.unknown_ids()
    return {"shipments": len(found), "waiting": sum(u.waiting for u in found),
            "first": [{"transaction_id": u.transaction_id, "waiting": u.waiting} for u in found[:5]]}


def flow_attention(report: dict) -> list[dict]:
    """What needs a person in the destinations' flow, one item each (flag ``paused``, ``circuit_open`` or
    ``clock_skew``, with its ``destination``): a pause in force, a circuit not closed (``clock_skew``: open
    because the destination refuses our clock)."""
    items = []
    for name, part in report["destinations"].items():
        flow = part.get("flow") or {}
        if flow.get("paused"):
            items.append({"flag": "paused", "destination": name,
                          "message": f"{part['title']} is paused by {flow['paused']['by']}: "
                                     f"`wms-relay resume {name}` sends to it again."})
        if flow and flow["circuit"].get("fault") == "clock_skew":  # a configuration fault: its own flag
            items.append({"flag": "clock_skew", "destination": name,
                          "message": f"{part['title']} refuses our requests' timestamps: this machine's "
                                     "clock is off "
                                     f"({shorten(flow['circuit']['last_failure'] or '-', 160)}). "
                                     "Fix the clock (NTP) on the worker hosts; deliveries wait without "
                                     "spending attempts, and one probe a minute resumes sending once it is "
                                     "right."})
        elif flow and flow["circuit"]["state"] != "closed":
            items.append({"flag": "circuit_open", "destination": name,
                          "message": f"{part['title']} is failing (circuit {flow['circuit']['state']}): its "
                                     "deliveries wait without spending attempts; check it is up "
                                     "(`wms-relay check`)."})
    return items


def needs_a_person(report: dict) -> list[str]:
    """What needs a person, most urgent first: ``no_worker``, ``no_scheduler``, ``overdue_retries``,
    ``dead_letters``, ``uncertain``, ``dispatch_id_unknown`` (dispatch updates wait for a person to
    record the dispatch id Trademax did not give), ``unmapped`` (counts wait for their artno's catalog
    row), ``memory``, ``configuration_differs`` (live workers recorded different configurations) — the
    CLI says each in words; a desk can link each to its page."""
    needs = []
    if not report["workers"]:
        needs.append("no_worker")
    if not report["scheduler"]["alive"]:
        needs.append("no_scheduler")
    overdue = report["scheduled_retries"]["most_overdue_seconds"]
    if overdue is not None and overdue > OVERDUE_AFTER_SECONDS:
        needs.append("overdue_retries")
    if report["dead_letters"]["count"]:
        needs.append("dead_letters")
    if report["uncertain"]["count"]:
        needs.append("uncertain")
    if report.get("dispatch_id_unknown", {}).get("waiting"):
        needs.append("dispatch_id_unknown")
    if report.get("unmapped"):
        needs.append("unmapped")
    fraction = report["redis_memory"]["used_fraction"]
    if fraction is not None and fraction >= MEMORY_ATTENTION_FRACTION:
        needs.append("memory")
    if report["configuration"]["differences"]:
        needs.append("configuration_differs")
    return needs


def _say(flag: str, report: dict) -> str:
    """One sentence per flag: what is wrong and what to do."""
    if flag == "no_worker":
        seen = report["worker_heartbeats"]
        last = f" (last heartbeat {age(seen[0]['age_seconds'])} ago, {seen[0]['name']})" if seen else ""
        return (f"No worker is alive{last}: events will not move. Start one (`wms-relay worker`) and check "
                "its log.")
    if flag == "no_scheduler":
        tick = report["scheduler"]
        when = (f"has not ticked for {age(tick['last_tick_age_seconds'])}" if tick["name"]
                else "has never ticked")
        return (f"The scheduler {when}: retries and dispatch updates waiting for their create will not be "
                "sent. Start it (`wms-relay scheduler`) and check its log.")
    if flag == "overdue_retries":
        late = age(report["scheduled_retries"]["most_overdue_seconds"])
        return (f"A scheduled retry is {late} overdue: the scheduler is not moving retries. Check that it "
                "runs (`wms-relay health scheduler`) and can reach the store.")
    if flag == "dead_letters":
        return ("Dead letters wait for a person: `wms-relay dead list`, then `dead show ID`, `dead retry ID` "
                "or `dead discard ID --reason ...`.")
    if flag == "uncertain":
        return ("Uncertain deliveries: `wms-relay uncertain list`, check each at its destination, then "
                "`uncertain resolve ID --delivered|--resend --reason ...`.")
    if flag == "configuration_differs":
        differences = report["configuration"]["differences"]
        return (f"Workers run with different configurations ({shorten('; '.join(differences), 300)}): each "
                "event is routed and sent by whichever worker takes it. Give every worker the same settings "
                "and restart them.")
    if flag == "dispatch_id_unknown":
        unknown = report["dispatch_id_unknown"]
        first = unknown["first"][0]["transaction_id"]
        named = ", ".join(one_line(u["transaction_id"]) for u in unknown["first"])
        more = f" and {unknown['shipments'] - len(unknown['first'])} more" \
            if unknown["shipments"] > len(unknown["first"]) else ""
        return (f"{unknown['waiting']} dispatch update(s), publish or delete wait for a dispatch id Trademax "
                f"did not give (its 452 answer had none) — shipment(s) {named}{more}. Find each one's id at "
                f"Trademax, then `wms-relay dispatch set-id {one_line(first)} DISPATCH_ID --reason ...`.")
    if flag == "unmapped":
        return " ".join(
            f"{part['deliveries']} count(s) for {part['title']} wait for their artno's catalog row "
            f"(unmapped), artno(s) {', '.join(one_line(a) for a in part['first_artnos'])}"
            f"{' and more' if part['deliveries'] > len(part['first_artnos']) else ''}: import rows for them "
            f"(`wms-relay catalog import {name} FILE`) and they are sent at once."
            for name, part in report["unmapped"].items())
    memory = report["redis_memory"]
    return (f"Redis uses {memory['used_fraction']:.0%} of its maxmemory ({mib(memory['used_bytes'])} of "
            f"{mib(memory['max_bytes'])}): when full it refuses new events. Raise maxmemory, or purge "
            "closed dead letters (`wms-relay dead purge --closed --older-than 30d`).")


def never_accepted_in_words(counts: dict[str, int]) -> str:
    """``1 invalid event and 2 malformed messages``: the dead letters no destination's ledger holds."""
    parts = [f"{n} {NEVER_ACCEPTED[reason][n != 1]}" for reason, n in counts.items() if n]
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def mib(size: int) -> str:
    """Bytes in MiB, one decimal (``12.3 MiB``)."""
    return f"{size / 1048576:.1f} MiB"
