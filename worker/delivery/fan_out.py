"""Fan-out: one WMS event becomes one delivery per destination that takes it.

The first destination's run (the task the WMS publishes) calls :func:`fan_out` before it sends: every
other destination that is on and takes the event (``worker.destinations.table.routes``) gets the event
accepted in its own ledger — a state-changing store call with a request id, so a resend after a store
timeout replays its reply (``worker.store.requests``) — and its own task message on its own queue
(``<destination>.<operation>`` on ``<destination>.<resource>``) — or, for a bulk destination that batches
(docs/flow-control.md), its place among that destination's pending counts.  If the broker refuses the
message, the delivery is left in the retry schedule, due now: the scheduler publishes it.  Whatever takes
WMS events in (the task path, and any other door) fans out through here, so every door routes alike.
"""
from __future__ import annotations

import logging

from tasks.events import Delivery, DeliveryEvent
from worker.delivery import sales_orders
from worker.delivery.batch_delivery import add_to_batch
from worker.delivery.rejections import reject_conflict
from worker.delivery.relay import Relay
from worker.destinations.table import routes

log = logging.getLogger("wms_relay.delivery")


def fan_out(relay: Relay, event: DeliveryEvent) -> list[str]:
    """Give every other destination that takes ``event`` its own delivery: accepted in its ledger, then
    its task published (or, if the broker refuses, left in the retry schedule, due now).  Idempotent: a
    delivery already known is published again only while it is still ``accepted`` (its first message may
    have been lost with a worker killed in between; a spare copy is harmless — its claim sends it once).
    Returns the destinations whose delivery was queued by this call.  A dispatch event's lines are noted first
    (worker.delivery.sales_orders): the sales order its shipment makes when it becomes final needs them."""
    queued = []
    sales_orders.note(relay, event)  # a dispatch's lines, for the sales order its publish makes
    for row in routes(event, relay.settings)[1:]:
        delivery = Delivery(row, event)
        accepted = relay.ledger_of(row.destination).accept(event)
        if accepted.conflict:
            reject_conflict(relay, delivery, accepted)
        elif accepted.state == "accepted":
            if row.batchable and relay.flow.batched(row.destination):
                add_to_batch(relay, delivery, accepted)  # a bulk destination's count waits in its batch
            else:
                _queue(relay, delivery)
            queued.append(row.destination)
    return queued


def _queue(relay: Relay, delivery: Delivery) -> None:
    message = delivery.task_message()
    if relay.publish is not None:
        try:
            relay.publish(message)
            return
        except Exception as exc:  # noqa: BLE001 — any broker failure: the durable schedule takes it
            log.warning("could not publish %s (%s: %s); the scheduler will", delivery.ref, type(exc).__name__,
                        exc)
    relay.schedule.schedule(delivery.ref, message, relay.clock())
