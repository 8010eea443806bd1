"""The Stock2Shop client (Stock2Shop's API document: Using the API, Rate Limits, Users, Sources, Products,
Tutorials — "Push products").

``POST {STOCK2SHOP_BASE_URL}v1/users/authenticate`` with ``{"system_user_auth": {"username", "password"}}``
answers ``system_user.token``; every other call carries ``?token=``.  Stock levels go through
``POST v1/products/queue?token=…&source_id=…`` as one product per count: the WMS artno is the
``source_product_code``, the variant's ``source_variant_code`` and its ``sku``; the warehouse's
Stock2Shop location (STOCK2SHOP_LOCATIONS) is the ``description`` of its ``qty_availability``.  No title is
sent (docs/destinations.md, "Is a product title required?").

The token is shared by every worker (:mod:`worker.destinations.stock2shop.tokens`): a 401 on a call means
"log in again" — once for all workers — and the call is sent once more with the new token; a second
401 is a transient failure (the next attempt starts over).  The password and the token are scrubbed from
every error text.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Mapping

import requests

from worker.destinations.json_api import JsonApi, Reply
from worker.destinations.stock2shop.classification import REFUSED_TOKEN, classify, messages
from worker.destinations.stock2shop.tokens import SharedToken
from worker.errors import PermanentError, TransientError
from worker.settings import Settings

AUTHENTICATE_PATH = "v1/users/authenticate"
QUEUE_PATH = "v1/products/queue"
SOURCES_PATH = "v1/sources"


class _LocalToken:
    """The token for a client without Redis (``wms-relay check``): this process's own login."""

    def __init__(self, login: Callable[[], str]) -> None:
        self._login, self._token = login, ""

    def current(self) -> str:
        return self._token or self.renew(stale="")

    def renew(self, *, stale: str) -> str:
        self._token = self._login()
        return self._token


class Stock2ShopClient:
    """Calls Stock2Shop.  Thread-safe: one per process; the token is shared through ``redis``."""

    def __init__(self, settings: Settings, *, redis=None, clock: Callable[[], float] = time.time,
                 session: requests.Session | None = None) -> None:
        settings.require_credentials("stock2shop")
        if not settings.stock2shop_base_url:
            raise PermanentError("STOCK2SHOP_BASE_URL is not set", destination="stock2shop")
        self._api = JsonApi("stock2shop", settings.stock2shop_base_url, clock=clock, session=session,
                            timeout=(settings.connect_timeout, settings.read_timeout),
                            secrets=[settings.stock2shop_password])
        self._username, self._password = settings.stock2shop_username, settings.stock2shop_password
        self.source_id = settings.stock2shop_source_id
        self._locations = settings.stock2shop_locations
        wait = settings.connect_timeout * 2 + settings.read_timeout + 5
        self.tokens = (SharedToken(redis, self.authenticate, lock_seconds=wait, wait_seconds=wait)
                       if redis is not None else _LocalToken(self.authenticate))

    def __repr__(self) -> str:
        return f"Stock2ShopClient(base_url={self._api.base_url!r})"

    def close(self) -> None:
        self._api.close()

    def location_of(self, warehouse_id: str) -> str:
        """The Stock2Shop warehouse description of a WMS warehouse (STOCK2SHOP_LOCATIONS)."""
        location = self._locations.get(warehouse_id)
        if location is None:
            raise PermanentError(f"warehouse {warehouse_id!r} is not in STOCK2SHOP_LOCATIONS",
                                 destination="stock2shop", operation="queue_products")
        return location

    # -- the calls ------------------------------------------------------------------------------------
    def authenticate(self) -> str:
        """Log in; the new token.  A refusal is permanent (wrong STOCK2SHOP_USERNAME/PASSWORD)."""
        login = {"system_user_auth": {"username": self._username, "password": self._password}}
        reply = self._api.call("authenticate", "POST", AUTHENTICATE_PATH, classify=classify,
                               messages=messages, body=login)
        data = reply.data if isinstance(reply.data, dict) else {}
        user = data.get("system_user")
        token = user.get("token") if isinstance(user, dict) else None
        if not isinstance(token, str) or not token:
            raise TransientError("the authenticate answer carried no token", destination="stock2shop",
                                 operation="authenticate", status=reply.status)
        return token

    def queue_stock_level(self, warehouse_id: str, artno: str, quantity: Any) -> Reply:
        """One product's quantity at the warehouse, through the products queue."""
        return self.queue_products([self.stock_level(self.location_of(warehouse_id), artno, quantity)])

    def stock_level(self, location: str, artno: str, quantity: Any) -> dict:
        """One entry of ``system_products``: the product ``artno`` with its quantity at ``location``."""
        return {"source": {"source_id": self.source_id, "source_product_code": artno,
                           "product_active": "true", "sync_token": "0", "fetch_token": "0"},
                "product": {"variants": {"source_variant_code": artno, "sku": artno,
                                         "qty_availability": [{"description": location, "qty": quantity}]}}}

    def queue_products(self, products: Iterable[Mapping[str, Any]]) -> Reply:
        """``POST v1/products/queue`` with ``products``; the answer's ``sync_product`` count is kept."""
        body = {"system_products": [dict(product) for product in products]}
        reply = self._with_token(lambda token: self._api.call(
            "queue_products", "POST", QUEUE_PATH, params={"token": token, "source_id": self.source_id},
            body=body, classify=classify, messages=messages, secrets=[token]))
        data = reply.data if isinstance(reply.data, dict) else {}
        queued = (data.get("system_products") or {}).get("sync_product") \
            if isinstance(data.get("system_products"), dict) else None
        return Reply(reply.destination, reply.operation, reply.status, None, reply.latency_seconds,
                     kept={} if queued is None else {"sync_product": queued})

    def sources(self) -> list:
        """``GET v1/sources``: the client's sources."""
        reply = self._with_token(lambda token: self._api.call(
            "sources", "GET", SOURCES_PATH, params={"token": token}, classify=classify, messages=messages,
            secrets=[token]))
        data = reply.data if isinstance(reply.data, dict) else {}
        return data.get("system_sources") if isinstance(data.get("system_sources"), list) else []

    def check(self) -> str:
        """Log in and list the sources (the "Push products" tutorial's step 2); STOCK2SHOP_SOURCE_ID must
        be among them."""
        ids = [str(source.get("id")) for source in self.sources() if isinstance(source, dict)]
        if self.source_id not in ids:
            raise PermanentError(f"STOCK2SHOP_SOURCE_ID {self.source_id} is not one of this user's sources "
                                 f"({', '.join(ids) or 'none'})", destination="stock2shop",
                                 operation="sources")
        return f"credentials accepted; source {self.source_id} listed"

    def _with_token(self, call: Callable[[str], Reply]) -> Reply:
        token = self.tokens.current()
        try:
            return call(token)
        except PermanentError as exc:
            if exc.status != REFUSED_TOKEN:
                raise
        token = self.tokens.renew(stale=token)  # expired (or revoked): one login for every worker
        try:
            return call(token)
        except PermanentError as exc:
            if exc.status != REFUSED_TOKEN:
                raise
            raise TransientError("a freshly issued token was refused too", destination="stock2shop",
                                 operation=exc.operation, status=exc.status,
                                 error_messages=exc.error_messages,
                                 latency_seconds=exc.latency_seconds) from None
