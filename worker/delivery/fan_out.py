"""Fan-out: one WMS event becomes one delivery per destination that takes it.

The first destination's run (the task the WMS publishes) calls :func:`fan_out` before it sends: every
other destination that is on and takes the event (``worker.destinations.table.routes``) gets the event
accepted in its own ledger — a state-changing store call with a request id, so a resend after a store
timeout replays its reply (``worker.store.requests``) — and its own task message on its own queue
(``<destination>.<operation>`` on ``<destination>.<resource>``).  If the broker refuses the message, the
delivery is left in the retry schedule, due now: the scheduler publishes it.  Whatever takes WMS events
in (the task path, and any other door) fans out through here, so every door routes alike.
"""
from __future__ import annotations

import logging

from tasks.events import Delivery, DeliveryEvent
from worker.delivery.rejections import reject_conflict
from worker.delivery.relay import Relay
from worker.destinations.table import routes

log = logging.getLogger("wms_relay.delivery")


def fan_out(relay: Relay, event: DeliveryEvent) -> list[str]:
    """Give every other destination that takes ``event`` its own delivery: accepted in its ledger, then
    its task published (or, if the broker refuses, left in the retry schedule, due now).  Idempotent: a
    delivery already known is published again only while it is still ``accepted`` (its first message may
    have been lost with a worker killed in between; a spare copy is harmless — its claim sends it once).
    Returns the destinations whose delivery was queued by this call."""
    queued = []
    for row in routes(event, relay.settings)[1:]:
        delivery = Delivery(row, event)
        accepted = relay.ledger_of(row.destination).accept(event)
        if accepted.conflict:
            reject_conflict(relay, delivery, accepted)
        elif accepted.state == "accepted":
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
