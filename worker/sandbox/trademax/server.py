"""The sandbox's HTTP layer: a threaded HTTP/1.1 server that answers like Trademax.

``/api/...`` — the Trademax API (see worker.sandbox.trademax.routes): params from the query string for
GET/DELETE
(bracket keys kept flat, which is what verification needs), from a JSON body for POST/PATCH; every
request is authenticated (worker.sandbox.trademax.auth) and may meet an injected fault
(worker.sandbox.faults).

``/_sandbox/...`` — SANDBOX-ONLY control endpoints, unsigned, never faulted; real Trademax has none:

=========================  ===============================================================================
``GET /_sandbox/state``     everything applied: dispatches, deleted_dispatches, receipts, stock,
                            stock_adjustments, package_data, line_locks
``GET /_sandbox/requests``  every API request seen, in order: seq, method, path, params (no signature),
                            status, error_code, fault (``interrupted``: the body ended early, a client
                            killed mid-send; never applied).  Never trimmed: reset between benchmark rounds.
``GET /_sandbox/faults``    the current fault plan
``POST /_sandbox/faults``   change it: JSON such as ``{"fail_rate": 1.0}`` (latency_ms, fail_rate,
                            throttle_rate, timeout_after_apply_rate, stall_seconds)
``POST /_sandbox/reset``    forget state and requests; faults and the random seed back to start-up values
=========================  ===============================================================================

The access log is off: request lines carry signatures; ``/_sandbox/requests`` is the log.
"""
from __future__ import annotations

import json
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl

from worker import __version__
from worker.sandbox.trademax import routes
from worker.sandbox.trademax.answers import GENERAL_ERROR, PARAM_INVALID, SERVER_ERROR, Answer, fail
from worker.sandbox.trademax.auth import AUTH_PARAMS, authenticate
from worker.sandbox.faults import RETRY_AFTER_SECONDS, STALL, THROTTLE, FaultInjector, FaultPlan
from worker.sandbox.faults import SERVER_ERROR as SERVER_ERROR_FAULT
from worker.sandbox.request_log import RequestLog
from worker.sandbox.trademax.state import SandboxState

