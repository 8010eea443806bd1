"""Fault injection for the sandbox: what goes wrong with a request, drawn from a seeded random.Random.

Per API request (never for ``/_sandbox/`` paths) the injector adds ``latency_ms`` and draws one number
``r`` in [0, 1):

- ``r < fail_rate``                                → ``server_error``: 500 / error_code 500, not applied;
- next ``throttle_rate``                           → ``throttle``: 429 with ``Retry-After: 1``, not applied;
- next ``timeout_after_apply_rate``                → ``stall``: applied, then the answer waits
  ``stall_seconds`` (past the client's read timeout: the ambiguous case);
- otherwise                                        → no fault.

A switch (0 off, 1 on) changes what one API answers rather than drawing anything:

- ``duplicate_without_data`` (Trademax)             → ``duplicate_without_data``: a 452 "request
  duplication" answer carries an empty ``data`` (the document never promises the original record, and so
  its id, there); applied as usual, only the answer's data is left out.
- ``initiated_fewer`` (ka-ching)                    → ``initiated_fewer``: an import's last value is not
  parsed — not applied, listed under ``failed`` — and "Import of N stock value(s) initiated" counts the
  others (what ka-ching says of a value it cannot parse is not documented; the count is).

The plan can change at run time (``POST /_sandbox/faults``) so a test can make the sandbox fail "for a
while" and then recover.  Thread-safe; with one seed and one request order the draws repeat exactly.
"""
from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

SERVER_ERROR = "server_error"
THROTTLE = "throttle"
STALL = "stall"
DUPLICATE_WITHOUT_DATA = "duplicate_without_data"
INITIATED_FEWER = "initiated_fewer"
RETRY_AFTER_SECONDS = 1
_RATES = ("fail_rate", "throttle_rate", "timeout_after_apply_rate")
_SWITCHES = (DUPLICATE_WITHOUT_DATA, INITIATED_FEWER)


@dataclass(frozen=True)
class FaultPlan:
    """How often and how badly the sandbox misbehaves.  Rates are fractions of API requests."""

    latency_ms: float = 0.0
    fail_rate: float = 0.0
    throttle_rate: float = 0.0
    timeout_after_apply_rate: float = 0.0
    stall_seconds: float = 35.0
    duplicate_without_data: float = 0.0  # a switch: 1 on, 0 off
    initiated_fewer: float = 0.0  # a switch: 1 on, 0 off

    def __post_init__(self) -> None:
        for name in _RATES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        for name in _SWITCHES:
            if getattr(self, name) not in (0, 1):
                raise ValueError(f"{name} is a switch: 1 (on) or 0 (off), got {getattr(self, name)!r}")
        if sum(getattr(self, name) for name in _RATES) > 1.0 + 1e-9:
            raise ValueError("fail_rate + throttle_rate + timeout_after_apply_rate must not exceed 1")
        if self.latency_ms < 0 or self.stall_seconds < 0:
            raise ValueError("latency_ms and stall_seconds must not be negative")

    def updated(self, changes: Mapping[str, Any]) -> "FaultPlan":
        """A copy with ``changes`` applied; unknown names and non-numbers raise ValueError."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
        values = {}
        for name, value in changes.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number, got {value!r}")
            values[name] = float(value)
        return replace(self, **values)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Fault:
    """What happens to one request: ``kind`` is None or one of SERVER_ERROR, THROTTLE, STALL."""

    kind: str | None
    latency_seconds: float
    stall_seconds: float = 0.0


class FaultInjector:
    """Draws a :class:`Fault` per API request from the current plan and a seeded generator."""

    def __init__(self, plan: FaultPlan, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._plan = plan
        self._random = random.Random(seed)

    @property
    def plan(self) -> FaultPlan:
        with self._lock:
            return self._plan

    def update(self, changes: Mapping[str, Any]) -> FaultPlan:
        with self._lock:
            self._plan = self._plan.updated(changes)
            return self._plan

    def reset(self, plan: FaultPlan, seed: int | None) -> None:
        with self._lock:
            self._plan = plan
            self._random = random.Random(seed)

    def draw(self) -> Fault:
        with self._lock:
            plan, r = self._plan, self._random.random()
        latency = plan.latency_ms / 1000.0
        threshold = plan.fail_rate
        if r < threshold:
            return Fault(SERVER_ERROR, latency)
        threshold += plan.throttle_rate
        if r < threshold:
            return Fault(THROTTLE, latency)
        threshold += plan.timeout_after_apply_rate
        if r < threshold:
            return Fault(STALL, latency, plan.stall_seconds)
        return Fault(None, latency)
