"""The HTTP layer every sandbox shares: a threaded HTTP/1.1 server, fault injection, the request log and
the sandbox-only control endpoints.  What the API itself answers comes from a :class:`SandboxApi`
(worker.sandbox.trademax.api, worker.sandbox.kaching.api, worker.sandbox.stocktrim.api,
worker.sandbox.stock2shop.api).

``{api.prefix}...`` — the fake API.  Every request may meet an injected fault (worker.sandbox.faults):
latency first, then a 500 or a 429 (not applied) in the API's own error shape, or a stall after applying.

``/_sandbox/...`` — SANDBOX-ONLY control endpoints, unauthenticated, never faulted; the real APIs have none:

=========================  ===============================================================================
``GET /_sandbox/state``     everything applied; at least ``{"stock": {"<location>": {"<product>": qty}}}``
                            for every API, plus what matters to it (see each API's ``snapshot``)
``GET /_sandbox/requests``  every API request seen, in order: seq, method, path, params (secrets left
                            out), status, error_code, fault (``interrupted``: the body ended early, a client
                            killed mid-send; never applied).  Never trimmed: reset between benchmark rounds.
``GET /_sandbox/faults``    the current fault plan
``POST /_sandbox/faults``   change it: JSON such as ``{"fail_rate": 1.0}`` (latency_ms, fail_rate,
                            throttle_rate, timeout_after_apply_rate, stall_seconds; the switches
                            duplicate_without_data and initiated_fewer: 1 or 0)
``POST /_sandbox/reset``    forget state and requests; faults and the random seed back to start-up values
=========================  ===============================================================================

The access log is off: request lines can carry credentials (signatures, api keys, tokens);
``/_sandbox/requests`` is the log.
"""
from __future__ import annotations

import json
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Mapping

from worker import __version__
from worker.sandbox.exchange import Reply, Request
from worker.sandbox.faults import RETRY_AFTER_SECONDS, STALL, THROTTLE, FaultInjector, FaultPlan
from worker.sandbox.faults import SERVER_ERROR as SERVER_ERROR_FAULT
from worker.sandbox.request_log import RequestLog

CONTROL_PREFIX = "/_sandbox/"
INTERRUPTED = "interrupted"  # request-log ``fault`` of a request whose body ended before its Content-Length
_QUIET = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class SandboxApi:
    """One fake API: what it answers, in its own shapes.  Subclasses set ``name`` and ``prefix`` (the
    path every API request starts with), ``hidden`` (parameter names the request log never shows, at
    any depth) and implement the methods below.  Thread-safe: the server calls them from many threads."""

    name = "Sandbox"
    prefix = "/"
    hidden: frozenset[str] = frozenset()

    def answer(self, request: Request) -> Reply:
        """Authenticate, validate and apply one API request; the answer to send."""
        raise NotImplementedError

    def logged_params(self, request: Request) -> Mapping[str, Any]:
        """What the request log shows of a request (``hidden`` names are removed by the log): by default
        the query's parameters and, when the body is a JSON object, its fields."""
        params: dict[str, Any] = dict(request.query_params())
        try:
            body = request.json()
        except ValueError:
            return params
        if isinstance(body, dict):
            params.update(body)
        return params

    def logged_path(self, path: str) -> str:
        """The path as the request log shows it (an API with a credential in its path blanks it)."""
        return path

    def server_error(self, message: str) -> Reply:
        """A 500 in the API's error shape (injected, or the sandbox itself failed)."""
        return Reply(500, {"error": message})

    def throttled(self, message: str, retry_after: int) -> Reply:
        """An injected 429 with ``Retry-After``."""
        return Reply(429, {"error": message}, headers=(("Retry-After", str(retry_after)),))

    def malformed(self, message: str) -> Reply:
        """A 400 for a request that cannot be read (also what an interrupted request is logged as)."""
        return Reply(400, {"error": message})

    def unknown_path(self, path: str) -> Reply:
        return Reply(404, {"error": f"not a {self.name} path: the API is under {self.prefix}"})

    def switched(self, answer: Any, plan: FaultPlan) -> tuple[Any, str | None]:
        """The answer as the plan's switches (worker.sandbox.faults) change it, and the fault's name when
        one did; an API without switches answers as it is."""
        return answer, None

    def answer_under(self, request: Request, plan: FaultPlan) -> tuple[Any, str | None]:
        """:meth:`answer` under the plan's switches, and the switch's name when one changed it: by default
        the answer as :meth:`switched` changes it; an API whose switch changes what it applies (ka-ching's
        ``initiated_fewer``) answers here itself."""
        return self.switched(self.answer(request), plan)

    def base_url(self, root: str) -> str:
        """The base URL a client of this API is configured with, given ``http://HOST:PORT/``."""
        return root

    def snapshot(self) -> dict:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError


