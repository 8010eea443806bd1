"""One log line per HTTP request at the relay's web doors (the ingest, the desk), and the request id that
ties a caller's request to that line.

A caller's ``X-Request-ID`` is kept when it is sane — 1 to 128 characters of letters, digits and
``. _ : + / = @ -`` (a UUID, a hex id, ``req_…``: what proxies and clients make) — and otherwise one is made
(32 hex digits); either way the answer carries it back in ``X-Request-ID`` and the line carries it as
``request_id``, so a WMS developer's "my request 4f0c… got a 422" is found with one search.

The line (``worker.observe.logs.log_fields``: top-level fields in JSON, ``key=value`` in text) says
``method``, ``path`` (no query string), ``status``, ``remote`` (the address the request came from),
``request_id`` and ``latency_ms``, then what the app adds: ``fields()`` (who: the ingest's client, the
desk's user) and whatever a route put in with :func:`note` (the ingest: operation, count, first key,
verdicts, a refusal's reason).  A refused or failed request (401, 403, 5xx) is a WARNING, the rest INFO.
Bodies, headers and query strings are never logged: they may carry tokens, signatures or passwords."""
from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any, Callable

from flask import Flask, Response, g, request

from worker.observe.logs import log_fields

HEADER = "X-Request-ID"
_SANE = re.compile(r"^[A-Za-z0-9._:+/=@-]{1,128}$")
_LOUD = {401, 403}


def request_id_of(sent: str | None) -> str:
    """The caller's request id when it is sane, else a new one."""
    if sent and _SANE.match(sent):
        return sent
    return uuid.uuid4().hex


def note(**fields: Any) -> None:
    """Add facts to this request's line (a route knows what it did: the operation, the events' count)."""
    g.setdefault("request_log_fields", {}).update(fields)


def current_request_id() -> str | None:
    return g.get("request_id")


def install(app: Flask, logger: logging.Logger, fields: Callable[[], dict[str, Any]] | None = None) -> None:
    """Give every request of ``app`` a request id and one line on ``logger`` once it is answered."""

    @app.before_request
    def _start() -> None:
        g.request_started = time.perf_counter()
        g.request_id = request_id_of(request.headers.get(HEADER))

    @app.after_request
    def _log(response: Response) -> Response:
        request_id = g.get("request_id") or request_id_of(request.headers.get(HEADER))
        response.headers[HEADER] = request_id
        started = g.get("request_started")
        line = {"method": request.method, "path": request.path, "status": response.status_code,
                "remote": request.remote_addr or "-", "request_id": request_id,
                "latency_ms": None if started is None else round((time.perf_counter() - started) * 1000, 1)}
        if fields is not None:
            line.update(fields())
        line.update(g.get("request_log_fields") or {})
        status = response.status_code
        log_fields(logger, logging.WARNING if status in _LOUD or status >= 500 else logging.INFO, "request",
                   line)
        return response
