"""The ingest door's contract, OpenAPI 3.1, generated from the marshmallow schemas that validate events.

apispec's MarshmallowPlugin turns each operation's schema (``tasks.events.OPERATIONS``) into a JSON Schema
component: nested schemas, required fields, unknown fields refused (``additionalProperties: false``).  Our
own field types (``tasks/schemas/common.py``) are described by :func:`field_properties` — their type and
limits read from the field instances, so a changed limit changes the document.  Rules that span fields
(``@validates_schema``: a relative adjustment needs a reason, package ids are unique, ...) cannot be
written in JSON Schema; they are in each schema's description, and the 422 answer names them.
The answers are marshmallow schemas too (below).  ``tests/worker/web/test_ingest_openapi.py`` validates
the document (openapi-spec-validator), every file in ``examples/`` against it, and real answers against it,
and drives the app into every status each route documents (and documents every status it drives it into).

Examples: each operation's request shows its file in ``examples/`` — read from the installed package,
where ``tasks/example_events`` is a link to ``examples/`` (one copy in the checkout; a built wheel holds the
files) — and its answers show what the door answers for it: the 202 and the dry run's 200 for the example,
the 422 for ``examples/invalid-receipt.json``, computed by the code that answers (so they cannot drift).
"""
from __future__ import annotations

import inspect
import json
from functools import lru_cache
from importlib.resources import files
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from tasks.events import OPERATIONS
from tasks.schemas import common
from worker.delivery.dry_run import judge
from worker import __version__
from worker.web.ingest.auth import MAX_AGE_SECONDS, SIGNATURE_HEADER, TIMESTAMP_HEADER
from worker.web.ingest.routes import RETRY_AFTER_SECONDS, STATUS

_NO_CONTROL = r"\x00-\x1f\x7f-\x9f"
# Text(identifier=True): no control characters, nothing that str.strip() removes at either end.
IDENTIFIER_PATTERN = rf"^[^{_NO_CONTROL}\s]([^{_NO_CONTROL}]*[^{_NO_CONTROL}\s])?$"


def field_properties(self, field, **kwargs) -> dict:
    """The JSON Schema of one of our field types (an apispec attribute function; ``self`` is apispec's
    converter).  Runs after apispec's own, so what it returns wins."""
    found: dict = {}
    if isinstance(field, common.Text):
        found = {"type": "string", "maxLength": field.max_length, "minLength": field.min_length}
        if field.identifier:
            found["pattern"] = IDENTIFIER_PATTERN
    elif isinstance(field, common.Integer):
        found = {"type": "integer", "minimum": field.minimum, "maximum": field.maximum}
        if field.digit_string:
            found = {**found, "type": ["integer", "string"], "pattern": r"^[+-]?[0-9]{1,20}$",
                     "description": "An integer, or a string of digits (the range applies to both)."}
    elif isinstance(field, common.Measure):
        found = {"type": "number", "minimum": 0, "maximum": common.MAX_MEASURE}
    elif isinstance(field, common.Flag):
        found = {"type": "boolean"}
    elif isinstance(field, common.Choice):
        found = {"type": "string", "enum": list(field.choices)}
    elif isinstance(field, common.CalendarDate):
        found = {"type": "string", "format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
    elif isinstance(field, common.Timestamp):
        found = {"type": "string", "format": "date-time", "maxLength": 40,
                 "pattern": "^" + common._TIMESTAMP.pattern + "$",
                 "description": "ISO-8601 with a timezone offset or Z, years 2000-2099."}
    elif isinstance(field, common.ExternalId):
        found = {"type": ["string", "integer"], "maxLength": field.text.max_length, "minimum": 0,
                 "maximum": 10**18, "description": "A string, or a whole number (sent as its digits)."}
    elif isinstance(field, common.Forbidden):
        return {"not": {}, "description": field.message}
    elif isinstance(field, common.Listing):
        found = {"minItems": field.min_items, "maxItems": field.max_items}
    if found and field.allow_none and "type" in found:
        kinds = found["type"] if isinstance(found["type"], list) else [found["type"]]
        found["type"] = [*kinds, "null"]
    return found


# -- the answers -----------------------------------------------------------------------------------------

class EventAnswerSchema(Schema):
    index = fields.Integer(required=True, metadata={"description": "The event's place in the request."})
    key = fields.String(required=True, metadata={"description": "transaction_id or event_id; '(no key)' "
                                                 "when an invalid event carried none"})
    state = fields.String(required=True, allow_none=True, metadata={
        "description": "The event's ledger state (accepted, sending, retrying, waiting, delivered, "
                       "superseded, uncertain, dead, discarded); null when it was not admitted."})
    status = fields.Integer(required=True, metadata={
        "description": "202 admitted, 422 invalid, 409 conflict, 503 not admitted (send it again)."})
    note = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), metadata={
        "description": "422: field path -> messages, as the dead letter keeps them."})