class SandboxServer(ThreadingHTTPServer):
    """One fake API on HOST:PORT: the API, its request log and fault injector."""

    daemon_threads = True
    request_queue_size = 256  # listen backlog: benchmarks open many connections at once

    def __init__(self, address: tuple[str, int], api: SandboxApi, *, plan: FaultPlan,
                 seed: int | None = None) -> None:
        super().__init__(address, SandboxHandler)
        self.api = api
        self.log = RequestLog(hidden=api.hidden)
        self.initial_plan, self.seed = plan, seed
        self.faults = FaultInjector(plan, seed)

    @property
    def root_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def base_url(self) -> str:
        return self.api.base_url(self.root_url)

    def reset(self) -> None:
        self.api.reset()
        self.log.clear()
        self.faults.reset(self.initial_plan, self.seed)

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], _QUIET):  # a client that gave up is not news
            super().handle_error(request, client_address)


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a pooled client reuses its connections
    disable_nagle_algorithm = True  # headers and body are two writes; don't let Nagle hold the second
    server: SandboxServer

    @property
    def server_version(self) -> str:  # type: ignore[override]
        return f"{self.server.api.name}Sandbox/{__version__}"

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PATCH = do_DELETE = do_PUT = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request lines can carry credentials; /_sandbox/requests is the log

    def _handle(self) -> None:
        api = self.server.api
        path, _, query = self.path.partition("?")
        try:
            declared = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(declared)
            if len(body) < declared:  # the client went away mid-body (a killed worker): nothing to apply
                self._interrupted(path)
                return
            if path.startswith(CONTROL_PREFIX):
                answer, stall = self._control(path, body), 0.0
            elif path.startswith(api.prefix):
                answer, stall = self._api(path, query, body)
            else:
                answer, stall = api.unknown_path(path), 0.0
        except Exception:
            traceback.print_exc()
            self.close_connection = True  # the body may be unread: do not parse it as the next request
            answer, stall = api.server_error("sandbox failure (see its stderr)"), 0.0
        if stall:
            time.sleep(stall)
        try:
            self._send(answer)
        except _QUIET:
            self.close_connection = True

    def _interrupted(self, path: str) -> None:
        """Log a request whose body ended early; it is never authenticated, applied or answered."""
        self.close_connection = True
        api = self.server.api
        if path.startswith(api.prefix) and not path.startswith(CONTROL_PREFIX):
            refused = api.malformed("the body ended before its Content-Length")
            self.server.log.record(method=self.command, path=api.logged_path(path), params={},
                                   status=refused.status, error_code=refused.error_code, fault=INTERRUPTED)

    def _api(self, path: str, query: str, body: bytes) -> tuple[Any, float]:
        server, api = self.server, self.server.api
        request = Request(method=self.command, path=path, query=query, body=body,
                          headers={name.lower(): value for name, value in self.headers.items()},
                          host=self.headers.get("Host", ""), client=self.client_address[0])
        fault = server.faults.draw()
        if fault.latency_seconds:
            time.sleep(fault.latency_seconds)
        params = api.logged_params(request)
        logged = fault.kind
        if fault.kind == SERVER_ERROR_FAULT:
            answer = api.server_error("general server-side error (injected)")
        elif fault.kind == THROTTLE:
            answer = api.throttled("too many requests (injected)", RETRY_AFTER_SECONDS)
        else:
            answer, switched = api.answer_under(request, server.faults.plan)
            logged = switched or fault.kind  # (a stall of a switched answer is logged as the switch)
        server.log.record(method=request.method, path=api.logged_path(path), params=params,
                          status=answer.status, error_code=answer.error_code, fault=logged)
        return answer, (fault.stall_seconds if fault.kind == STALL else 0.0)

    def _control(self, path: str, body: bytes) -> Reply:
        server, route = self.server, (self.command, path.rstrip("/"))
        if route == ("GET", "/_sandbox/state"):
            return Reply(200, server.api.snapshot())
        if route == ("GET", "/_sandbox/requests"):
            return Reply(200, server.log.entries())
        if route == ("GET", "/_sandbox/faults"):
            return Reply(200, server.faults.plan.as_dict())
        if route == ("POST", "/_sandbox/faults"):
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("expected a JSON object such as {\"fail_rate\": 0.5}")
                plan = server.faults.update(changes)
            except ValueError as exc:
                return Reply(400, {"error": str(exc)})
            return Reply(200, plan.as_dict())
        if route == ("POST", "/_sandbox/reset"):
            server.reset()
            return Reply(200, {"reset": True})
        return Reply(404, {"error": f"no sandbox endpoint {self.command} {path}"})

    def _send(self, answer: Any) -> None:
        body = answer.body()
        payload = b"" if body is None else json.dumps(body, ensure_ascii=False,
                                                      separators=(",", ":")).encode("utf-8")
        self.send_response(answer.status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
