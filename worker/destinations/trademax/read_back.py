"""Reading Trademax back when it refuses a resend: did an earlier, unanswered attempt land after all?

Some dispatch changes are one-way.  Every change to a published dispatch and deleting a deleted draft are
errors at Trademax ("This route will return an error for published dispatches"), so when the first
attempt of a publishing change was applied but its answer was lost (a read timeout, a worker killed
mid-send), the resend is refused — and without a look at Trademax that refusal would become a dead letter
for a change that landed.  Here the pipeline reads the dispatch back instead:

======================  ==========================================  =======================================
operation               landed when                                  otherwise
======================  ==========================================  =======================================
``dispatch.publish``    ``GET dispatch/{id}`` answers ``draft``      the refusal stands (dead letter)
                        false
``dispatch.update``     ``GET dispatch/{id}`` answers ``draft``      the refusal stands (dead letter)
with ``draft: false``   false and holds every package the update
                        names (its ``package_id``)
``dispatch.delete``     ``GET dispatch/{id}`` answers 404            the refusal stands (dead letter)
======================  ==========================================  =======================================

An update that keeps the draft (``draft`` true, or left out: the client sends true) is not one-way: its
resend is accepted again, so it has nothing to read back; if such an update is refused because the
dispatch was published meanwhile (a ``dispatch.publish`` of the shipment went first), the refusal is
Trademax's word: a dead letter with its message ("dispatch is published"), for a person to look at.

Only for an event one of whose earlier attempts may have landed (``worker.delivery.lost_answers``):
a refusal on a first attempt is Trademax's word, never second-guessed.  A read that itself fails
(a 5xx, a timeout) decides nothing: the caller retries the event later.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from worker.errors import PermanentError, TrademaxError
from worker.destinations.trademax.client import TrademaxClient

LANDED, NOT_LANDED, UNREADABLE = "landed", "not_landed", "unreadable"
DESTINATION = "trademax"  # whose deliveries are read back


@dataclass(frozen=True)
class Reading:
    """What the read-back found: ``verdict`` is LANDED, NOT_LANDED or UNREADABLE; ``detail`` says why in
    words for the event's history; ``result`` is what the ledger keeps for a landed event."""

    verdict: str
    detail: str
    result: Mapping[str, Any] | None = None


def _published(client: TrademaxClient, dispatch_id: Any, fields: Mapping[str, Any]) -> Reading:
    data = _dispatch(client, dispatch_id)
    if data.get("draft") is False:
        return _landed_published(dispatch_id, data)
    return Reading(NOT_LANDED, f"Trademax shows dispatch {dispatch_id} with draft={data.get('draft')!r}")


def _updated_and_published(client: TrademaxClient, dispatch_id: Any, fields: Mapping[str, Any]) -> Reading:
    """A publishing update landed if the dispatch is published and holds the update's packages (a
    dispatch.publish of the same shipment alone would not have added them)."""
    data = _dispatch(client, dispatch_id)
    if data.get("draft") is not False:
        return Reading(NOT_LANDED, f"Trademax shows dispatch {dispatch_id} with draft={data.get('draft')!r}")
    held = {str(p.get("package_id")) for p in data.get("packages") or () if isinstance(p, dict)}
    missing = [str(p.get("package_id")) for p in fields.get("packages") or ()
               if str(p.get("package_id")) not in held]
    if missing:
        return Reading(NOT_LANDED, f"Trademax shows dispatch {dispatch_id} published without package(s) "
                                   f"{', '.join(missing)} of this update")
    return _landed_published(dispatch_id, data)


def _dispatch(client: TrademaxClient, dispatch_id: Any) -> dict:
    data = client.get_dispatch(dispatch_id).data
    return data if isinstance(data, dict) else {}


def _landed_published(dispatch_id: Any, data: Mapping[str, Any]) -> Reading:
    result = {name: data[name] for name in ("dispatch_id", "tracking_code", "draft") if name in data}
    return Reading(LANDED, f"Trademax shows dispatch {dispatch_id} published", {**result, "read_back": True})


def _deleted(client: TrademaxClient, dispatch_id: Any, fields: Mapping[str, Any]) -> Reading:
    try:
        reply = client.get_dispatch(dispatch_id)
    except PermanentError as exc:
        if exc.status == 404:
            return Reading(LANDED, f"Trademax no longer has dispatch {dispatch_id} (404)",
                           {"dispatch_id": dispatch_id, "deleted": True, "read_back": True})
        raise
    draft = reply.data.get("draft") if isinstance(reply.data, dict) else None
    return Reading(NOT_LANDED, f"Trademax still has dispatch {dispatch_id} (draft={draft!r})")


CHECKS: dict[str, Callable[[TrademaxClient, Any, Mapping[str, Any]], Reading]] = {
    "dispatch.publish": _published,
    "dispatch.update": _updated_and_published,
    "dispatch.delete": _deleted,
}


def has_read_back(operation: str, fields: Mapping[str, Any] | None = None) -> bool:
    """Whether a refused resend of ``operation`` (with these event ``fields``) is read back: a publish, a
    delete, and an update that publishes (``draft: false``)."""
    if operation == "dispatch.update":
        return (fields or {}).get("draft") is False
    return operation in CHECKS


def read_back(client: TrademaxClient, operation: str, dispatch_id: Any,
              fields: Mapping[str, Any] | None = None) -> Reading:
    """Ask Trademax whether ``operation`` (with the event's ``fields``) on ``dispatch_id`` has taken
    effect."""
    try:
        return CHECKS[operation](client, dispatch_id, fields or {})
    except TrademaxError as exc:
        return Reading(UNREADABLE, f"could not read dispatch {dispatch_id} back: {exc}")
