"""Sentry for wms-relay: started once per process when SENTRY_DSN is set; one report per parked event, and
one per configuration fault that opens a destination's circuit (a clock skew).

What is reported: exactly one event per dead letter or uncertain event (``Observer.parked``/``invalid``
call :func:`report_parked`), tagged with operation, key and state — or, for the events of one request at
a door, one event for them all (:func:`report_parked_together`) — and — through sentry-sdk's Celery
integration — a task that crashed (Redis gone mid-task).  What is not: retries (the pipeline catches
Trademax errors; a task that schedules a retry returns normally, so the Celery integration sees nothing),
and log lines (the logging integration keeps them as breadcrumbs only: otherwise every ERROR line of a
dead letter would be a second report).

What never leaves the process: ``send_default_pii`` is off, frame locals are not sent (a signing frame
holds the secret), and every event and breadcrumb passes :class:`worker.redaction.Scrubber` (the
secret's value, ``signature``/``api_key`` params — an HTTP breadcrumb of a GET/DELETE carries the signed
query — and sensitive keys), then sentry-sdk's own recursive scrubber with ``signature`` added."""
from __future__ import annotations

import logging
import threading
from typing import Any

from worker import __version__
from worker.redaction import Scrubber
from worker.store.connection import store_password
from worker.settings import Settings

_lock = threading.Lock()


def options(settings: Settings, *, celery: bool, transport: Any = None) -> dict:
    """The ``sentry_sdk.init`` keyword arguments for ``settings`` (kept apart so a test can read them)."""
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

    scrubber = Scrubber.from_settings(settings, store_password=store_password(settings))
    integrations: list = [LoggingIntegration(level=logging.INFO, event_level=None)]
    if celery:
        # No trace headers in task messages: messages stay what the WMS contract documents.
        integrations.append(CeleryIntegration(propagate_traces=False))
    return {
        "dsn": settings.sentry_dsn,
        "release": f"wms-relay@{__version__}",
        "send_default_pii": False,
        "include_local_variables": False,
        "max_request_body_size": "never",
        "auto_enabling_integrations": False,
        "integrations": integrations,
        "before_send": lambda event, hint: scrubber.scrub(event),
        "before_breadcrumb": lambda crumb, hint: scrubber.scrub(crumb),
        "event_scrubber": EventScrubber(denylist=[*DEFAULT_DENYLIST, "signature", "trademax_secret"],
                                        recursive=True),
        "transport": transport,
    }


def start(settings: Settings, *, celery: bool = False, transport: Any = None) -> bool:
    """Start Sentry for this process if SENTRY_DSN is set and it is not running yet.  True if running.

    ``celery=True`` in the worker process (before the worker starts: the integration wraps the task
    tracer).  ``transport``: a sentry-sdk Transport class or instance (tests capture events in-process)."""
    if not settings.sentry_dsn:
        return False
    import sentry_sdk

    with _lock:
        if sentry_sdk.get_client().is_active():
            return True
        sentry_sdk.init(**options(settings, celery=celery, transport=transport))
    return True


def stop(timeout: float = 2.0) -> None:
    """Flush and close this process's Sentry client (tests; the atexit hook does it for processes)."""
    import sentry_sdk

    client = sentry_sdk.get_client()
    if client.is_active():
        client.close(timeout=timeout)
    sentry_sdk.get_global_scope().set_client(None)


def report_parked(fields: dict[str, Any]) -> None:
    """One Sentry event for one parked event (a dead letter or an uncertain one)."""
    import sentry_sdk

    if not sentry_sdk.get_client().is_active():
        return
    state, operation, key = fields["state"], fields["operation"], fields["key"]
    destination = fields.get("destination")
    with sentry_sdk.new_scope() as scope:
        if destination:
            scope.set_tag("destination", destination)
        scope.set_tag("operation", operation)
        scope.set_tag("key", key)
        scope.set_tag("state", state)
        if fields.get("dead_letter"):
            scope.set_tag("dead_letter", fields["dead_letter"])
        scope.set_context("event", {**fields, "next_step": _next_step(fields)})
        # One issue per kind of parked event, destination and operation; each event is its own report.
        scope.fingerprint = ["wms-relay", state, destination or "", operation]
        to = f" to {destination}" if destination else ""
        sentry_sdk.capture_message(f"wms-relay {state}: {operation} {key}{to}", level="error")


# How many of the events reported together are named in the report's context (the rest are counted).
NAMED_IN_A_GROUP = 20


def report_parked_together(what: str, parked: list[tuple[str, dict[str, Any]]]) -> None:
    """One Sentry event for the events one request parked at a door: ``parked`` holds (kind, fields) —
    kind ``invalid``, ``conflict``, ``dead``, ``uncertain`` — and ``what`` names the request, e.g.
    "wms-relay ingest POST stock.adjust: 10000 events parked (invalid 10000)"."""
    import sentry_sdk

    if not sentry_sdk.get_client().is_active():
        return
    from collections import Counter

    kinds = Counter(kind for kind, _ in parked)
    operations = sorted({fields["operation"] for _, fields in parked})
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("operation", operations[0] if len(operations) == 1 else "several")
        scope.set_tag("state", "parked")
        scope.set_tag("events", str(len(parked)))
        scope.set_context("events", {
            "request": what, "count": len(parked), "kinds": dict(kinds),
            "first": [{**fields, "kind": kind, "next_step": _next_step(fields)}
                      for kind, fields in parked[:NAMED_IN_A_GROUP]],
            "next_step": "wms-relay dead list" + (f" --operation {operations[0]}" if len(operations) == 1
                                                  else "")})
        # One issue per door and operation, whatever the mix of kinds.
        scope.fingerprint = ["wms-relay", "together", what]
        mix = ", ".join(f"{kind} {n}" for kind, n in kinds.most_common())
        sentry_sdk.capture_message(f"wms-relay {what}: {len(parked)} events parked ({mix})", level="error")


def report_configuration_fault(destination: str, fault: str, message: str) -> None:
    """One Sentry event for a configuration fault that opened a destination's circuit (``clock_skew``):
    reported when the circuit opens for it, not per refused request."""
    import sentry_sdk

    if not sentry_sdk.get_client().is_active():
        return
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("destination", destination)
        scope.set_tag("fault", fault)
        scope.fingerprint = ["wms-relay", "configuration", destination, fault]
        sentry_sdk.capture_message(f"wms-relay configuration fault at {destination}: {message}",
                                   level="error")


def _next_step(fields: dict[str, Any]) -> str:
    if fields.get("dead_letter"):
        return f"wms-relay dead show {fields['dead_letter']}"
    if fields["state"] == "uncertain":
        from worker.destinations.table import destination as destination_named

        target = destination_named(fields.get("destination") or "trademax")
        ref = target.delivery_ref(fields["operation"], fields["key"])
        return f"check {target.title}, then: wms-relay uncertain resolve {ref}"
    return f"wms-relay event {fields['operation']} {fields['key']}"
