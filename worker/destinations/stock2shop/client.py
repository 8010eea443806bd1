"""The Stock2Shop client (Stock2Shop's API document: Using the API, Rate Limits, Users, Sources, Products,
Tutorials — "Push products").

``POST {STOCK2SHOP_BASE_URL}v1/users/authenticate`` with ``{"system_user_auth": {"username", "password"}}``
answers ``system_user.token``; every other call carries ``?token=``.  Stock levels go through
``POST v1/products/queue?token=…&source_id=…``, one queued product per count, each the document's
"Example (minimum required information)" plus the count: from the artno's row in Stock2Shop's catalog
(worker.store.catalog), ``source.source_product_code`` (the row's product), ``source.product_active``
(its ``active``), ``product.title`` (its title) and ``product.variants`` — one object, as in the
document — with ``source_variant_code`` and ``sku`` (the row's variant; the product's code when the row
names none) and the count as the variant's ``qty`` and in its ``qty_availability`` for the warehouse's
Stock2Shop location (STOCK2SHOP_LOCATIONS, the entry's ``description``).  Which of the two a channel reads
is the merchant's Stock2Shop setting (a channel's ``qty_availability``: docs/destinations.md, "Stock2Shop").

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
from worker.store.catalog import CatalogRow

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
        # Every request beyond a send's first (a login, the resend after it) waits for a slot of the shared
        # rate limit: Stock2Shop counts them all against its 1 request/s (worker.flow sets this; the gate
        # already let the first through).  Without it, an expired token met at 1 request/s is a loop: the
        # call (401), the login at once (429), the next call with the old token...
        self.pace: Callable[[], None] = lambda: None
        self.tokens = (SharedToken(redis, self._login, lock_seconds=wait, wait_seconds=wait)
                       if redis is not None else _LocalToken(self._login))

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
    def _login(self) -> str:
        """A paced login: it waits for a slot, and so does whatever request follows it."""
        self.pace()
        token = self.authenticate()
        self.pace()
        return token

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

    def queue_stock_level(self, warehouse_id: str, product: CatalogRow, quantity: Any) -> Reply:
        """One variant's quantity at the warehouse, through the products queue (``product``: its
        catalog row)."""
        return self.queue_products([self.stock_level(self.location_of(warehouse_id), product, quantity)])

    def stock_level(self, location: str, product: CatalogRow, quantity: Any) -> dict:
        """One entry of ``system_products``: the catalog row's product, with its variant's quantity at
        ``location``.  A row without a title cannot be sent (the document's minimum has one)."""
        if not product.title:
            raise PermanentError(f"artno {product.artno}'s catalog row has no title (Stock2Shop's minimum "
                                 "product has one)", destination="stock2shop", operation="queue_products")
        variant = product.variant_code or product.product_code
        return {"source": {"source_id": self.source_id, "source_product_code": product.product_code,
                           "product_active": product.active or "true", "sync_token": "0", "fetch_token": "0"},
                "product": {"title": product.title,
                            "variants": {"source_variant_code": variant, "sku": variant, "qty": quantity,
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
        self.pace()
        try:
            return call(token)
        except PermanentError as exc:
            if exc.status != REFUSED_TOKEN:
                raise
            raise TransientError("a freshly issued token was refused too", destination="stock2shop",
                                 operation=exc.operation, status=exc.status,
                                 error_messages=exc.error_messages,
                                 latency_seconds=exc.latency_seconds) from None