class BatchAnswerSchema(Schema):
    operation = fields.String(required=True)
    events = fields.List(fields.Nested(EventAnswerSchema), required=True)
    error = fields.String()
    message = fields.String()


class ProblemSchema(Schema):
    error = fields.String(required=True, metadata={"description": "One word: what went wrong."})
    message = fields.String(required=True)
    operations = fields.List(fields.String())
    max_events = fields.Integer(metadata={"description": "413 too_many_events: INGEST_MAX_EVENTS."})


class HealthSchema(Schema):
    status = fields.String(required=True)
    store = fields.String(required=True)
    refused_credentials = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    problems = fields.List(fields.String(), metadata={
        "description": "What keeps the door from checking credentials (a tokens file that cannot be read "
                       "or parsed); present only then, with status degraded and 503."})


class EventViewSchema(Schema):
    """What ``wms-relay event --json`` shows, less the payload (the event's fields): Trademax's delivery
    (the WMS's destination) at the top level, and every destination's in ``deliveries``."""

    destination = fields.String(required=True, metadata={
        "description": "Whose delivery the top level describes: trademax (the WMS's destination) when it has "
                       "one."})
    deliveries = fields.List(fields.Dict(), required=True, metadata={
        "description": "The same view of each destination's delivery of the event (trademax, kaching, "
                       "stocktrim, stock2shop), each with its destination."})
    operation = fields.String(required=True)
    key = fields.String(required=True)
    state = fields.String(required=True)
    attempts = fields.Integer(required=True)
    result = fields.Dict(allow_none=True, required=True,
                         metadata={"description": "What the destination answered."})
    history = fields.List(fields.Dict(), required=True)
    attempts_log = fields.List(fields.Dict(), required=True)
    in_ledger = fields.Boolean(required=True)
    dead_letter = fields.Dict(allow_none=True, required=True)
    scheduled_retry = fields.Dict(allow_none=True, required=True)

    class Meta:
        unknown = "include"


def _json(ref: str, **more: Any) -> dict:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}, **more}}


def _problem(description: str, error: str | None = None, message: str | None = None) -> dict:
    if error is None:
        return {"description": description, "content": _json("Problem")}
    return {"description": description,
            "content": _json("Problem", example={"error": error, "message": message or description})}


def example_events() -> dict[str, Any]:
    """``examples/*.json`` by file stem (``receipt.create``, ``invalid-receipt``...), as the package carries
    them (``tasks/example_events``)."""
    folder = files("tasks") / "example_events"
    return {entry.name[: -len(".json")]: json.loads(entry.read_text(encoding="utf-8"))
            for entry in sorted(folder.iterdir(), key=lambda e: e.name) if entry.name.endswith(".json")}


def _answer(name: str, event: Any, *, dry_run: bool) -> dict:
    """What the door answers for ``event`` alone (a new key; the store not consulted): the example of a
    response, from the code that judges (tests/worker/web/test_ingest_openapi.py posts each example and
    compares)."""
    intake = judge(name, event)
    if intake.verdict == "invalid":  # a dead letter, unless it is a dry run
        state, status, note = None if dry_run else "dead", STATUS["invalid"], intake.note
    elif dry_run:
        state, status, note = None, STATUS["valid"], intake.note
    else:  # worker.delivery.admission.take_in's answer for a new key
        state, status, note = "accepted", STATUS["queued"], "queued"
    entry = {"index": 0, "key": intake.key, "state": state, "status": status, "note": note}
    if intake.problems is not None:
        entry["errors"] = intake.problems
    return {"operation": name, **({"dry_run": True} if dry_run else {}), "events": [entry]}


