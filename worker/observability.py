"""What people see of deliveries: one structured log line per attempt, one report per parked event.

``Observer.attempt`` logs operation, key, attempt, outcome, HTTP status, Trademax error_code and latency
(JSON when LOG_FORMAT=json).  ``Observer.parked`` is called exactly once when an event becomes a dead
letter or uncertain: it logs at ERROR and, with SENTRY_DSN set, sends one Sentry event (not one per retry).
Nothing here ever receives the secret or a signature: callers pass WMS fields and Trademax's answers only."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from worker.settings import Settings

log = logging.getLogger("wms_relay.attempts")
parked_log = logging.getLogger("wms_relay.parked")


@dataclass
class Observer:
    log_format: str = "text"
    sentry_enabled: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "Observer":
        return cls(log_format=settings.log_format, sentry_enabled=bool(settings.sentry_dsn))

    def _line(self, logger: logging.Logger, level: int, message: str, fields: dict[str, Any]) -> None:
        if self.log_format == "json":
            logger.log(level, json.dumps({"msg": message, **fields}, default=str, sort_keys=True))
        else:
            logger.log(level, "%s %s", message, " ".join(f"{k}={v}" for k, v in fields.items()))

    def attempt(self, event: Any, attempt: int, outcome: str, *, status: int | None,
                error_code: int | None, latency: float | None) -> None:
        self._line(log, logging.INFO, "attempt", {
            "operation": event.operation, "key": event.key, "attempt": attempt, "outcome": outcome,
            "status": status, "error_code": error_code,
            "latency_ms": None if latency is None else round(latency * 1000, 1),
        })

    def parked(self, event: Any, state: str, reason: str, *, letter_id: str | None = None) -> None:
        fields = {"operation": event.operation, "key": event.key, "state": state, "reason": reason}
        if letter_id:
            fields["dead_letter"] = letter_id
        self._line(parked_log, logging.ERROR, state, fields)
        if self.sentry_enabled:
            _report_to_sentry(fields)

    def invalid(self, operation: str, key: str, reason: str, *, letter_id: str) -> None:
        fields = {"operation": operation, "key": key, "state": "dead", "reason": reason, "dead_letter": letter_id}
        self._line(parked_log, logging.ERROR, "invalid", fields)
        if self.sentry_enabled:
            _report_to_sentry(fields)


def _report_to_sentry(fields: dict[str, Any]) -> None:
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        scope.set_tag("operation", fields["operation"])
        scope.set_tag("key", fields["key"])
        scope.set_tag("state", fields["state"])
        scope.set_context("event", fields)
        sentry_sdk.capture_message(f"wms-relay {fields['state']}: {fields['operation']} {fields['key']}",
                                   level="error")
