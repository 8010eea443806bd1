"""The fake ka-ching stock import (``wms-relay sandbox --api kaching``; base URL ``http://HOST:PORT/``).

``POST /imports/stock?account=…&integration=…&apikey=…[&adjustment=true]`` imports counts;
``DELETE`` with the same query and body removes stock records (worker.sandbox.kaching.stock).  Answers,
checked in this order (docs/destinations.md, "ka-ching", says which are ka-ching's and which are ours):

=========================================================  ======  ===========================================
request                                                    status  body
=========================================================  ======  ===========================================
account, integration or apikey missing or not the          401     ``{"status": "ERROR", "message": …}``
  configured import integration's
``adjustment`` other than ``true`` / ``false``             400     ``{"status": "ERROR", "message": …}``
body not JSON, or not locations → products → counts        400     ``{"status": "ERROR", "message": …}``
otherwise (``{}`` too: what ``wms-relay check`` sends)     200     ``{"status": "OK", "message": "Import of N
                                                                   stock value(s) initiated"}``, N the values
                                                                   parsed; then processed (stock.py): a value
                                                                   at a stock location that does not exist
                                                                   (``UNKNOWN…``) fails — not applied, listed
                                                                   under ``failed`` in the state — and with
                                                                   the switch ``initiated_fewer`` the last
                                                                   value is not parsed (N one less)
another path or verb                                       404     ``{"status": "ERROR", "message": …}``
=========================================================  ======  ===========================================
"""
from __future__ import annotations

import hmac
import time
from typing import Any, Callable, Mapping

from worker.sandbox.exchange import Reply, Request
from worker.sandbox.faults import INITIATED_FEWER, FaultPlan
from worker.sandbox.kaching.stock import ADJUST, DELETE, REPLACE, BadImport, KachingStock, parse_import
from worker.sandbox.server import SandboxApi

STOCK_PATH = "/imports/stock"
AUTH_PARAMS = ("account", "integration", "apikey")


def refused(status: int, message: str, **extra: Any) -> Reply:
    return Reply(status, {"status": "ERROR", "message": message, **extra})


class KachingApi(SandboxApi):
    name = "Kaching"
    prefix = "/imports/"
    hidden = frozenset({"apikey"})

    def __init__(self, *, account: str, integration: str, api_key: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._credentials = {"account": account, "integration": integration, "apikey": api_key}
        self.stock = KachingStock(clock=clock)

    def snapshot(self) -> dict:
        return self.stock.snapshot()

    def reset(self) -> None:
        self.stock.reset()

    def logged_params(self, request: Request) -> Mapping[str, Any]:
        params: dict[str, Any] = dict(request.query_params())
        try:
            params["stock"] = request.json()
        except ValueError:
            pass
        return params

    def answer(self, request: Request) -> Reply:
        return self._answer(request, initiated_fewer=False)[0]

    def answer_under(self, request: Request, plan: FaultPlan) -> tuple[Reply, str | None]:
        return self._answer(request, initiated_fewer=bool(plan.initiated_fewer))

    def _answer(self, request: Request, *, initiated_fewer: bool) -> tuple[Reply, str | None]:
        if request.path.rstrip("/") != STOCK_PATH or request.method not in ("POST", "DELETE"):
            return self.unknown_path(request.path), None
        query = request.query_params()
        if not self._authentic(query):
            return refused(401, "Unauthorized: account, integration and apikey must name an import "
                                "integration of the account"), None
        adjustment = query.get("adjustment", "false")
        if adjustment not in ("true", "false"):
            return refused(400, f"adjustment must be true or false, got {adjustment!r}"), None
        try:
            values = parse_import(request.json())
        except BadImport as exc:
            return refused(400, f"Invalid stock import: {exc}"), None
        except ValueError:
            return refused(400, "Invalid stock import: the body is not JSON"), None
        kind = DELETE if request.method == "DELETE" else ADJUST if adjustment == "true" else REPLACE
        unparsed = 1 if initiated_fewer and values else 0
        parsed = self.stock.apply(kind, values, unparsed=unparsed)
        verb = "Deletion" if kind == DELETE else "Import"
        return (Reply(200, {"status": "OK", "message": f"{verb} of {parsed} stock value(s) initiated"}),
                INITIATED_FEWER if unparsed else None)

    def _authentic(self, query: Mapping[str, str]) -> bool:
        results = [hmac.compare_digest(query.get(name, "").encode(), expected.encode())
                   for name, expected in self._credentials.items()]
        return all(results)

    def server_error(self, message: str) -> Reply:
        return refused(500, message)

    def throttled(self, message: str, retry_after: int) -> Reply:
        return Reply(429, {"status": "ERROR", "message": message},
                     headers=(("Retry-After", str(retry_after)),))

    def malformed(self, message: str) -> Reply:
        return refused(400, message)

    def unknown_path(self, path: str) -> Reply:
        return refused(404, f"Not found: the stock import is POST or DELETE {STOCK_PATH}")
