"""A destination's products from its catalog: the rows an import adds or changes are sent to it (StockTrim's
``POST /api/Products``: ``productId``, ``productCodeReadable`` = the artno, ``name`` = the title), so the
products its sales orders and stock name exist there with readable names.

A destination that takes products declares ``Destination.product`` (a catalog row -> the request body).
``wms-relay catalog import`` queues the new and changed rows' bodies (:func:`queue_rows`,
worker.store.product_sync: the newest body per product); each worker's flow keeper sends them
(:class:`ProductSender`, a slice per round), every request through the destination's gate like a batch
of counts — paused, circuit open or over its rate: not now; its outcome reported to the circuit.  A
product StockTrim accepted (2xx) leaves the queue; one answered "later" or not at all stays queued and is
sent again next round (setting a product twice is harmless: StockTrim updates it by productId); one
refused (a 4xx) is kept with StockTrim's message under ``refused`` for a person — ``wms-relay catalog show
stocktrim`` lists the counts — until a newer import of the row queues it again.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Iterable

from worker.delivery.relay import Relay
from worker.destinations.table import DESTINATIONS
from worker.errors import DestinationError, PermanentError
from worker.store.product_sync import ProductSync

log = logging.getLogger("wms_relay.flow")

PER_ROUND = 50


def takes_products(destination: str) -> bool:
    return DESTINATIONS[destination].product is not None


def sync_of(relay: Relay, destination: str) -> ProductSync:
    return ProductSync(relay.redis, DESTINATIONS[destination].namespace)


def queue_rows(relay: Relay, destination: str, rows: Iterable[Any]) -> int:
    """Queue the products of catalog ``rows`` (added or changed by an import); how many."""
    if not takes_products(destination):
        return 0
    to_body = DESTINATIONS[destination].product
    bodies = {}
    for row in rows:
        body = to_body(row)
        bodies[body["productId"]] = body
    return sync_of(relay, destination).queue(bodies)


class ProductSender:
    """Sends a destination's queued products, through its gate (one keeper round: :meth:`send_once`)."""

    def __init__(self, relay: Relay, destination: str) -> None:
        self.relay, self.destination = relay, destination
        self.sync = sync_of(relay, destination)
        self.gate = relay.flow.gate(destination)

    def send_once(self, limit: int = PER_ROUND) -> int:
        """Send up to ``limit`` queued products while the gate lets them through; how many were accepted."""
        accepted = 0
        for product_id, body in self.sync.pending(limit):
            verdict = self.gate.admit()
            if not verdict.sends:
                break
            error = None
            try:
                self.relay.client_of(self.destination).set_product(json.loads(body))
            except DestinationError as exc:
                error = exc
            finally:
                self.gate.report(error, ticket=verdict.ticket)
            if error is None:
                accepted += self.sync.sent(product_id, body)
            elif isinstance(error, PermanentError):
                self.sync.refused(product_id, body, str(error), self.relay.clock())
                log.warning("%s refused product %s: %s", DESTINATIONS[self.destination].title, product_id,
                            error)
            else:
                break  # later: the next round sends it again
        return accepted
