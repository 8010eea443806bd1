"""The fake Trademax as a :class:`~worker.sandbox.server.SandboxApi`: served under ``/api/`` (base URL
``http://HOST:PORT/api/``) by the shared HTTP layer (worker.sandbox.server, which also documents the
sandbox-only ``/_sandbox/`` endpoints).

Params come from the query string for GET/DELETE (bracket keys kept flat, which is what verification
needs) and from a JSON body for POST/PATCH; every request is authenticated (worker.sandbox.trademax.auth)
and then routed (worker.sandbox.trademax.routes) to the state (worker.sandbox.trademax.state).  Errors
come in the document's envelope ``{"error": {"error_code", "error_messages"}, "data"}``.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

from worker.sandbox.exchange import Request
from worker.sandbox.server import SandboxApi
from worker.sandbox.trademax import routes
from worker.sandbox.faults import DUPLICATE_WITHOUT_DATA, FaultPlan
from worker.sandbox.trademax.answers import (
    DUPLICATE_TRANSACTION, GENERAL_ERROR, PARAM_INVALID, SERVER_ERROR, Answer, fail,
)
from worker.sandbox.trademax.auth import AUTH_PARAMS, authenticate
from worker.sandbox.trademax.state import SandboxState

API_PREFIX = "/api/"


class TrademaxApi(SandboxApi):
    """One fake Trademax: its keys (api key → secret, or several secrets for rotation) and state."""

    name = "Trademax"
    prefix = API_PREFIX
    hidden = frozenset({"signature"})

    def __init__(self, *, keys: Mapping[str, str | Sequence[str]],
                 clock: Callable[[], float] = time.time) -> None:
        self.keys = dict(keys)
        self.clock = clock
        self.state = SandboxState(clock=clock)

    def base_url(self, root: str) -> str:
        return root.rstrip("/") + API_PREFIX

    def snapshot(self) -> dict:
        return self.state.snapshot()

    def reset(self) -> None:
        self.state.reset()

    def logged_params(self, request: Request) -> Mapping[str, Any]:
        return _params(request)[0]

    def answer(self, request: Request) -> Answer:
        params, refused = _params(request)
        if refused is not None:
            return refused
        own_url = f"http://{request.host}{request.path}"
        refused = authenticate(params, method=request.method, url=own_url, now=self.clock(), keys=self.keys)
        if refused is not None:
            return refused
        fields = {k: v for k, v in params.items() if k not in AUTH_PARAMS}
        return routes.answer(self.state, request.method, request.path[len(API_PREFIX):], fields)

    def server_error(self, message: str) -> Answer:
        return fail(500, SERVER_ERROR, message)

    def throttled(self, message: str, retry_after: int) -> Answer:
        return Answer(status=429, error_code=GENERAL_ERROR, messages=(message,),
                      headers=(("Retry-After", str(retry_after)),))

    def malformed(self, message: str) -> Answer:
        return fail(400, PARAM_INVALID, message)

    def unknown_path(self, path: str) -> Answer:
        return fail(404, GENERAL_ERROR, "not a Trademax path: the API is under /api/")

    def switched(self, answer: Answer, plan: FaultPlan) -> tuple[Answer, str | None]:
        """``duplicate_without_data``: a 452 answers with an empty ``data`` (no original record, no id)."""
        if plan.duplicate_without_data and answer.error_code == DUPLICATE_TRANSACTION:
            return replace(answer, data=[]), DUPLICATE_WITHOUT_DATA
        return answer, None


def _params(request: Request) -> tuple[dict[str, Any], Answer | None]:
    """The request's params (query for GET/DELETE, JSON body otherwise), or the 400 to answer."""
    if request.method in ("GET", "DELETE"):
        return request.query_params(), None
    if not request.body:
        return {}, None
    if not (request.header("Content-Type") or "").startswith("application/json"):
        return {}, fail(400, PARAM_INVALID,
                        "the sandbox accepts JSON bodies only (Content-Type: application/json)")
    try:
        params = json.loads(request.body)
    except ValueError:
        return {}, fail(400, PARAM_INVALID, "the body is not valid JSON")
    if not isinstance(params, dict):
        return {}, fail(400, PARAM_INVALID, "the body must be a JSON object")
    return params, None
