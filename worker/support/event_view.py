"""One event as people and scripts read it: for each destination that has a delivery of it, its ledger
record, its dead letter and its scheduled retry, in one JSON-able view.  ``wms-relay event --json`` prints
:func:`describe`; the HTTP ingest's ``GET /v1/events/{operation}/{key}`` answers :func:`without_payload`
of it (what the WMS sent stays in the relay: the WMS has it already, and the view is for following the
event, not reading it back).

The view's top level is the first delivery found (Trademax's, the WMS's own destination, when it has
one: the keys the view had before there were other destinations); ``deliveries`` lists every
destination's, each with its ``destination``.  A delivery whose record was compacted (settled more than
SETTLED_DETAIL_HOURS ago) says so in ``details`` ("details kept 24 h: ...").

Read for a person, the view also says what to do next (:func:`next_step`: retry the letter, resolve the
uncertain delivery, start the worker or scheduler that is missing — :func:`with_liveness` adds who is
alive), and tells the event's story in order (:func:`timeline`: state changes and send attempts
interleaved).  ``wms-relay event`` prints it, the desk's event page shows it."""
from __future__ import annotations

from worker.delivery.catalog_wait import waits_for_row
from worker.destinations.table import DESTINATIONS, destination as destination_named
from worker.encoding import iso_time, one_line
from worker.store.heartbeats import Heartbeats

# The parts of a view that hold the event's own fields (in the view, and in its dead letter).
PAYLOAD_KEYS = ("event",)


def describe(relay, operation: str, key: str, destination: str | None = None) -> dict | None:
    """The view of one event — its deliveries to ``destination``, or to every destination — or None when
    neither a ledger nor the dead letters know it."""
    deliveries = [view for name in DESTINATIONS if destination in (None, name)
                  if (view := describe_delivery(relay, name, operation, key)) is not None]
    if not deliveries:
        return None
    return {**deliveries[0], "deliveries": deliveries}


def describe_delivery(relay, destination: str, operation: str, key: str) -> dict | None:
    """The view of ``destination``'s delivery of one event, or None when it has none."""
    record = relay.ledger_of(destination).get(operation, key)
    letter = relay.dead_letters.latest_for(operation, key, destination)
    retry = relay.schedule.get(DESTINATIONS[destination].delivery_ref(operation, key))
    if record is None and letter is None:
        return None
    if record is not None:
        view = {"destination": destination, **record.to_dict()}
        view["in_ledger"] = True
        if record.compacted:
            view["details"] = details_kept(relay)
    else:  # an invalid event: dead-lettered at the door, never in the ledger
        view = {"destination": destination, "operation": operation, "key": key,
                "state": "dead" if letter.status == "open" else letter.status, "attempts": 0,
                "result": None, "history": [], "attempts_log": [], "event": letter.event, "in_ledger": False}
    view["dead_letter"] = letter.to_dict() if letter is not None else None
    view["scheduled_retry"] = None if retry is None else {
        "due_at": iso_time(retry.due_at), "due_in_seconds": round(retry.due_at - relay.clock(), 1),
        "in_flight": retry.in_flight}
    return view


def details_kept(relay) -> str:
    """What a compacted record's view says of it (worker.store.settled_records)."""
    hours = getattr(getattr(relay, "settings", None), "settled_detail_hours", 24.0)
    return (f"details kept {hours:g} h: it settled longer ago, so only its state, when and how it settled, "
            "its payload's fingerprint and its dispatch id remain")


def without_payload(view: dict) -> dict:
    """The view less the event's fields (in the record and in its dead letter), for every delivery."""
    trimmed = _trimmed(view)
    if "deliveries" in trimmed:
        trimmed["deliveries"] = [_trimmed(delivery) for delivery in trimmed["deliveries"]]
    return trimmed


def _trimmed(view: dict) -> dict:
    trimmed = {k: v for k, v in view.items() if k not in PAYLOAD_KEYS}
    if trimmed.get("dead_letter"):
        trimmed["dead_letter"] = {k: v for k, v in trimmed["dead_letter"].items() if k not in PAYLOAD_KEYS}
    return trimmed