API_PREFIX = "/api/"
CONTROL_PREFIX = "/_sandbox/"
INTERRUPTED = "interrupted"  # request-log ``fault`` of a request whose body ended before its Content-Length
_QUIET = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class SandboxServer(ThreadingHTTPServer):
    """One fake Trademax: its keys, state, request log and fault injector."""

    daemon_threads = True
    request_queue_size = 256  # listen backlog: benchmarks open many connections at once

    def __init__(self, address: tuple[str, int], *, keys: Mapping[str, str], plan: FaultPlan,
                 seed: int | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(address, SandboxHandler)
        self.keys = dict(keys)
        self.clock = clock
        self.state = SandboxState(clock=clock)
        self.log = RequestLog()
        self.initial_plan, self.seed = plan, seed
        self.faults = FaultInjector(plan, seed)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}{API_PREFIX}"

    def reset(self) -> None:
        self.state.reset()
        self.log.clear()
        self.faults.reset(self.initial_plan, self.seed)

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], _QUIET):  # a client that gave up is not news
            super().handle_error(request, client_address)


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a pooled client reuses its connections
    server_version = f"TrademaxSandbox/{__version__}"
    disable_nagle_algorithm = True  # headers and body are two writes; don't let Nagle hold the second
    server: SandboxServer

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PATCH = do_DELETE = do_PUT = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request lines carry signatures in their query; /_sandbox/requests is the log

    def _handle(self) -> None:
        path, _, query = self.path.partition("?")
        try:
            declared = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(declared)
            if len(body) < declared:  # the client went away mid-body (a killed worker): nothing to apply
                self._interrupted(path)
                return
            if path.startswith(API_PREFIX):
                answer, stall = self._api(path, query, body)
            elif path.startswith(CONTROL_PREFIX):
                answer, stall = self._control(path, body), 0.0
            else:
                answer, stall = fail(404, GENERAL_ERROR, "not a Trademax path: the API is under /api/"), 0.0
        except Exception:
            traceback.print_exc()
            self.close_connection = True  # the body may be unread: do not parse it as the next request
            answer, stall = fail(500, SERVER_ERROR, "sandbox failure (see its stderr)"), 0.0
        if stall:
            time.sleep(stall)
        try:
            self._send(answer)
        except _QUIET:
            self.close_connection = True

    def _interrupted(self, path: str) -> None:
        """Log a request whose body ended early; it is never authenticated, applied or answered."""
        self.close_connection = True
        if path.startswith(API_PREFIX):
            self.server.log.record(method=self.command, path=path, params={}, status=400,
                                   error_code=PARAM_INVALID, fault=INTERRUPTED)

    def _api(self, path: str, query: str, body: bytes) -> tuple[Answer, float]:
        server, method = self.server, self.command
        fault = server.faults.draw()
        if fault.latency_seconds:
            time.sleep(fault.latency_seconds)
        params, answer = self._params(method, query, body)
        if fault.kind == SERVER_ERROR_FAULT:
            answer = fail(500, SERVER_ERROR, "general server-side error (injected)")
        elif fault.kind == THROTTLE:
            answer = Answer(status=429, error_code=GENERAL_ERROR, messages=("too many requests (injected)",),
                            headers=(("Retry-After", str(RETRY_AFTER_SECONDS)),))
        elif answer is None:
            own_url = f"http://{self.headers.get('Host', '')}{path}"
            answer = authenticate(params, method=method, url=own_url, now=server.clock(), keys=server.keys)
            if answer is None:
                fields = {k: v for k, v in params.items() if k not in AUTH_PARAMS}
                answer = routes.answer(server.state, method, path[len(API_PREFIX):], fields)
        server.log.record(method=method, path=path, params=params, status=answer.status,
                          error_code=answer.error_code, fault=fault.kind)
        return answer, (fault.stall_seconds if fault.kind == STALL else 0.0)

    def _params(self, method: str, query: str, body: bytes) -> tuple[dict[str, Any], Answer | None]:
        if method in ("GET", "DELETE"):
            return dict(parse_qsl(query, keep_blank_values=True)), None
        if not body:
            return {}, None
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            return {}, fail(400, PARAM_INVALID,
                            "the sandbox accepts JSON bodies only (Content-Type: application/json)")
        try:
            params = json.loads(body)
        except ValueError:
            return {}, fail(400, PARAM_INVALID, "the body is not valid JSON")
        if not isinstance(params, dict):
            return {}, fail(400, PARAM_INVALID, "the body must be a JSON object")
        return params, None

    def _control(self, path: str, body: bytes) -> Answer:
        server, route = self.server, (self.command, path.rstrip("/"))
        if route == ("GET", "/_sandbox/state"):
            return Answer(status=200, envelope=False, data=server.state.snapshot())
        if route == ("GET", "/_sandbox/requests"):
            return Answer(status=200, envelope=False, data=server.log.entries())
        if route == ("GET", "/_sandbox/faults"):
            return Answer(status=200, envelope=False, data=server.faults.plan.as_dict())
        if route == ("POST", "/_sandbox/faults"):
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("expected a JSON object such as {\"fail_rate\": 0.5}")
                plan = server.faults.update(changes)
            except ValueError as exc:
                return Answer(status=400, envelope=False, data={"error": str(exc)})
            return Answer(status=200, envelope=False, data=plan.as_dict())
        if route == ("POST", "/_sandbox/reset"):
            server.reset()
            return Answer(status=200, envelope=False, data={"reset": True})
        return Answer(status=404, envelope=False,
                      data={"error": f"no sandbox endpoint {self.command} {path}"})

    def _send(self, answer: Answer) -> None:
        payload = json.dumps(answer.body(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
