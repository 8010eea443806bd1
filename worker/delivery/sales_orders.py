"""Sales orders at delivery: a dispatch that becomes final is handed to its destination's sender as
final — its lines merged from its create and updates, each with its catalog row — once per shipment, and
read back first where an earlier answer was lost.

A row flagged ``makes_sales_order`` (``worker.destinations.contract.Operation``: StockTrim's
``dispatch.create``, ``dispatch.update``, ``dispatch.publish``, ``vendor_dispatch.create``) goes through here:

1. **Noting lines.** The WMS destination's run notes each dispatch event's lines as it fans the event out
   (:func:`note`, worker.store.dispatch_lines): a publish that carries no lines still knows its draft's.
2. **Before the claim** (:func:`prepare`): the lines of the dispatch as final — a create's own; a publish's
   or publishing update's: the noted lines (the create's, overlaid by each update's, newest per
   ``line_no``) overlaid by its own.  A publish whose create was not noted yet waits for it (re-checked
   every :data:`CREATE_RECHECK_SECONDS`).  Each artno's catalog row: where the catalog is ``required`` and
   an artno has none, the delivery waits ``unmapped`` (worker.delivery.catalog_wait), as a count does.
   Nothing to send — no product lines (a vendor dispatch names none), a warehouse the destination has no
   location for, or a shipment whose sales order another delivery already makes (a dispatch published
   twice) — settles the delivery ``delivered`` with the reason in its history, nothing sent.
3. **After the claim** (:func:`after_claim`): whether an earlier attempt's answer was lost — its attempt
   log holds an ``outcome_unknown``, or the claim was taken over from a worker that stopped mid-send (now,
   or at any earlier attempt: its history keeps the take-over; ``worker.delivery.lost_answers``).  Then
   the sender reads the destination back before sending (``FinalDispatch.read_back_first``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from tasks.events import Delivery, DeliveryEvent
from worker.delivery import catalog_wait
from worker.delivery.lost_answers import earlier_attempt_may_have_landed
from worker.delivery.relay import Relay
from worker.destinations.shipments import FinalDispatch, ShippedLine, merged_lines, reference
from worker.destinations.table import DESTINATIONS, configured

NOTED = ("dispatch.create", "dispatch.update", "dispatch.publish")
CREATE_RECHECK_SECONDS = 5.0
WAITING_FOR_CREATE = "waiting for its dispatch.create"


@dataclass(frozen=True)
class NothingToSend:
    reason: str


def makes(row: Any) -> bool:
    return row is not None and row.makes_sales_order


def _sales_destinations(relay: Relay) -> list[str]:
    return [d.name for d in configured(relay.settings) if any(row.makes_sales_order for row in d.operations)
            and _on(relay, d)]


def _on(relay: Relay, destination) -> bool:
    name = f"{destination.declaration.prefix}_SALES_ORDERS"
    try:
        return relay.settings.destination(destination.name).value(name) == "on"
    except KeyError:
        return True


def _seconds(occurred_at: str) -> float:
    return datetime.fromisoformat(occurred_at.replace("Z", "+00:00")).timestamp()


def note(relay: Relay, event: DeliveryEvent) -> None:
    """Note a dispatch event's lines and warehouse for every destination that makes sales orders (the
    fan-out calls it for each WMS event it takes in)."""
    if event.operation not in NOTED:
        return
    for name in _sales_destinations(relay):
        relay.dispatch_lines_of(name).note(
            event.fields["transaction_id"], event.fields.get("warehouse_id"), _seconds(event.occurred_at),
            event.fields.get("products") or (), created=event.operation == "dispatch.create")


def prepare(relay: Relay, delivery: Delivery) -> FinalDispatch | NothingToSend | str:
    """The dispatch as final; or what settles it with nothing sent; or the state it waits in (a str)."""
    fields, destination = delivery.fields, delivery.destination
    if (delivery.operation, fields.get("draft")) in (("dispatch.create", True), ("dispatch.update", None),
                                                     ("dispatch.update", True)):
        return NothingToSend(f"nothing sent: the {delivery.operation} leaves the dispatch a draft (no sale "
                             "yet)")  # routed only when final; a task pushed onto the queue by hand is not
    transaction_id = fields.get("transaction_id")
    if not transaction_id:
        return NothingToSend(f"nothing sent: a {delivery.operation} names no product lines (the WMS sends "
                             "none), so it makes no sales order")
    lines_store = relay.dispatch_lines_of(destination)
    own = fields.get("products") or []
    if delivery.operation == "dispatch.create":
        lines, warehouse = merged_lines([], own), fields.get("warehouse_id")
    else:
        noted = lines_store.noted(transaction_id)
        if noted is None or not noted["created"]:
            return _wait_for_create(relay, delivery)
        lines = merged_lines(noted["lines"], own)
        warehouse = fields.get("warehouse_id") or noted["warehouse_id"]
    title = DESTINATIONS[destination].title
    if warehouse not in relay.settings.destination(destination).locations:
        return NothingToSend(f"nothing sent: warehouse {warehouse} has no {title} location "
                             f"({DESTINATIONS[destination].declaration.prefix}_LOCATIONS)")
    if not lines:
        return NothingToSend(f"nothing sent: dispatch {transaction_id} has no product lines")
    owner = lines_store.claim_sale(transaction_id, delivery.ref)
    if owner != delivery.ref:
        return NothingToSend(f"nothing sent: shipment {transaction_id}'s sales order is {owner}'s (the "
                             "dispatch became final twice in the WMS's stream)")
    rows = catalog_wait.rows_of(relay, destination, [line["artno"] for line in lines])
    lacking = [line["artno"] for line in lines if line["artno"] not in rows]
    if lacking:
        return catalog_wait.wait_for_row(relay, delivery, artno=lacking[0])
    record = relay.ledger_of(destination).get(delivery.operation, delivery.key)
    if record is not None:
        catalog_wait.found_row(relay, delivery, record.state)
    shipped = tuple(ShippedLine(reference(transaction_id, line["line_no"]), line["line_no"], line["artno"],
                                line["quantity"], rows[line["artno"]]) for line in lines)
    return FinalDispatch(transaction_id, warehouse, delivery.occurred_at, shipped)


def _wait_for_create(relay: Relay, delivery: Delivery) -> str:
    ledger = relay.ledger_of(delivery.destination)
    record = ledger.get(delivery.operation, delivery.key)
    if record is None or record.state != "waiting":
        ledger.transition(delivery.operation, delivery.key, "waiting",
                          expected_states=("accepted", "retrying", "waiting"),
                          reason=f"{WAITING_FOR_CREATE} {delivery.fields['transaction_id']} (the draft's "
                                 f"lines); looked again every {CREATE_RECHECK_SECONDS:g} s")
    relay.schedule.schedule(delivery.ref, delivery.task_message(), relay.clock() + CREATE_RECHECK_SECONDS)
    return "waiting"


def after_claim(relay: Relay, delivery: Delivery, prepared: FinalDispatch | NothingToSend, claim: Any,
                owner: str) -> tuple[FinalDispatch | None, str | None]:
    """With the claim taken: settle a delivery with nothing to send (its state), or the dispatch to send,
    ``read_back_first`` when an earlier answer was lost."""
    ledger = relay.ledger_of(delivery.destination)
    if isinstance(prepared, NothingToSend):
        ledger.transition(delivery.operation, delivery.key, "delivered", owner=owner,
                          result={"sales_order": None, "why": prepared.reason}, reason=prepared.reason)
        return None, "delivered"
    # Any earlier attempt, not only the one just before: a claim taken over from a worker that died
    # mid-send stays a lost answer after the attempt that took it over failed (a 500 on the read back is
    # retried), though the attempt log has no entry for the dead worker's send — the history's
    # sending -> sending step says so (the chaos run once stored a line twice so).
    lost = bool(claim.interrupted)
    if not lost and claim.attempt > 1:
        record = ledger.get(delivery.operation, delivery.key)
        lost = record is not None and earlier_attempt_may_have_landed(record.history, record.attempts_log)
    return (replace(prepared, read_back_first=True) if lost else prepared), None
