"""Reading Trademax back when it refuses a resend: did an earlier, unanswered attempt land after all?

Two dispatch operations are one-way.  Publishing a published dispatch and deleting a deleted draft are
errors at Trademax, so when the first attempt was applied but its answer was lost (a read timeout, a worker
killed mid-send), the resend is refused — and without a look at Trademax that refusal would become a dead
letter for a change that landed.  Here the pipeline reads the dispatch back instead:

=====================  ==========================================  =======================================
operation              landed when                                  otherwise
=====================  ==========================================  =======================================
``dispatch.publish``   ``GET dispatch/{id}`` answers ``draft``      the refusal stands (dead letter)
                       false
``dispatch.delete``    ``GET dispatch/{id}`` answers 404            the refusal stands (dead letter)
=====================  ==========================================  =======================================

Only for an event one of whose earlier attempts may have landed (:func:`earlier_attempt_may_have_landed`):
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


def _published(client: TrademaxClient, dispatch_id: Any) -> Reading:
    reply = client.get_dispatch(dispatch_id)
    data = reply.data if isinstance(reply.data, dict) else {}
    if data.get("draft") is False:
        result = {name: data[name] for name in ("dispatch_id", "tracking_code", "draft") if name in data}
        return Reading(LANDED, f"Trademax shows dispatch {dispatch_id} published",
                       {**result, "read_back": True})
    return Reading(NOT_LANDED, f"Trademax shows dispatch {dispatch_id} with draft={data.get('draft')!r}")


def _deleted(client: TrademaxClient, dispatch_id: Any) -> Reading:
    try:
        reply = client.get_dispatch(dispatch_id)
    except PermanentError as exc:
        if exc.status == 404:
            return Reading(LANDED, f"Trademax no longer has dispatch {dispatch_id} (404)",
                           {"dispatch_id": dispatch_id, "deleted": True, "read_back": True})
        raise
    draft = reply.data.get("draft") if isinstance(reply.data, dict) else None
    return Reading(NOT_LANDED, f"Trademax still has dispatch {dispatch_id} (draft={draft!r})")


CHECKS: dict[str, Callable[[TrademaxClient, Any], Reading]] = {
    "dispatch.publish": _published,
    "dispatch.delete": _deleted,
}


def has_read_back(operation: str) -> bool:
    return operation in CHECKS


def taken_over(history: Any) -> bool:
    """A send was taken over after its worker died or lost the store mid-send: a ``sending`` →
    ``sending`` step in the event's history."""
    return any(step.get("from") == "sending" and step.get("to") == "sending" for step in history or ())


def earlier_attempt_may_have_landed(history: Any, attempts_log: Any) -> bool:
    """An earlier attempt went unanswered: a read timeout (outcome ``outcome_unknown``) or a send
    :func:`taken_over`."""
    if any(entry.get("outcome") == "outcome_unknown" for entry in attempts_log or ()):
        return True
    return taken_over(history)


def read_back(client: TrademaxClient, operation: str, dispatch_id: Any) -> Reading:
    """Ask Trademax whether ``operation`` on ``dispatch_id`` has taken effect."""
    try:
        return CHECKS[operation](client, dispatch_id)
    except TrademaxError as exc:
        return Reading(UNREADABLE, f"could not read dispatch {dispatch_id} back: {exc}")
