"""The destinations' configuration as the workers run it, recorded in the store with each heartbeat — so
``wms-relay status``, the desk and ``wms-relay metrics``, which run with only the store configured, say
which destinations are on and with what flow limits from what the workers recorded, never from the
caller's environment variables.

What a worker records (:func:`configuration_of`) is a whitelist, built field by field — never a settings
dump with secrets filtered out: per destination ``on``, ``locations`` (WMS warehouse → the destination's
location), ``batched`` and the flow limits ``max_rps``, ``probe_seconds``, ``circuit_failures``,
``circuit_window_seconds``, ``batch_max``, ``batch_seconds``; and the worker's ``version``.  No base URL
(one may carry credentials), no credential, no other setting.  ``tests/integration/test_secret_leaks.py``
reads it back from the store with every secret set.

What a reader makes of the records (:func:`read_configuration` → :class:`RecordedConfiguration`): the
*current* configuration is the newest record of a live worker (heartbeat younger than
``STALE_AFTER_SECONDS``); with no live worker, the newest record of any, marked *stale* with its age (it
may have changed since); with none ever recorded, nothing is known and readers say so.  Live workers whose
records differ *disagree*: :meth:`RecordedConfiguration.differences` says where, one sentence each, and
``status`` flags it (``configuration_differs``) — events would be routed by whichever worker took them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from worker import __version__
from worker.destinations.table import DESTINATIONS, WMS_DESTINATION
from worker.settings import FlowLimits
from worker.store.heartbeats import STALE_AFTER_SECONDS, Heartbeats

ROLE = "worker"
# The flow limits recorded per destination: FlowLimits' fields, by name (worker.settings).
FLOW_FIELDS = ("max_rps", "probe_seconds", "circuit_failures", "circuit_window_seconds", "batch_max",
               "batch_seconds")


def configuration_of(settings: Any) -> dict:
    """What a worker with ``settings`` records (the module docstring's whitelist)."""
    destinations = {}
    for name, target in DESTINATIONS.items():
        limits = settings.flow_of(name)
        locations = getattr(settings, f"{name}_locations", None)  # None: it does not route by warehouse
        destinations[name] = {
            "on": target is WMS_DESTINATION or bool(target.is_on(settings)),
            "locations": {str(warehouse): str(location) for warehouse, location in locations.pairs}
            if locations is not None else None,
            "batched": target.batch is not None and limits.batched,
            **{field: getattr(limits, field) for field in FLOW_FIELDS},
        }
    return {"version": __version__, "destinations": destinations}


def recorded_text(settings: Any) -> str:
    """:func:`configuration_of` as the heartbeat stores it (compact JSON, keys sorted: equal
    configurations are equal texts)."""
    return json.dumps(configuration_of(settings), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class WorkerRecord:
    """One worker's record: its node name, the record's age in seconds, whether the worker is alive."""

    node: str
    age: float
    alive: bool
    configuration: dict

    def destination(self, name: str) -> dict | None:
        found = self.configuration.get("destinations", {}).get(name)
        return found if isinstance(found, dict) else None


@dataclass(frozen=True)
class RecordedConfiguration:
    """Every worker's record, newest first (see the module docstring for what counts)."""

    records: tuple[WorkerRecord, ...]

    @property
    def current(self) -> WorkerRecord | None:
        """The newest live worker's record; with none alive the newest of all; None when none exists."""
        alive = [record for record in self.records if record.alive]
        return (alive or list(self.records) or [None])[0]

    @property
    def stale(self) -> bool:
        """A configuration is known, but no worker that recorded it is alive now."""
        return self.current is not None and not self.current.alive

    def is_on(self, name: str) -> bool | None:
        """Is destination ``name`` on, as the current record says (None: not known)?"""
        found = self.current.destination(name) if self.current else None
        return None if found is None else bool(found.get("on"))

    def limits(self, name: str) -> FlowLimits | None:
        """Destination ``name``'s flow limits, as the current record says (None: not known)."""
        found = self.current.destination(name) if self.current else None
        if found is None:
            return None
        try:
            return FlowLimits(**{field: found[field] for field in FLOW_FIELDS})
        except (KeyError, TypeError):  # a record of another version, without one of them
            return None

    def distinct_alive(self) -> int:
        """How many different destination configurations the live workers run with (0: none alive)."""
        return len({json.dumps(record.configuration.get("destinations"), sort_keys=True)
                    for record in self.records if record.alive})

    def differences(self) -> list[str]:
        """Where live workers' records differ: one sentence per destination and field
        (``ka-ching on: yes at relay-1@a; no at relay-2@b``, workers in name order)."""
        alive = sorted((record for record in self.records if record.alive), key=lambda record: record.node)
        found = []
        for name, target in DESTINATIONS.items():
            parts = [record.destination(name) or {} for record in alive]
            for field in ("on", "locations", "batched", *FLOW_FIELDS):
                values = [part.get(field) for part in parts]
                if len({json.dumps(value, sort_keys=True) for value in values}) > 1:
                    said = [f"{_said(value)} at {record.node}" for record, value in zip(alive, values)]
                    found.append(f"{target.title} {field}: {'; '.join(said)}")
        return found

    def to_dict(self) -> dict:
        """What ``status --json`` shows of it (``configuration``)."""
        current = self.current
        return {
            "recorded_by": current.node if current else None,
            "age_seconds": round(current.age, 1) if current else None,
            "stale": self.stale,
            "version": current.configuration.get("version") if current else None,
            "workers": [{"node": r.node, "age_seconds": round(r.age, 1), "alive": r.alive,
                         "version": r.configuration.get("version")} for r in self.records],
            "differences": self.differences(),
        }


def _said(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "none"
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def read_configuration(redis_client, clock) -> RecordedConfiguration:
    """The workers' records in the store (a record that is not JSON is left out: nothing to read)."""
    beats = Heartbeats(redis_client, clock)
    alive = {beat.name for beat in beats.alive(ROLE)}
    records = []
    for recorded in beats.configurations(ROLE):
        try:
            configuration = json.loads(recorded.configuration)
        except ValueError:
            continue
        if isinstance(configuration, dict):
            records.append(WorkerRecord(recorded.name, recorded.age,
                                        recorded.name in alive and recorded.age <= STALE_AFTER_SECONDS,
                                        configuration))
    return RecordedConfiguration(tuple(records))