def with_liveness(place, view: dict) -> dict:
    """``view`` with the workers and the scheduler alive now (heartbeats), for the next step to name."""
    beats = Heartbeats(place.relay.redis, place.relay.clock)
    alive = {"workers_alive": [beat.name for beat in beats.alive("worker")],
             "scheduler_alive": bool(beats.alive("scheduler"))}
    deliveries = view.get("deliveries")
    if deliveries is not None:  # every destination's delivery names them too (its own next step)
        return {**view, **alive, "deliveries": [{**d, **alive} for d in deliveries]}
    return {**view, **alive}


def next_step(view: dict) -> str:
    from worker.support.dispatch_ids import unknown_id_of

    state = view["state"]
    shipment = unknown_id_of(view)
    if shipment is not None:
        waits = ("it waits" if state == "waiting"
                 else "its updates, publish and delete wait")
        return (f"find the dispatch id of transaction_id {one_line(shipment)} at Trademax (its 452 answer "
                f"did not give it; {waits} until it is recorded), then `wms-relay dispatch set-id "
                f"{one_line(shipment)} DISPATCH_ID --reason ...`")
    target = destination_named(view.get("destination") or "trademax")
    ref = target.delivery_ref(view["operation"], view["key"])
    artno = unmapped_artno(view)
    if artno is not None:
        return (f"import a row for artno {one_line(artno)} into {target.title}'s catalog (`wms-relay "
                f"catalog import {target.name} FILE`): it waits, unsent, until then, and is sent as soon as "
                "the row is there")
    letter = view.get("dead_letter")
    if state == "dead" and letter and letter["status"] == "open":
        return letter_next_step(letter["id"], letter["reason"])
    if state == "uncertain":
        return (f"check in {target.title} whether it arrived, then `wms-relay uncertain resolve {ref} "
                "--delivered --reason ...` (it is there) or `--resend --reason ...` (it is not)")
    if state in ("retrying", "waiting"):
        if view.get("scheduler_alive") is False:
            return ("start the scheduler (`wms-relay scheduler`): no scheduler is running, so its next try "
                    "will not happen; `wms-relay status` shows what else is stuck")
        return f"nothing; it is retried automatically (to try now: `wms-relay retries run-now {ref}`)"
    if state in ("accepted", "sending"):
        if view.get("workers_alive") == []:
            return ("start a worker (`wms-relay worker`): no worker is running, so nothing will send it; it "
                    "waits on its queue until one does")
        return "nothing; a worker is on it (if it stays like this, see `wms-relay status`)"
    return "nothing: this event is settled"


def unmapped_artno(view: dict) -> str | None:
    """The artno a delivery waits for a catalog row of (``unmapped``: worker.delivery.catalog_wait), or
    None."""
    if view.get("state") != "waiting" or not waits_for_row(view.get("history")):
        return None
    return ((view.get("event") or {}).get("fields") or {}).get("artno")


def letter_next_step(letter_id: str, reason: str) -> str:
    """What to do about an open dead letter: a retry cannot help an invalid or conflicting event."""
    if reason in ("invalid", "conflict"):
        what = "is invalid" if reason == "invalid" else "reuses a key another event already has"
        return (f"the event {what}: retrying cannot help. Fix it in the WMS and send it again (a new key for "
                f"a conflict), then `wms-relay dead discard {letter_id} --reason ...`")
    return (f"read the error above, fix its cause, then `wms-relay dead retry {letter_id}` — or "
            f"`wms-relay dead discard {letter_id} --reason ...`")


def _order(kind: str, item: dict) -> int:
    if kind == "t":
        return 0 if item["to"] == "sending" else 2
    return 1


def timeline(view: dict) -> list[tuple[str, str, dict]]:
    """The event's story in order: (ISO time, ``t`` for a state change or ``a`` for a send attempt, the
    entry).  In one millisecond the claim (→ sending) comes before its attempt, the attempt before what
    followed."""
    entries = [(h["at"] or "", "t", h) for h in view["history"]] + \
              [(a["at"] or "", "a", a) for a in view.get("attempts_log", [])]
    return sorted(entries, key=lambda e: (e[0], _order(e[1], e[2])))
