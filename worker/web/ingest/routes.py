"""The ingest door's routes: POST events, GET one event's state, the OpenAPI document, the health check.

    POST /v1/events/{operation}         one event, a JSON array of events, or JSON lines
                                        (``?dry_run=true``: judged, nothing written: delivery.dry_run)
    GET  /v1/events/{operation}/{key}   the event's state and history (``wms-relay event --json``, less
                                        the payload)
    GET  /openapi.json                  the contract, generated from the schemas that validate
    GET  /healthz                       the store answers and the credentials can be read; counts of
                                        refused credentials

Every event goes through ``worker.delivery.admission.take_in_all`` — the code ``wms-relay enqueue`` runs —
and is answered on its own: ``{"index", "key", "state", "status", "note"}`` plus ``errors`` (field path →
messages) when it was invalid. The response's status is the events' common one (202 admitted, 422 invalid,
409 conflict); 207 when they differ; 503 with Retry-After as soon as one could not be admitted
because the store did not answer (send those again: admitted ones are recognised by their key).
A dry run answers 200 for a valid event (422 and 409 as above) and says ``"dry_run": true``.
Every request is logged once, with its X-Request-ID (``worker.web.request_log``).
"""
from __future__ import annotations

import logging
from collections import Counter

from flask import Blueprint, Response, current_app, g, jsonify, request

from tasks.events import OPERATIONS
from worker.delivery.admission import STORE_UNREACHABLE, read_events, take_in_all
from worker.delivery.dry_run import check_all
from worker.support.event_view import describe, without_payload
from worker.web.ingest.auth import Refusal
from worker.web.request_log import note

log = logging.getLogger("wms_relay.ingest")

RETRY_AFTER_SECONDS = 5
STATUS = {"queued": 202, "queued_again": 202, "settled": 202, "invalid": 422, "conflict": 409,
          "store_down": 503, "not_tried": 503, "valid": 200, "known": 200}  # the last two: dry runs
# What a body may be.  Form encoding (curl -d without a Content-Type) is refused with a hint.
JSON_TYPES = ("application/json", "application/x-ndjson", "application/jsonl", "application/json-seq")

blueprint = Blueprint("ingest", __name__)


def door():
    """The running app's Ingest (settings, relay, doorkeeper, counters)."""
    return current_app.extensions["wms_relay_ingest"]


def problem(status: int, error: str, message: str, **extra) -> Response:
    answer = jsonify({"error": error, "message": message, **extra})
    answer.status_code = status
    if status == 503:
        answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return answer


def _admit_caller(operation: str | None) -> Response | None:
    """Check the request's credentials (and scope); None when it may go on.  Reads the body only for a
    signed request, so an unauthenticated caller cannot make the door read megabytes."""
    keeper = door().keeper
    body = request.get_data(cache=True) if keeper.needs_body(request.headers) else None
    found = keeper.identify(request.method, request.path, request.headers, body)
    if isinstance(found, Refusal):
        door().count_refusal(found.reason)
        note(reason=found.reason)  # on the request's log line (a WARNING), never the credential
        answer = problem(401, found.reason, found.message)
        answer.headers["WWW-Authenticate"] = 'Bearer realm="wms-relay ingest"'
        return answer
    g.caller = found
    if operation is not None and not found.allows(operation):
        door().count_refusal("forbidden_operation")
        note(reason="forbidden_operation", operation=operation)
        return problem(403, "forbidden_operation",
                       f"Client {found.client} may not send {operation} events (its token names the "
                       "operations it may use).")
    return None


def _unknown_operation(operation: str) -> Response:
    return problem(404, "unknown_operation", f"Unknown operation {operation[:80]!r}.",
                   operations=list(OPERATIONS))


@blueprint.post("/v1/events/<operation>")
def post_events(operation: str):
    refused = _admit_caller(operation)
    if refused is not None:
        return refused
    if operation not in OPERATIONS:
        return _unknown_operation(operation)
    dry_run = _dry_run()
    if dry_run is None:
        return problem(400, "bad_query", "dry_run must be true or false.")
    kind = (request.mimetype or "").lower()
    if kind not in JSON_TYPES:
        return problem(415, "unsupported_media_type",
                       "Send JSON: Content-Type application/json (one event or an array) or "
                       "application/x-ndjson (one event per line).")
    try:
        text = request.get_data(cache=True).decode("utf-8-sig")
        events = read_events(text)
    except UnicodeDecodeError:
        return problem(400, "not_utf8", "The body must be UTF-8 text.")
    except ValueError as exc:
        return problem(400, "not_json", f"The body cannot be read as JSON or JSON lines: {exc}")
    if not events:
        return problem(400, "no_events", "The body holds no event.")
    ingest = door()
    limit = ingest.settings.ingest_max_events
    if len(events) > limit:
        return problem(413, "too_many_events", f"The body holds {len(events)} events; at most {limit} per "
                       "request (INGEST_MAX_EVENTS): send them in several requests.", max_events=limit)
    if dry_run:
        intakes = check_all(ingest.relay, operation, events)
    else:
        intakes = take_in_all(ingest.relay, operation, events, door="ingest POST",
                              abandon=ingest.withdrawals.add)
    answers = []
    for index, intake in enumerate(intakes):
        entry = {"index": index, "key": intake.key, "state": intake.state, "status": STATUS[intake.verdict],
                 "note": intake.note}
        if intake.problems is not None:
            entry["errors"] = intake.problems
        answers.append(entry)
    statuses = {entry["status"] for entry in answers}
    status = 503 if 503 in statuses else statuses.pop() if len(statuses) == 1 else 207
    body = {"operation": operation, **({"dry_run": True} if dry_run else {}), "events": answers}
    if status == 503:
        body["error"] = "store_unreachable"
        body["message"] = ("The store did not answer: the events marked 503 were not admitted; send them "
                           "again (admitted ones are recognised by their key).")
    answer = jsonify(body)
    answer.status_code = status
    if status == 503:
        answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    note(operation=operation, count=len(intakes), first_key=intakes[0].key, dry_run=dry_run,
         **{f"n_{verdict}": n for verdict, n in sorted(Counter(i.verdict for i in intakes).items())})
    return answer


def _dry_run() -> bool | None:
    """``?dry_run=``: True, False (absent too), or None for anything else."""
    value = request.args.get("dry_run", "false").strip().lower()
    return {"true": True, "1": True, "false": False, "0": False}.get(value)


@blueprint.get("/v1/events/<operation>/<path:key>")
def get_event(operation: str, key: str):
    refused = _admit_caller(operation)
    if refused is not None:
        return refused
    if operation not in OPERATIONS:
        return _unknown_operation(operation)
    view = describe(door().relay, operation, key)
    if view is None:
        return problem(404, "unknown_event", f"No {operation} event with key {key[:130]!r} in the ledger or "
                                             "the dead letters (delivered events are kept "
                                             "DELIVERED_RETENTION_DAYS).")
    return jsonify(without_payload(view))


@blueprint.get("/openapi.json")
def openapi_document():
    return jsonify(door().openapi)


@blueprint.get("/healthz")
def healthz():
    ingest = door()
    try:
        ingest.relay.redis.ping()
        store = "ok"
    except STORE_UNREACHABLE:
        store = "unreachable"
    problems = ingest.keeper.problems()
    healthy = store == "ok" and not problems
    body = {"status": "ok" if healthy else "degraded", "store": store,
            "refused_credentials": ingest.refusal_counts()}
    if problems:
        body["problems"] = problems
    answer = jsonify(body)
    answer.status_code = 200 if healthy else 503
    if not healthy:
        answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return answer
