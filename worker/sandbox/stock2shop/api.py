"""The fake Stock2Shop (``wms-relay sandbox --api stock2shop``; base URL ``http://HOST:PORT/``, paths as in
Stock2Shop's API document: ``/v1/...``).

Every request first passes the per-client rate limit (worker.sandbox.stock2shop.access; the client is the
user a request names — by its token, expired or not, or by the username it authenticates as — else its
address).  Errors are ``{"errors": ["<message>"]}``:

========================================  ======  ========================================================
request                                   status  body
========================================  ======  ========================================================
over ``max_rps`` for its client           429     errors; header ``Retry-After: <seconds>``
``POST /v1/users/authenticate``           200     ``{"system_user": {..., "token": "…"}}``
  ``{"system_user_auth": {username,       401     errors ["invalid username or password"]
  password}}`` wrong / malformed          400
``GET /v1/users/valid_token/{token}``     200     ``{"system_user": {...}}``; 401 when expired or unknown
any other call without ``?token=``        401     errors ["token required"]
  with an unknown token                   401     errors ["invalid token"]
  with an expired token                   401     errors ["token expired"]  (authenticate again)
``GET /v1/sources?token=``                200     ``{"system_sources": [{"id": SOURCE_ID, ...}]}``
                                                  (``wms-relay check``'s request)
``POST /v1/products/queue?token=&source_id=``
  queued (stock2shop.products)            200     ``{"system_products": {"sync_product": N}}``
  source_id missing / not this client's   400     errors
  body not a products queue               400     errors; nothing queued
another path or verb                      404     errors
========================================  ======  ========================================================
"""
from __future__ import annotations

import hmac
import re
import time
from typing import Callable, Mapping

from worker.sandbox.exchange import Reply, Request
from worker.sandbox.server import SandboxApi
from worker.sandbox.stock2shop.access import VALID, ClientRateLimit, TokenBook
from worker.sandbox.stock2shop.products import BadQueue, Stock2ShopProducts, parse_queue

_VALID_TOKEN_PATH = re.compile(r"^/v1/users/valid_token/([^/]+)/?$")
_TOKEN_REFUSALS = {"missing": "token required", "unknown": "invalid token", "expired": "token expired"}
CLIENT_ID = 1


def refused(status: int, message: str, headers: tuple = ()) -> Reply:
    return Reply(status, {"errors": [message]}, headers=headers)


class Stock2ShopApi(SandboxApi):
    name = "Stock2Shop"
    prefix = "/v1/"
    hidden = frozenset({"token", "password"})

    def __init__(self, *, username: str, password: str, source_id: str, token_ttl: float = 3600.0,
                 max_rps: float = 1.0, clock: Callable[[], float] = time.time,
                 new_token: Callable[[], str] | None = None) -> None:
        self._username, self._password, self.source_id = username, password, str(source_id)
        self.tokens = TokenBook(ttl=token_ttl, clock=clock, **({"new_token": new_token} if new_token else {}))
        self.rate_limit = ClientRateLimit(max_rps=max_rps, clock=clock)
        self.products = Stock2ShopProducts(clock=clock)

    def snapshot(self) -> dict:
        """The products' state (``stock``, ``products``, ``ignored``, ``updates``, ``queued``), the tokens'
        (``tokens_issued``, ``authentications``, ``token_refusals``) and the limit's (``max_rps``,
        ``rate_limited``)."""
        return {**self.products.snapshot(), **self.tokens.snapshot(), **self.rate_limit.snapshot()}

    def reset(self) -> None:
        self.products.reset()
        self.tokens.reset()
        self.rate_limit.reset()

    def logged_path(self, path: str) -> str:
        return _VALID_TOKEN_PATH.sub("/v1/users/valid_token/[token]", path)

    def answer(self, request: Request) -> Reply:
        admitted, wait = self.rate_limit.admit(self._client(request))
        if not admitted:
            return refused(429, f"Too Many Requests: at most {self.rate_limit.max_rps:g} request(s) per "
                                "second per client", headers=(("Retry-After", str(wait)),))
        path, method = request.path, request.method
        if (method, path.rstrip("/")) == ("POST", "/v1/users/authenticate"):
            return self._authenticate(request)
        if method == "GET" and (match := _VALID_TOKEN_PATH.match(path)):
            verdict, _ = self.tokens.check(match.group(1))
            return Reply(200, {"system_user": self._user(match.group(1))}) if verdict == VALID \
                else refused(401, _TOKEN_REFUSALS[verdict])
        query = request.query_params()
        verdict, _ = self.tokens.check(query.get("token"))
        if verdict != VALID:
            return refused(401, _TOKEN_REFUSALS[verdict])
        if (method, path.rstrip("/")) == ("GET", "/v1/sources"):
            return Reply(200, {"system_sources": [{
                "id": self.source_id, "description": "Sandbox source", "sync_token": "0",
                "client_id": CLIENT_ID, "type": "sandbox", "active": 1, "source_id": None}]})
        if (method, path.rstrip("/")) == ("POST", "/v1/products/queue"):
            return self._queue(request, query)
        return self.unknown_path(path)

    def _client(self, request: Request) -> str:
        owner = self.tokens.owner(request.query_params().get("token"))
        if owner is None and (match := _VALID_TOKEN_PATH.match(request.path)):
            owner = self.tokens.owner(match.group(1))
        if owner is None and request.path.rstrip("/") == "/v1/users/authenticate":
            try:
                owner = str(request.json()["system_user_auth"]["username"])
            except (ValueError, KeyError, TypeError):
                owner = None
        return f"user:{owner}" if owner is not None else f"address:{request.client}"

    def _authenticate(self, request: Request) -> Reply:
        try:
            auth = request.json()["system_user_auth"]
            username, password = auth["username"], auth["password"]
        except (ValueError, KeyError, TypeError):
            return refused(400, "the body must be {\"system_user_auth\": {\"username\": …, \"password\": …}}")
        if not isinstance(username, str) or not isinstance(password, str):
            return refused(400, "username and password must be strings")
        right = hmac.compare_digest(username.encode(), self._username.encode()) \
            & hmac.compare_digest(password.encode(), self._password.encode())
        if not right:
            return refused(401, "invalid username or password")
        return Reply(200, {"system_user": self._user(self.tokens.issue(username))})

    def _user(self, token: str) -> dict:
        return {"id": 1, "username": self._username, "name": "Sandbox", "surname": "User",
                "email": "sandbox@example.invalid", "client_id": CLIENT_ID, "client_name": "Sandbox client",
                "active": 1, "admin": 0, "token": token, "roles": [], "role_description": ""}

    def _queue(self, request: Request, query: Mapping[str, str]) -> Reply:
        source_id = query.get("source_id")
        if not source_id:
            return refused(400, "source_id is required")
        if source_id != self.source_id:
            return refused(400, f"source_id {source_id} is not a source of this client")
        try:
            products = parse_queue(request.json(), source_id)
        except BadQueue as exc:
            return refused(400, str(exc))
        except ValueError:
            return refused(400, "the body is not JSON")
        return Reply(200, {"system_products": {"sync_product": self.products.process(products)}})

    def server_error(self, message: str) -> Reply:
        return refused(500, message)

    def throttled(self, message: str, retry_after: int) -> Reply:
        return refused(429, message, headers=(("Retry-After", str(retry_after)),))

    def malformed(self, message: str) -> Reply:
        return refused(400, message)

    def unknown_path(self, path: str) -> Reply:
        return refused(404, f"no Stock2Shop endpoint at {self.logged_path(path)}")
