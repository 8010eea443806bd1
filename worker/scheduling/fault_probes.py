"""The scheduler's part in a configuration fault (a clock skew, worker.flow.circuit): once a minute by the
scheduler's own clock it grants the faulted circuit of each destination one probe, which a worker's flow
keeper sends.  Not the worker's clock: the fault may be exactly that a worker's clock is wrong — a worker
600 s behind the scheduler made "retry in a minute" due at once, hundreds of signed requests a minute."""
from __future__ import annotations

from typing import Callable

from worker.destinations.table import configured
from worker.flow.circuit import FAULT_PROBE_SECONDS


def fault_probe_grants(relay, scheduler: str, *, every: float = FAULT_PROBE_SECONDS) -> Callable[[], int]:
    """A scheduler housekeeping job: grant each faulted circuit's next probe when this scheduler (named
    ``scheduler``) last granted one ``every`` seconds ago; returns how many it granted."""

    def grant() -> int:
        return sum(relay.flow.gate(target.name).circuit.grant_fault_probe(scheduler, every=every)
                   for target in configured(relay.settings))

    return grant
