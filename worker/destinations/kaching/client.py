"""The ka-ching stock import client (ka-ching's import integration page "Stock", section "The Stock Import
Endpoint"; "Authentication").

``POST {KACHING_BASE_URL}imports/stock?account=…&integration=…&apikey=…[&adjustment=true]`` with
``{"<stock_location_id>": {"<product_id>": <count>}}``: the counts replace the stock, or with
``adjustment=true`` are added to it.  The three auth values are query parameters, so the URL carries the
api key: it is scrubbed from every error text, and transport errors are described without their URL.
The answers are read by :func:`worker.destinations.kaching.classification.classify`.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping

import requests

from worker.destinations.json_api import JsonApi, Reply
from worker.destinations.kaching.classification import classify, messages
from worker.errors import PermanentError
from worker.settings import Settings

STOCK_PATH = "imports/stock"


class KachingClient:
    """Calls ka-ching's stock import.  Thread-safe: one per process."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time,
                 session: requests.Session | None = None) -> None:
        settings.require_credentials("kaching")
        if not settings.kaching_base_url:
            raise PermanentError("KACHING_BASE_URL is not set", destination="kaching")
        self._api = JsonApi("kaching", settings.kaching_base_url, clock=clock, session=session,
                            timeout=(settings.connect_timeout, settings.read_timeout),
                            secrets=[settings.kaching_api_key])
        self._auth = {"account": settings.kaching_account, "integration": settings.kaching_integration,
                      "apikey": settings.kaching_api_key}
        self._locations = settings.kaching_locations

    def __repr__(self) -> str:
        return f"KachingClient(base_url={self._api.base_url!r})"

    def close(self) -> None:
        self._api.close()

    def location_of(self, warehouse_id: str) -> str:
        """The ka-ching stock location of a WMS warehouse (KACHING_LOCATIONS)."""
        location = self._locations.get(warehouse_id)
        if location is None:
            raise PermanentError(f"warehouse {warehouse_id!r} is not in KACHING_LOCATIONS",
                                 destination="kaching", operation="import_stock")
        return location

    def import_stock(self, warehouse_id: str, artno: str, quantity: Any, *,
                     adjustment: bool = False) -> Reply:
        """One count of one product at the warehouse's location: replaces the stock, or (``adjustment``)
        is added to it."""
        return self.post_import({self.location_of(warehouse_id): {artno: quantity}}, adjustment=adjustment)

    def post_import(self, stock: Mapping[str, Mapping[str, Any]], *, adjustment: bool = False) -> Reply:
        """``POST imports/stock`` with ``stock`` as it is ({location: {product: count}})."""
        params = dict(self._auth)
        if adjustment:
            params["adjustment"] = "true"
        reply = self._api.call("import_stock", "POST", STOCK_PATH, params=params, body=dict(stock),
                               classify=classify, messages=messages)
        data = reply.data if isinstance(reply.data, dict) else {}
        return Reply(reply.destination, reply.operation, reply.status, reply.data, reply.latency_seconds,
                     kept={"message": str(data.get("message", ""))[:200]} if data.get("message") else {})

    def check(self) -> str:
        """An empty import ``{}``: checks the URL and all three credentials and changes nothing."""
        reply = self.post_import({})
        message = reply.data.get("message") if isinstance(reply.data, dict) else None
        return f"credentials accepted (HTTP {reply.status}: {message or 'OK'})"
