"""A delivery the flow gate did not let through (worker.flow.gate): held back without a send and without an
attempt counted, in a state a person can see.

- *later* (the rate limit's next free slot is more than a second away): ``retrying``, in the retry
  schedule for when its slot should be free (spread a little, so that the deferred do not all come back
  at once);
- *park* (its destination is paused or its circuit is open): ``retrying``, parked (worker.flow.parking) —
  released gradually once the destination may be sent to again.

Either way the delivery's retry clock stands still: its attempts and round of attempts are untouched.
"""
from __future__ import annotations

from tasks.events import Delivery
from worker.delivery.relay import Relay
from worker.flow.gate import PARK, Verdict


def hold_back(relay: Relay, delivery: Delivery, verdict: Verdict) -> str:
    """Hold ``delivery`` back as ``verdict`` says; the state it is left in."""
    moved = relay.ledger_of(delivery.destination).transition(
        delivery.operation, delivery.key, "retrying", expected_states=("accepted", "retrying", "waiting"),
        reason=f"{verdict.reason}; not sent, no attempt counted")
    if not moved:
        record = relay.ledger_of(delivery.destination).get(delivery.operation, delivery.key)
        return record.state if record is not None else "accepted"
    if verdict.action == PARK:
        relay.flow.parking(delivery.destination).park(delivery.ref, delivery.task_message())
    else:
        spread = relay.rng.uniform(0.0, max(verdict.wait, 0.1))
        relay.schedule.schedule(delivery.ref, delivery.task_message(), relay.clock() + verdict.wait + spread)
    return "retrying"
