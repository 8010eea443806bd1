"""What people see of deliveries: one structured log line per attempt, one report per parked event.

``Observer.attempt`` logs destination, operation, key, attempt, outcome, HTTP status, the destination's
error_code and latency
(JSON when LOG_FORMAT=json).  ``Observer.parked`` (and ``invalid``) is called exactly once when an event
becomes a dead letter or uncertain: it logs at ERROR and, with SENTRY_DSN set, sends one Sentry event
tagged with destination, operation and key (not one per retry: retries are not reported at all).
Within :meth:`Observer.one_report` (a door taking in one request's events: the ingest's POST,
``wms-relay enqueue FILE``) the reports are held and sent as one at the end — a body of 10,000 invalid
items is one Sentry report naming how many, not 10,000; each still logs its own line.

Callers pass WMS fields and the destinations' answers only, never a secret, a signature or a token.  As
a second line of defence, ``worker.redaction.Scrubber`` removes the secrets' values, signatures and
credentials from every log line (``worker.observe.logs``) and every Sentry event
(``worker.observe.sentry``)."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Iterator

from worker.encoding import one_line
from worker.settings import Settings

log = logging.getLogger("wms_relay.attempts")
parked_log = logging.getLogger("wms_relay.parked")
# The reports held by the innermost Observer.one_report of this thread (None: report each at once).
# Values a text line shows as they are (``str`` of them holds no control character).
_NUMBERS = frozenset({int, float})
_held: ContextVar[list | None] = ContextVar("wms_observer_held_reports", default=None)


def _destination(delivery: Any) -> str:
    """The destination a delivery (``tasks.events.Delivery``) goes to; a bare event is the first's."""
    from worker.destinations.table import WMS_DESTINATION

    return getattr(delivery, "destination", None) or WMS_DESTINATION.name


@dataclass
class Observer:
    log_format: str = "text"
    sentry_enabled: bool = False
    # Lets a process that never started Sentry (``wms-relay enqueue`` dead-lettering an invalid event)
    # start it on its first report.
    settings: Settings | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Observer":
        return cls(log_format=settings.log_format, sentry_enabled=bool(settings.sentry_dsn),
                   settings=settings)

    def _line(self, logger: logging.Logger, level: int, message: str, fields: dict[str, Any]) -> None:
        if not logger.isEnabledFor(level):  # a line nobody sees is not formatted (issue 21)
            return
        if self.log_format == "json":  # the fields become top-level keys of the JSON line
            logger.log(level, message, extra=fields)
        else:
            # One line per record, whatever a key holds (worker.encoding); a number or None needs no escaping.
            logger.log(level, "%s %s", message, " ".join(
                f"{k}={'' if v is None else v}" if type(v) in _NUMBERS or v is None else f"{k}={one_line(v)}"
                for k, v in fields.items()))

    def attempt(self, event: Any, attempt: int, outcome: str, *, status: int | None,
                error_code: int | None, latency: float | None) -> None:
        """One line per send attempt: destination, operation, key, attempt, outcome, status, error_code,
        latency_ms; and one count in this process's metrics tally (``worker.observe.metrics``) under the
        delivery's own destination."""
        from worker.observe.metrics import process_tally

        destination = _destination(event)
        process_tally().record(destination, event.operation, outcome, status, latency)
        self._line(log, logging.INFO, "attempt", {
            "destination": destination, "operation": event.operation, "key": event.key,
            "attempt": attempt, "outcome": outcome,
            "status": status, "error_code": error_code,
            "latency_ms": None if latency is None else round(latency * 1000, 1),
        })

    def parked(self, event: Any, state: str, reason: str, *, letter_id: str | None = None,
               kind: str | None = None) -> None:
        """The event became a dead letter or uncertain: a person must act.  Called once per event.
        ``kind``: why, in one word, where reports are counted together (default: ``state``)."""
        fields = {"destination": _destination(event), "operation": event.operation, "key": event.key,
                  "state": state, "reason": reason}
        if letter_id:
            fields["dead_letter"] = letter_id
        self._line(parked_log, logging.ERROR, state, fields)
        self._report(fields, kind or state)

    def invalid(self, operation: str, key: str, reason: str, *, letter_id: str) -> None:
        """An invalid event became a dead letter (never sent)."""
        fields = {"operation": operation, "key": key, "state": "dead", "reason": reason,
                  "dead_letter": letter_id}
        self._line(parked_log, logging.ERROR, "invalid", fields)
        self._report(fields, "invalid")

    @contextmanager
    def one_report(self, what: str) -> Iterator[None]:
        """Within this block (one request at a door: ``what`` says which, e.g. "ingest POST stock.adjust")
        the Sentry reports of :meth:`parked`/:meth:`invalid` are held and sent as one when it ends: the one
        report itself when there was one, else one naming how many of each kind and the first few."""
        held: list[tuple[str, dict[str, Any]]] = []
        token = _held.set(held)
        try:
            yield
        finally:
            _held.reset(token)
            if len(held) == 1:
                self._send(held[0][1])
            elif held:
                self._send(held, what=what)

    def _report(self, fields: dict[str, Any], kind: str) -> None:
        if not self.sentry_enabled:
            return
        held = _held.get()
        if held is not None:
            held.append((kind, fields))
        else:
            self._send(fields)

    def _send(self, report: dict[str, Any] | list[tuple[str, dict[str, Any]]], *, what: str = "") -> None:
        from worker.observe import sentry as sentry_setup

        if self.settings is not None:
            sentry_setup.start(self.settings)  # no-op where Sentry already runs (the worker)
        if isinstance(report, list):
            sentry_setup.report_parked_together(what, report)
        else:
            sentry_setup.report_parked(report)
