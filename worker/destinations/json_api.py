"""The HTTP half the stock channels' clients share (ka-ching, StockTrim, Stock2Shop): send one JSON request
with the process's pooled session, time it, and turn the answer into a :class:`Reply` or one of the
``worker.errors`` tree, as the destination's own ``classify(status, body)`` says.

What every destination's classification has in common is :func:`classify_status`; a body that is not JSON
on a 2xx is outcome-unknown (the destination said "success" but we cannot read it), not a retry.  The
texts of errors and of the exceptions they chain are scrubbed of the client's secrets (api keys in a
query, signatures in headers, passwords, tokens); a transport failure is described without its URL.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import requests

from worker.destinations.contract import Classification
from worker.destinations.transport import (
    USER_AGENT,
    build_session,
    classify_transport_failure,
    describe,
    parse_retry_after,
)
from worker.errors import DestinationError, OutcomeUnknownError, PermanentError, TransientError
from worker.redaction import Scrubber

ERRORS: dict[Classification, type[DestinationError]] = {
    Classification.TRANSIENT: TransientError,
    Classification.OUTCOME_UNKNOWN: OutcomeUnknownError,
    Classification.PERMANENT: PermanentError,
}
EXCERPT = 300
UNREADABLE = object()  # the body of an answer that is not JSON


def classify_status(status: int) -> Classification:
    """2xx delivered; 408, 429 and 5xx transient (the destination could not take it now); any other
    status permanent (a 4xx is the request's fault; a 3xx is never followed: a moved API is a
    configuration fix, and a POST must not silently become a GET)."""
    if 200 <= status < 300:
        return Classification.DELIVERED
    if status >= 500 or status in (408, 429):
        return Classification.TRANSIENT
    return Classification.PERMANENT


def classify_unreadable(status: int) -> Classification:
    """An answer whose body was not JSON: a 2xx is outcome-unknown (it probably applied, and resending a
    relative adjustment on that guess would apply it twice); otherwise the status speaks."""
    return Classification.OUTCOME_UNKNOWN if 200 <= status < 300 else classify_status(status)


@dataclass(frozen=True)
class Reply:
    """A delivered call: what the destination answered, and the few values the ledger keeps."""

    destination: str
    operation: str
    status: int
    data: Any
    latency_seconds: float = 0.0
    kept: Mapping[str, Any] = field(default_factory=dict)
    error_code: int | None = None
    duplicate: bool = False

    def ledger_result(self) -> dict:
        """What the ledger keeps: the status and the destination's short confirmation (never a body
        that could hold a token)."""
        return {**self.kept, "status": self.status}


Classify = Callable[[int, Any], Classification]
Messages = Callable[[Any], list]


class JsonApi:
    """One destination's HTTP calls.  Thread-safe: one per process, shared by the threads."""

    def __init__(self, destination: str, base_url: str, *, timeout: tuple[float, float],
                 clock: Callable[[], float] = time.time, session: requests.Session | None = None,
                 secrets: Iterable[str] = ()) -> None:
        self.destination = destination
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._timeout = timeout
        self._clock = clock
        self._session = session if session is not None else build_session()
        self._secrets = [s for s in secrets if s]

    def close(self) -> None:
        self._session.close()

    def scrubber(self, *more: str) -> Scrubber:
        return Scrubber([*self._secrets, *more])

    def call(self, operation: str, method: str, path: str, *, classify: Classify, messages: Messages,
             params: Mapping[str, Any] | None = None, body: Any = None,
             headers: Mapping[str, str] | None = None, secrets: Iterable[str] = ()) -> Reply:
        """Send one request to ``base_url + path``; a :class:`Reply` when ``classify`` says delivered,
        else the error it says.  ``secrets``: this call's own (a token) besides the client's."""
        sent_headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
        request: dict[str, Any] = {"headers": sent_headers, "timeout": self._timeout,
                                   "allow_redirects": False, "params": dict(params or {})}
        if body is not None:
            sent_headers["Content-Type"] = "application/json"
            request["data"] = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        context = {"destination": self.destination, "operation": operation}
        started = time.monotonic()
        try:
            response = self._session.request(method, self.base_url + path, **request)
        except requests.RequestException as exc:
            scrubber = self.scrubber(*secrets)
            detail = scrubber.text(describe(exc))
            scrubber.exception(exc)
            raise ERRORS[classify_transport_failure(exc)](
                detail, latency_seconds=time.monotonic() - started, **context) from exc
        latency = time.monotonic() - started
        status = response.status_code
        try:
            data = json.loads(response.content) if response.content.strip() else None
        except ValueError:
            data = UNREADABLE
        classification = classify_unreadable(status) if data is UNREADABLE else classify(status, data)
        if classification.delivered:
            return Reply(self.destination, operation, status, data, latency)
        scrubber = self.scrubber(*secrets)
        if data is UNREADABLE:
            text = scrubber.text(response.content.decode("utf-8", errors="replace"))
            found, detail = [], f"unreadable body: {text[:EXCERPT]!r}"
        else:
            found, detail = [scrubber.text(str(m)) for m in messages(data)], ""
        context.update(status=status, error_messages=found, latency_seconds=latency)
        if classification is Classification.TRANSIENT:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
            raise TransientError(detail, retry_after=retry_after, **context)
        raise ERRORS[classification](detail, **context)
