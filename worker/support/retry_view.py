"""The retry schedule as people read it: each scheduled retry with its destination, operation and key, when
it is due, and what its destination's ledger says of the delivery (state, attempts, the last attempt's
error).  ``wms-relay retries list`` prints it, ``retries run-now --all`` acts on it, the desk's retries
page shows it.  A read model: it changes nothing."""
from __future__ import annotations

from worker.destinations.table import split_delivery_ref
from worker.encoding import iso_time


def scheduled(place, destination: str | None = None, *, offset: int = 0,
              limit: int | None = None) -> list[dict]:
    """Scheduled retries (of ``destination``), soonest first (from ``offset``, at most ``limit``), with
    what its ledger says of each delivery (state, attempts, last error)."""
    return scheduled_page(place, destination, offset=offset, limit=limit)[0]


def scheduled_page(place, destination: str | None = None, *, offset: int = 0,
                   limit: int | None = None) -> tuple[list[dict], int]:
    """:func:`scheduled`, and how many are scheduled in all (of ``destination``).  Only the page's
    deliveries are read from their ledgers (an outage can leave 100,000 entries scheduled)."""
    relay = place.relay
    now = relay.clock()
    # Every destination's: page in the store; one destination's: walk the entries and page after filtering.
    if destination is None:
        total = relay.schedule.count()
        entries = relay.schedule.list(limit=limit, offset=offset)
    else:
        entries = [entry for entry in relay.schedule.list(limit=None)
                   if (ref := split_delivery_ref(entry.ref)) is not None and ref[0].name == destination]
        total = len(entries)
        entries = entries[offset:] if limit is None else entries[offset:offset + limit]
    found = []
    for entry in entries:
        ref = split_delivery_ref(entry.ref)
        if ref is None:
            continue
        target, operation, key = ref
        record = relay.ledger_of(target.name).get(operation, key)
        last = record.attempts_log[-1] if record and record.attempts_log else None
        last_error = None
        if last is not None and last.get("outcome") not in ("delivered", "duplicate"):
            status = f"HTTP {last['status']}" if last.get("status") else None
            last_error = " ".join(str(p) for p in [last.get("outcome"), status, *(last.get("messages") or [])]
                                  if p)
        found.append({"id": entry.ref, "destination": target.name, "operation": operation, "key": key,
                      "due_at": iso_time(entry.due_at), "due_in_seconds": round(entry.due_at - now, 1),
                      "state": record.state if record else None, "attempts": record.attempts if record else 0,
                      "last_error": last_error})
    return found, total
