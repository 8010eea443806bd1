"""One event as people and scripts read it: for each destination that has a delivery of it, its ledger
record, its dead letter and its scheduled retry, in one JSON-able view.  ``wms-relay event --json`` prints
:func:`describe`; the HTTP ingest's ``GET /v1/events/{operation}/{key}`` answers :func:`without_payload`
of it (what the WMS sent stays in the relay: the WMS has it already, and the view is for following the
event, not reading it back).

The view's top level is the first delivery found (Trademax's, the WMS's own destination, when it has
one: the keys the view had before there were other destinations); ``deliveries`` lists every
destination's, each with its ``destination``."""
from __future__ import annotations

from worker.destinations.table import DESTINATIONS
from worker.encoding import iso_time

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
    else:  # an invalid event: dead-lettered at the door, never in the ledger
        view = {"destination": destination, "operation": operation, "key": key,
                "state": "dead" if letter.status == "open" else letter.status, "attempts": 0,
                "result": None, "history": [], "attempts_log": [], "event": letter.event, "in_ledger": False}
    view["dead_letter"] = letter.to_dict() if letter is not None else None
    view["scheduled_retry"] = None if retry is None else {
        "due_at": iso_time(retry.due_at), "due_in_seconds": round(retry.due_at - relay.clock(), 1),
        "in_flight": retry.in_flight}
    return view


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
