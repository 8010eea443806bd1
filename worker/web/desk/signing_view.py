"""The signing explanation on an event's page: the request the event becomes (method, path, params) and,
for it, the flattened pairs in signed order and the canonical string — what a person compares with
Trademax's notes when a signature is disputed.

It never shows a secret or a signature: the api key, the base URL (both credentials) and the timestamp
(new on every attempt) appear as placeholders, which changes no key's place in the order.  The request is
built by the pipeline's own table of operations (each row's ``send``, ``worker.destinations.table``) on a
client that records instead of sending, so what is explained is exactly what the worker sends."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import signing
from worker.destinations.table import OPERATIONS
from worker.destinations.trademax.calls import CALLS
from worker.destinations.trademax.client import TrademaxClient

API_KEY, TIMESTAMP, BASE_URL, DISPATCH_ID = "‹api key›", "‹timestamp›", "‹TRADEMAX_BASE_URL›", "‹dispatch_id›"


@dataclass(frozen=True)
class Explanation:
    method: str
    path: str
    pairs: list
    canonical: str
    note: str = ""


class _RequestRecorder(TrademaxClient):
    """The client's operations without the client's credentials or network: ``call`` returns what it
    was asked to send."""

    def __init__(self) -> None:  # noqa: D107 — deliberately nothing: no credentials, no session
        pass

    def call(self, name: str, fields, **path_values: Any):  # type: ignore[override]
        documented = CALLS[name]
        return documented.method, documented.render_path(**path_values), dict(fields)


def explain(operation: str, fields: dict, dispatch_id: Any = None) -> Explanation | None:
    """The explanation for an event's next attempt, or None for an operation the table does not know."""
    row = OPERATIONS.get(operation)
    if row is None or row.destination != "trademax" or not isinstance(fields, dict):
        return None
    note = ""
    if row.needs_dispatch_id and dispatch_id is None:
        dispatch_id, note = DISPATCH_ID, "The dispatch_id comes from the delivered dispatch.create (not yet)."
    try:
        method, path, params = row.send(_RequestRecorder(), fields, dispatch_id)
        signed = {**params, "api_key": API_KEY, "timestamp": TIMESTAMP, "method": method,
                  "url": BASE_URL + path}
        return Explanation(method, path, signing.signed_pairs(signed), signing.canonical_string(signed), note)
    except (signing.SigningError, KeyError) as exc:
        return Explanation("", "", [], "", f"cannot be signed: {exc}")
