"""The HTTP door for the WMS (``wms-relay ingest``): events in over HTTP, validated and admitted by the
same code as ``wms-relay enqueue`` (``worker.delivery.admission``), answered per event with its key and state.

:func:`create_app` builds the Flask app from Settings; tests pass their own relay (a fakeredis store).  The
routes are in ``routes.py``, credentials in ``auth.py`` and ``tokens.py``, the contract in ``openapi.py``.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from flask import Flask, g
from werkzeug.exceptions import HTTPException

from worker.delivery.admission import STORE_UNREACHABLE
from worker.delivery.withdrawals import Withdrawals
from worker.settings import Settings
from worker.web import request_log
from worker.web.ingest.auth import Doorkeeper
from worker.web.ingest.tokens import TokenFileError

if TYPE_CHECKING:  # a type only: create_app builds the relay (or is handed one)
    from worker.delivery.relay import Relay

log = logging.getLogger("wms_relay.ingest")


@dataclass
class Ingest:
    """What the routes work with: one per app, shared by the server's threads."""

    settings: Settings
    relay: Relay  # built with sends=False: the door admits and queues, it never sends
    keeper: Doorkeeper
    openapi: dict
    withdrawals: Withdrawals  # admissions answered 503 that the store may have run: taken back
    refusals: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count_refusal(self, reason: str) -> None:
        with self.lock:
            self.refusals[reason] += 1

    def refusal_counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self.refusals)


def create_app(settings: Settings, *, relay=None, clock: Callable[[], float] = time.time) -> Flask:
    """The ingest app.  Without ``relay``: the store from ``settings`` (the task messages go onto the
    queues in the same store calls as the ledger records: ``worker.delivery.admission``)."""
    from worker.web.ingest import routes
    from worker.web.ingest.openapi import document

    if relay is None:
        from worker.delivery.relay import build_relay

        # A service process, like the worker: with REDIS_URL unset it may start the embedded server.
        relay = build_relay(settings, sends=False, clock=clock, start_store=True)
    app = Flask("wms_relay.ingest")
    app.config["MAX_CONTENT_LENGTH"] = settings.ingest_max_body_bytes
    app.json.sort_keys = False
    keeper = Doorkeeper.from_settings(settings, relay.redis, clock)
    app.extensions["wms_relay_ingest"] = Ingest(settings, relay, keeper, document(),
                                                Withdrawals(relay.ledger, STORE_UNREACHABLE))
    # One line per request (refusals, 415s and 503s included), with its X-Request-ID: web.request_log.
    request_log.install(app, log, fields=lambda: {"client": getattr(g.get("caller"), "client", "-")})
    app.register_blueprint(routes.blueprint)

    @app.errorhandler(HTTPException)
    def http_problem(exc: HTTPException):
        if exc.code == 413:
            return routes.problem(413, "too_large", f"The body is larger than "
                                  f"{settings.ingest_max_body_bytes} bytes (INGEST_MAX_BODY_BYTES): send "
                                  "fewer events per request.")
        return routes.problem(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"),
                              exc.description or exc.name)

    def store_unreachable(exc: Exception):
        log.warning("ingest: the store did not answer (%s)", type(exc).__name__)
        return routes.problem(503, "store_unreachable", "The store did not answer; try again shortly.")

    for kind in STORE_UNREACHABLE:
        app.register_error_handler(kind, store_unreachable)

    @app.errorhandler(TokenFileError)
    def tokens_unreadable(exc: TokenFileError):
        # The door's fault, not the caller's: 503, sent again later; /healthz names the file and line.
        log.error("ingest: bearer token refused unchecked: %s", exc)
        return routes.problem(503, "tokens_unreadable", "The door's tokens file cannot be read at the moment "
                              "(its operator is told by /healthz); try again shortly.")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("ingest: unexpected error")
        return routes.problem(500, "internal_error", "Something went wrong in the relay (see the ingest "
                              "log). Send the request again: events already admitted are recognised by "
                              "their key.")

    return app
