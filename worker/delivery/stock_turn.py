"""The SKU turn: absolute stock counts of one (warehouse_id, artno) reach a destination in the order they
were counted, one at a time.

A row flagged ``ordered_by_sku`` (``worker.destinations.contract.Operation``: every destination's
``stock.adjust``) has its absolute counts (``type=absolute``) take their SKU's turn before they are sent
(``worker.store.stock_order``, in the destination's namespace: each destination applies its own counts in
order).  Relative adjustments commute and take no turn.

- a count older than the last one recorded for sending is ``superseded``, never sent;
- while another count of the SKU is on the wire this one *waits*: it is not claimed, so no attempt is
  counted and its retry budget (RETRY_MAX_ATTEMPTS, worker.delivery.retry_policy) is untouched; its record
  is ``waiting`` (its story says "waiting for its SKU turn" once, however often it looks; nothing counts it
  as a failure) and it looks again in :data:`RETRY_SECONDS` (:func:`wait`);
- otherwise it holds the turn until its send's outcome is recorded (:func:`let_go`).

The turn is taken before the claim, in the same store call (worker.store.stock_order's ``claim_in_turn``,
in the send steps' take, or :meth:`worker.flow.send_steps.SendSteps.claim` for a count taken unclaimed).
A count waits at most one holder's send: the turn's lock expires by itself (``stock_lock_seconds``: a
send's timeouts and 5 s — 45 s by default), so a holder that died lets go then, and only the newest count
recorded may take the turn next (an older one is superseded).
"""
from __future__ import annotations

from tasks.events import Delivery
from tasks.schemas import stock
from worker.delivery.relay import Relay
from worker.flow.send_steps import SkuTurn
from worker.store.stock_order import StockTurn

# A second absolute count of one SKU looks again this often while the first is being sent.
RETRY_SECONDS = 1.0


def takes_turn(delivery: Delivery) -> bool:
    """Is this delivery an absolute count that takes its SKU's turn?"""
    return delivery.row.ordered_by_sku and delivery.fields.get("type") == stock.ABSOLUTE


def turn_of(delivery: Delivery) -> SkuTurn | None:
    """The turn an absolute count takes (taken with its claim: worker.flow.send_steps), None for any
    other delivery."""
    if not takes_turn(delivery):
        return None
    return SkuTurn(delivery.fields["warehouse_id"], delivery.fields["artno"], delivery.occurred_at)


def after_turn(relay: Relay, delivery: Delivery, owner: str, turn: StockTurn) -> str | None:
    """What becomes of a claimed count with the SKU's answer (taken with its claim: worker.flow.send_steps;
    a count whose turn was busy was not claimed — :func:`wait`): None when the turn is this delivery's,
    else ``superseded``.

    The count is recorded as the latest *before* it may go out: once sent, a count may be applied even if
    no answer comes back (read timeout) or its worker dies mid-send, and an older count arriving after that
    must be superseded, not applied over it (the chaos run found both).  A count that waited for its turn
    was recorded so too: an older one arriving meanwhile is superseded by it — stale either way.  So
    nothing is left to record once it is delivered: the caller lets go of the turn."""
    if turn.verdict == "superseded":
        relay.ledger_of(delivery.destination).transition(
            delivery.operation, delivery.key, "superseded", owner=owner,
            reason=f"a newer absolute value (occurred_at {turn.detail}) was sent")
        return "superseded"
    return None


def wait(relay: Relay, delivery: Delivery) -> str:
    """A count that found its SKU's turn busy: the store call that asked moved it to ``waiting``, unclaimed
    (no attempt spent); it looks again in :data:`RETRY_SECONDS`."""
    relay.schedule.schedule(delivery.ref, delivery.task_message(), relay.clock() + RETRY_SECONDS)
    return "waiting"


def let_go(relay: Relay, delivery: Delivery, owner: str) -> None:
    """Give the SKU's turn back (the send's outcome is recorded)."""
    relay.stock_order_of(delivery.destination).release(delivery.fields["warehouse_id"],
                                                       delivery.fields["artno"], owner)
