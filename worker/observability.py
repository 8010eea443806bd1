"""What people see of deliveries: one structured log line per attempt, one report per parked event.

``Observer.attempt`` logs operation, key, attempt, outcome, HTTP status, Trademax error_code and latency
(JSON when LOG_FORMAT=json).  ``Observer.parked`` (and ``invalid``) is called exactly once when an event
becomes a dead letter or uncertain: it logs at ERROR and, with SENTRY_DSN set, sends one Sentry event
tagged with operation and key (not one per retry: retries are not reported at all).

Callers pass WMS fields and Trademax's answers only, never the secret or a signature.  As a second line of
defence, :class:`Scrubber` removes the secret's value, signatures and credentials from every log line
(``worker.logging_setup``) and every Sentry event (``worker.sentry_setup``)."""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import quote, quote_plus, urlsplit

from worker.settings import Settings

log = logging.getLogger("wms_relay.attempts")
parked_log = logging.getLogger("wms_relay.parked")

FILTERED = "[Filtered]"
# Mapping keys whose values never leave the process, at any depth (compared lower-case).
SENSITIVE_KEYS = frozenset({"signature", "api_key", "secret", "trademax_secret", "trademax_api_key",
                            "password", "authorization", "flower_basic_auth", "x-wms-signature",
                            "ingest_hmac_secrets"})
# ``signature=abc`` in a query string or a log line, and ``"signature": "abc"`` in JSON text.
_PARAM = re.compile(r"(?i)\b(signature|api_key|trademax_secret|secret)(=|%3D)[^&\s'\"]*")
_JSON_FIELD = re.compile(r'(?i)("(?:signature|api_key|trademax_secret|secret)"\s*:\s*")[^"]*(")')
# An ingest bearer token (``wmsr_`` + 43 URL-safe characters), and whatever follows ``Bearer``.
_TOKEN = re.compile(r"(?i)\b(?:bearer\s+[A-Za-z0-9._~+/=-]{8,}|wmsr_[A-Za-z0-9_-]{8,})")


class Scrubber:
    """Removes known secret values (in plain and URL-encoded form), signature/api_key parameters and
    sensitive mapping keys from text and nested data.  Pure: built from values, no I/O."""

    def __init__(self, secret_values: Iterable[str]) -> None:
        variants = set()
        for value in secret_values:
            if value and len(value) >= 4:  # a 1-3 character "secret" would blank half of every line
                variants.update({value, quote(value, safe=""), quote_plus(value)})
        self._values = sorted(variants, key=len, reverse=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Scrubber":
        """The Trademax secret, the Redis password, Flower's passwords and the ingest's HMAC secrets.
        (The api key is public — it travels in every request — and is removed where it appears as
        ``api_key``, not by value; ingest tokens are known here by their shape only.)"""
        values = [settings.trademax_secret]
        values += [pair.partition(":")[2] for pair in (settings.ingest_hmac_secrets or "").split(",")]
        if settings.redis_url:
            values.append(urlsplit(settings.redis_url).password or "")
        for pair in (settings.flower_basic_auth or "").split(","):
            values.append(pair.partition(":")[2])
        return cls(values)

    def text(self, value: str) -> str:
        for secret in self._values:
            if secret in value:
                value = value.replace(secret, FILTERED)
        if "=" in value or "%3D" in value or "%3d" in value:
            value = _PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}{FILTERED}", value)
        if '"' in value:
            value = _JSON_FIELD.sub(lambda m: f"{m.group(1)}{FILTERED}{m.group(2)}", value)
        if "wmsr_" in value or "earer" in value or "EARER" in value:
            value = _TOKEN.sub(FILTERED, value)
        return value

    def scrub(self, value: Any) -> Any:
        """A copy of ``value`` (dicts, lists, tuples, text) with every secret removed."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: FILTERED if isinstance(k, str) and k.lower() in SENSITIVE_KEYS else self.scrub(v)
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub(v) for v in value)
        return value


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
        if self.log_format == "json":
            logger.log(level, json.dumps({"msg": message, **fields}, default=str, sort_keys=True))
        else:
            logger.log(level, "%s %s", message, " ".join(f"{k}={v}" for k, v in fields.items()))

    def attempt(self, event: Any, attempt: int, outcome: str, *, status: int | None,
                error_code: int | None, latency: float | None) -> None:
        """One line per send attempt: operation, key, attempt, outcome, status, error_code, latency_ms."""
        self._line(log, logging.INFO, "attempt", {
            "operation": event.operation, "key": event.key, "attempt": attempt, "outcome": outcome,
            "status": status, "error_code": error_code,
            "latency_ms": None if latency is None else round(latency * 1000, 1),
        })

    def parked(self, event: Any, state: str, reason: str, *, letter_id: str | None = None) -> None:
        """The event became a dead letter or uncertain: a person must act.  Called once per event."""
        fields = {"operation": event.operation, "key": event.key, "state": state, "reason": reason}
        if letter_id:
            fields["dead_letter"] = letter_id
        self._line(parked_log, logging.ERROR, state, fields)
        self._report(fields)

    def invalid(self, operation: str, key: str, reason: str, *, letter_id: str) -> None:
        """An invalid event became a dead letter (never sent)."""
        fields = {"operation": operation, "key": key, "state": "dead", "reason": reason,
                  "dead_letter": letter_id}
        self._line(parked_log, logging.ERROR, "invalid", fields)
        self._report(fields)

    def _report(self, fields: dict[str, Any]) -> None:
        if not self.sentry_enabled:
            return
        from worker import sentry_setup

        if self.settings is not None:
            sentry_setup.start(self.settings)  # no-op where Sentry already runs (the worker)
        sentry_setup.report_parked(fields)
