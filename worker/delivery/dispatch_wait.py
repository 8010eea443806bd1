"""The dispatch wait: a change to a shipment waits for the delivery of the shipment's create.

Trademax names a dispatch by the ``dispatch_id`` it gave the create; the WMS names it by its
``transaction_id``.  A row flagged ``needs_dispatch_id`` (``worker.destinations.contract.Operation``:
Trademax's dispatch update, publish and delete) is sent only once the delivered create's record holds the
dispatch_id (``worker.store.dispatch_waiters``).  Until then the delivery is ``waiting`` — a dependency
wait, not a failure: re-checked every ``DEPENDENCY_WAIT_SECONDS``, at most ``DEPENDENCY_WAIT_MAX_CHECKS``
times per round (then a ``dependency_timeout`` dead letter) — or, when the create was delivered without
Trademax's dispatch id, until a person records it (``worker.delivery.unknown_dispatch_ids``).  A row
flagged ``wakes_dispatch_waiters`` (the create) runs the waiting deliveries as soon as it is delivered
(taken with its recording: :func:`waiters_key`; or :func:`wake_waiters`).
"""
from __future__ import annotations

from typing import Any

from tasks.events import Delivery
from worker.delivery import unknown_dispatch_ids
from worker.delivery.failures import dead
from worker.delivery.relay import Relay


def waits(row: Any) -> bool:
    """Does a delivery by ``row`` need its shipment's dispatch_id first?"""
    return row is not None and row.needs_dispatch_id


def dispatch_id_of(relay: Relay, delivery: Delivery) -> Any:
    """The dispatch_id of the shipment ``delivery`` names, or None while its create is not delivered."""
    return relay.dispatch_waiters.dispatch_id_for(delivery.fields["transaction_id"])


def waits_this_round(history) -> int:
    """Dependency checks since the event was accepted or a person last reopened it (both enter
    ``accepted``): a retried dependency_timeout dead letter gets a full set of checks again."""
    checks = 0
    for entry in history:
        if entry.get("to") == "accepted":
            checks = 0
        elif entry.get("to") == "waiting":
            checks += 1
    return checks


def wait_for_create(relay: Relay, delivery: Delivery) -> str:
    """Park ``delivery`` ``waiting`` for its shipment's create (re-checked later, woken when the create
    is delivered), or a dead letter once the checks of this round are used up; for a create delivered
    without its dispatch id, ``waiting`` for a person (worker.delivery.unknown_dispatch_ids)."""
    transaction_id = delivery.fields["transaction_id"]
    if relay.dispatch_waiters.id_unknown(transaction_id):  # delivered without an id: a person supplies it
        return unknown_dispatch_ids.wait_for_person(relay, delivery)
    ledger = relay.ledger_of(delivery.destination)
    record = ledger.get(delivery.operation, delivery.key)
    checks = waits_this_round(record.history if record else ())
    if checks >= relay.settings.dependency_wait_max_checks:
        return dead(relay, delivery, None, reason="dependency_timeout",
                    detail=f"dispatch.create for transaction_id {transaction_id} was not delivered "
                           f"after {checks} checks", exc=None)
    ledger.transition(delivery.operation, delivery.key, "waiting",
                      expected_states=("accepted", "retrying", "waiting"),
                      reason=f"waiting for dispatch.create of transaction_id {transaction_id} "
                             f"(check {checks + 1})")
    ref = delivery.ref
    relay.dispatch_waiters.wait_for(transaction_id, ref)
    relay.schedule.schedule(ref, delivery.task_message(),
                            relay.clock() + relay.settings.dependency_wait_seconds)
    # The create may have landed between the check and the registration: look once more.
    if relay.dispatch_waiters.dispatch_id_for(transaction_id) is not None:
        relay.schedule.run_now([ref])
    return "waiting"


def waiters_key(relay: Relay, delivery: Delivery) -> str | None:
    """The store key of the deliveries waiting for this shipment, if ``delivery``'s row wakes them (a
    shipment's create: the delivered step takes them with its recording, worker.flow.send_steps)."""
    if not delivery.row.wakes_dispatch_waiters:
        return None
    return relay.dispatch_waiters.waiters_key(delivery.fields["transaction_id"])


def wake_waiters(relay: Relay, delivery: Delivery, *, id_unknown: bool = False) -> None:
    """``delivery`` was delivered: if its row wakes dispatch waiters (a shipment's create), the
    deliveries waiting for its dispatch_id run now.  ``id_unknown``: its answer carried no dispatch id
    (worker.delivery.unknown_dispatch_ids) — the shipment is listed so, and its waiters, run now, wait for
    a person to record the id."""
    if not delivery.row.wakes_dispatch_waiters:
        return
    transaction_id = delivery.fields["transaction_id"]
    if id_unknown:
        relay.dispatch_waiters.mark_id_unknown(transaction_id, relay.clock())
    waiters = relay.dispatch_waiters.take_waiters(transaction_id)
    if waiters:
        relay.schedule.run_now(waiters)