DRY_RUN = {"name": "dry_run", "in": "query", "required": False,
           "schema": {"type": "boolean", "default": False},
           "description": "true: validate the events and look their keys up in the ledger (read only) — "
                          "nothing is recorded or queued, no dead letter is made; valid events answer 200. "
                          "(An HMAC signature covers the path, not this parameter.)"}
SERVER_ERROR = _problem("Something went wrong in the relay (see the ingest log); send the request again: "
                        "admitted events are recognised by their key.")


def _post(name: str, examples: dict[str, Any]) -> dict:
    spec = OPERATIONS[name]
    event = {"$ref": f"#/components/schemas/{name}"}
    batch = {"description": "", "content": _json("BatchAnswer")}
    sample = examples.get(name)
    invalid = examples.get("invalid-receipt") if name == "receipt.create" else None
    body_examples = {"example": {"summary": f"examples/{name}.json", "value": sample}} if sample else {}
    if invalid is not None:
        body_examples["invalid"] = {"summary": "examples/invalid-receipt.json (answered 422)",
                                    "value": invalid}

    def answered(description: str, event_: Any, *, dry_run: bool = False) -> dict:
        found = {**batch, "description": description}
        if event_ is not None:
            found["content"] = _json("BatchAnswer", example=_answer(name, event_, dry_run=dry_run))
        return found

    return {"post": {
        "operationId": "post_" + name.replace(".", "_"),
        "tags": ["events"],
        "summary": f"Send {name} events (Celery task {spec.task_name})",
        "description": f"Keyed by `{spec.key_field}`. " + inspect.cleandoc(spec.schema.__doc__ or ""),
        "parameters": [DRY_RUN],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"oneOf": [event, {"type": "array", "items": event,
                                                              "minItems": 1}]},
                                 **({"examples": body_examples} if body_examples else {})},
            "application/x-ndjson": {"schema": {"type": "string",
                                                "description": f"One {name} event per line."}}}},
        "responses": {
            "200": answered("Dry run (`dry_run=true`): every event valid; nothing recorded or queued.",
                            sample, dry_run=True),
            "202": answered("Every event admitted: in the ledger and queued (or known).", sample),
            "207": {**batch, "description": "The events' answers differ: see each one's status."},
            "409": {**batch, "description": "The key belongs to another payload (kept as a dead letter; a "
                                            "dry run makes none)."},
            "422": answered("Invalid: `errors` names each field (kept as a dead letter; a dry run "
                            "makes none).", invalid),
            "503": {**batch, "description": f"The store did not answer; Retry-After {RETRY_AFTER_SECONDS}. "
                                            "Send the events marked 503 again.",
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
            "400": _problem("Not JSON (a key given twice, or nested past the parser's ~1,000 levels), not "
                            "UTF-8, no event, or dry_run neither true nor false."),
            "401": _problem("Credentials missing, wrong, stale or replayed."),
            "403": _problem("This client's token does not allow this operation."),
            "413": _problem("The body is larger than INGEST_MAX_BODY_BYTES (`too_large`), or holds more "
                            "events than INGEST_MAX_EVENTS (`too_many_events`, with `max_events`)."),
            "415": _problem("Not application/json or application/x-ndjson.", "unsupported_media_type",
                            "Send JSON: Content-Type application/json (one event or an array) or "
                            "application/x-ndjson (one event per line)."),
            "500": SERVER_ERROR,
        },
    }}


TAGS = [
    {"name": "events", "description": "Send WMS events: each validated and admitted as `wms-relay enqueue` "
                                      "does, and answered on its own (`?dry_run=true`: judged only)."},
    {"name": "state", "description": "Where an event is: its state, attempts and history."},
    {"name": "service", "description": "The door itself: readiness and this document."},
]
SERVERS = [
    {"url": "/", "description": "The door that served this document."},
    {"url": "http://127.0.0.1:8081", "description": "`wms-relay ingest` on its defaults (the Procfile, "
                                                    "`make run`)."},
]


