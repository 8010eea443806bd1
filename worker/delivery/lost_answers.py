"""Whether an earlier attempt of a delivery may have landed although its answer was lost: the question a
destination asks before it resends something that must not count twice.

A destination never saw our bookkeeping; only the delivery's ledger record knows that an earlier send went
unanswered (its attempt log) or was cut off mid-send (its history).  Two callers ask it, for different
destinations, so it lives here and not in either one's package:

- a refused resend of a one-way Trademax dispatch change is read back before it becomes a dead letter
  (``worker.delivery.failures``, ``worker.destinations.trademax.read_back``);
- a StockTrim sales order is read back first and only its missing lines are sent
  (``worker.delivery.sales_orders``, ``FinalDispatch.read_back_first``).

A first attempt, or one after only answered failures, needs no read: nothing of it can have landed unseen.
Pure: it reads the record's ``history`` and ``attempts_log`` (``worker.store.records.EventRecord``).
"""
from __future__ import annotations

from typing import Any


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
