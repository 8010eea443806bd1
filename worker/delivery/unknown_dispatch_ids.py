"""A dispatch.create delivered without Trademax's dispatch id, and the updates, publishes and deletes of
its shipment, which wait for a person to supply it.

After a lost answer the relay sends a create again, and Trademax answers 452 "request duplication (based on
transaction_id value)".  The relay takes the dispatch id from that answer's ``data`` — which the document
never promises.  When it is not there, the create is still ``delivered`` (Trademax has the dispatch), with
the reason "dispatch id unknown", and the shipment is listed (worker.store.dispatch_waiters) for
``wms-relay status``.  Its followers cannot be sent without the id, and waiting for the create (the
dependency wait, which gives up after DEPENDENCY_WAIT_MAX_CHECKS) would only end in dead letters for a
create that is there: they wait with reason ``dispatch_id_unknown``, without a time limit, until a person
records the id (``wms-relay dispatch set-id``, the desk's event page: worker.support.dispatch_ids), which
releases them — each then sent once, by its own claim.

While they wait, each keeps an entry in the retry schedule (a re-check every :data:`RECHECK_SECONDS`: a
safety net; the stranded sweep then sees something moving it) and its registration as a waiter of the
shipment; a re-check that finds the id still unknown writes no new history entry, so a weekend of waiting
does not grow the record.
"""
from __future__ import annotations

from typing import Any, Mapping

from tasks.events import Delivery
from worker.delivery.relay import Relay

WAITING_REASON = "dispatch_id_unknown"
RECHECK_SECONDS = 300.0


def lacks_dispatch_id(delivery: Delivery, result: Mapping[str, Any]) -> bool:
    """A delivered shipment's create (Trademax's dispatch.create: its row ``wakes_dispatch_waiters``) whose
    stored answer has no dispatch id."""
    return delivery.row.wakes_dispatch_waiters and result.get("dispatch_id") in (None, "")


def delivered_reason(delivery: Delivery, duplicate: bool) -> str:
    """The history reason of a create delivered without its id."""
    transaction_id = delivery.fields["transaction_id"]
    answer = ("Trademax answered 452 (request duplication: it has the dispatch) without the dispatch's id"
              if duplicate else "Trademax's answer carried no dispatch_id")
    return (f"delivered; dispatch id unknown: {answer}. Its updates, publish and delete wait until a person "
            f"records the id: wms-relay dispatch set-id {transaction_id} DISPATCH_ID --reason ...")


def waiting_reason(transaction_id: str) -> str:
    return (f"{WAITING_REASON}: dispatch.create of transaction_id {transaction_id} was delivered without "
            "Trademax's dispatch id; waiting for a person to record it (wms-relay dispatch set-id "
            f"{transaction_id} DISPATCH_ID --reason ...)")


def waits_for_dispatch_id(history: Any) -> bool:
    """The record's latest state change is a wait for a person to record the dispatch id."""
    last = list(history or ())[-1:] or [{}]
    return last[0].get("to") == "waiting" and str(last[0].get("reason") or "").startswith(WAITING_REASON)


def wait_for_person(relay: Relay, delivery: Delivery) -> str:
    """Park a follower of a shipment whose dispatch id is unknown: ``waiting`` (once), registered as a
    waiter of the shipment, re-checked every RECHECK_SECONDS."""
    transaction_id = delivery.fields["transaction_id"]
    ledger = relay.ledger_of(delivery.destination)
    record = ledger.get(delivery.operation, delivery.key)
    if not (record is not None and record.state == "waiting" and waits_for_dispatch_id(record.history)):
        ledger.transition(delivery.operation, delivery.key, "waiting",
                          expected_states=("accepted", "retrying", "waiting"),
                          reason=waiting_reason(transaction_id))
    relay.dispatch_waiters.mark_id_unknown(transaction_id, relay.clock())  # listed even if the create's
    # worker stopped before listing it
    ref = delivery.ref
    relay.dispatch_waiters.wait_for(transaction_id, ref)
    relay.schedule.schedule(ref, delivery.task_message(), relay.clock() + RECHECK_SECONDS)
    # The id may have been recorded between the check and the registration: look once more.
    if relay.dispatch_waiters.dispatch_id_for(transaction_id) is not None:
        relay.schedule.run_now([ref])
    return "waiting"
