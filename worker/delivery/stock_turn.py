"""The SKU turn: absolute stock counts of one (warehouse_id, artno) reach a destination in the order they
were counted, one at a time.

A row flagged ``ordered_by_sku`` (``worker.destinations.contract.Operation``: every destination's
``stock.adjust``) has its absolute counts (``type=absolute``) take their SKU's turn before they are sent
(``worker.store.stock_order``, in the destination's namespace: each destination applies its own counts in
order).  Relative adjustments commute and take no turn.

- a count older than the last one recorded for sending is ``superseded``, never sent;
- while another count of the SKU is on the wire this one is retried in :data:`RETRY_SECONDS`;
- otherwise it holds the turn until its send's outcome is recorded (:func:`let_go`).
"""
from __future__ import annotations

from tasks.events import Delivery
from tasks.schemas import stock
from worker.delivery.failures import retry_later
from worker.delivery.relay import Relay
from worker.flow.send_steps import SkuTurn
from worker.store.stock_order import StockTurn

# A second absolute count of one SKU waits this long for the first to finish sending.
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


def take(relay: Relay, delivery: Delivery, owner: str) -> str | None:
    """Take the turn to send an absolute count: None when taken (send it, then :func:`let_go`), else the
    state it ended in (``superseded``, or ``retrying`` while another count of the SKU is on the wire).

    The count is recorded as the SKU's latest *before* it may go out, then the turn is taken: once sent,
    a count may be applied even if no answer comes back (read timeout) or its worker dies mid-send, and an
    older count arriving after that must be superseded, not applied over it (the chaos run found both).
    If another count holds the turn, this one waits and is sent later (or superseded, if a newer one came
    meanwhile); an older count arriving in between is superseded by it — stale either way.  So nothing is
    left to record once it is delivered: the caller lets go of the turn."""
    warehouse_id, artno = delivery.fields["warehouse_id"], delivery.fields["artno"]
    order = relay.stock_order_of(delivery.destination)  # each destination applies its counts in order
    # Recorded as the latest unless a newer one is, then the turn taken: one store call.
    turn = order.take_turn(warehouse_id, artno, delivery.occurred_at, owner)
    return after_turn(relay, delivery, owner, turn)


def after_turn(relay: Relay, delivery: Delivery, owner: str, turn: StockTurn) -> str | None:
    """What :func:`take` does with the SKU's answer (taken in the send steps' script, or alone): None when
    the turn is this delivery's, else the state it ended in."""
    if turn.verdict == "superseded":
        relay.ledger_of(delivery.destination).transition(
            delivery.operation, delivery.key, "superseded", owner=owner,
            reason=f"a newer absolute value (occurred_at {turn.detail}) was sent")
        return "superseded"
    if turn.verdict == "busy":
        return retry_later(relay, delivery, owner, RETRY_SECONDS,
                           reason="another count of this SKU is being sent")
    return None


def let_go(relay: Relay, delivery: Delivery, owner: str) -> None:
    """Give the SKU's turn back (the send's outcome is recorded)."""
    relay.stock_order_of(delivery.destination).release(delivery.fields["warehouse_id"],
                                                       delivery.fields["artno"], owner)