@lru_cache(maxsize=1)
def document() -> dict:
    """The OpenAPI 3.1 document (built once per process: the schemas do not change while it runs)."""
    plugin = MarshmallowPlugin()
    spec = APISpec(title="wms-relay ingest", version=__version__, openapi_version="3.1.0", plugins=[plugin],
                   info={"description": "The HTTP door for warehouse events: each event is validated and "
                                        "admitted as `wms-relay enqueue` does, and answered on its own."})
    plugin.converter.add_attribute_function(field_properties)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer",
                                               "description": "A token from `wms-relay ingest add-token`."})
    spec.components.security_scheme("hmac", {
        "type": "apiKey", "in": "header", "name": SIGNATURE_HEADER,
        "description": f"`sha256=` + hex HMAC-SHA256(secret, \"{{timestamp}}\\n{{METHOD}}\\n{{path}}\\n\" + "
                       f"body), with the Unix time in {TIMESTAMP_HEADER} (at most {MAX_AGE_SECONDS} s "
                       "old; each signature is accepted once)."})
    spec.components.security_scheme("standardWebhooks", {
        "type": "apiKey", "in": "header", "name": "webhook-signature",
        "description": "Standard Webhooks (https://www.standardwebhooks.com/): `v1,` + base64 "
                       "HMAC-SHA256(secret, \"{webhook-id}.{webhook-timestamp}.\" + body), with the "
                       "message's unique id in `webhook-id` and the Unix time in `webhook-timestamp` "
                       f"(at most {MAX_AGE_SECONDS} s off; a message is accepted once, a resend signed "
                       "afresh is let in). The secret is a `whsec_` one from INGEST_WEBHOOK_SECRETS; any "
                       "Standard Webhooks library signs it."})
    for name, op in OPERATIONS.items():
        spec.components.schema(name, {"description": inspect.cleandoc(op.schema.__doc__ or "")},
                               schema=op.schema)
    answers = {"EventAnswer": EventAnswerSchema, "BatchAnswer": BatchAnswerSchema, "Problem": ProblemSchema,
               "Health": HealthSchema, "EventView": EventViewSchema}
    for name, schema in answers.items():
        spec.components.schema(name, schema=schema)
    examples = example_events()
    for name in OPERATIONS:
        spec.path(path=f"/v1/events/{name}", operations=_post(name, examples))
    spec.path(path="/v1/events/{operation}/{key}", operations={"get": {
        "operationId": "get_event", "tags": ["state"], "summary": "One event's state, attempts and history",
        "parameters": [
            {"name": "operation", "in": "path", "required": True,
             "schema": {"type": "string", "enum": list(OPERATIONS)}},
            {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "The event", "content": _json("EventView")},
                      "401": _problem("Credentials missing or wrong."),
                      "403": _problem("This client's token does not allow this operation."),
                      "404": _problem("No such operation or event."),
                      "503": {**_problem("The store did not answer; try again shortly.", "store_unreachable",
                                         "The store did not answer; try again shortly."),
                              "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
                      "500": SERVER_ERROR}}})
    spec.path(path="/healthz", operations={"get": {
        "operationId": "healthz", "tags": ["service"], "summary": "Whether the store answers", "security": [],
        "responses": {"200": {"description": "Ready", "content": _json("Health")},
                      "503": {"description": "The store does not answer, or the tokens file cannot be used "
                                             "(`problems` says why)", "content": _json("Health")}}}})
    spec.path(path="/openapi.json", operations={"get": {
        "operationId": "openapi", "tags": ["service"], "summary": "This document", "security": [],
        "responses": {"200": {"description": "OpenAPI 3.1"}}}})
    result = spec.to_dict()
    result["security"] = [{"bearer": []}, {"hmac": []}, {"standardWebhooks": []}]
    result["servers"] = SERVERS
    result["tags"] = TAGS
    return result
