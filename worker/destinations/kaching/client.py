"""The ka-ching stock import client (ka-ching's import integration page "Stock", section "The Stock Import
Endpoint"; "Authentication").

``POST {KACHING_BASE_URL}imports/stock?account=…&integration=…&apikey=…[&adjustment=true]`` with
``{"<stock_location_id>": {"<product_id>": <count>}}`` — a variant's count as ``{"<stock_location_id>":
{"<product_id>": {"<variant_id>": <count>}}}`` — : the counts replace the stock, or with
``adjustment=true`` are added to it.  The three auth values are query parameters, so the URL carries the
api key: it is scrubbed from every error text, and transport errors are described without their URL.
The answers are read by :func:`worker.destinations.kaching.classification.classify`.

A 200 means "queued", not "applied": "Upon success a HTTP 200 OK reponse will be given with body looking
something like this: {"status": "OK", "message": "Import of 2 stock value(s) initiated"}. The number of
values that has been parsed from the request will be noted in the message".  The import then runs
asynchronously.  So the client compares that number with the values it sent (:func:`initiated`): fewer
raise :class:`worker.errors.UnconfirmedError` with ka-ching's message — the counts are parked
``uncertain`` for a person.  A message without a number is taken as it comes (delivered; the check is
skipped).  What it cannot see: a value ka-ching parsed and then failed to apply (an unknown stock
location) — its result is in ka-ching's queue logs only (docs/destinations.md, "ka-ching").
"""
from __future__ import annotations

import re
import time
from typing import Any, Callable, Mapping

import requests

from worker.destinations.json_api import JsonApi, Reply
from worker.destinations.kaching.classification import classify, messages
from worker.errors import PermanentError, UnconfirmedError
from worker.settings import Settings

STOCK_PATH = "imports/stock"
_INITIATED = re.compile(r"\bof\s+(\d+)\s+stock\s+value", re.IGNORECASE)


def values_in(stock: Mapping[str, Mapping[str, Any]]) -> int:
    """How many stock values an import body carries (a product's count, or each of its variants')."""
    return sum(len(count) if isinstance(count, Mapping) else 1
               for counts in stock.values() for count in counts.values())


def initiated(message: Any) -> int | None:
    """The N of "Import of N stock value(s) initiated" (None when the message names no number)."""
    found = _INITIATED.search(str(message or ""))
    return int(found.group(1)) if found else None


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

    def import_stock(self, warehouse_id: str, product_id: str, quantity: Any, *,
                     variant_id: str | None = None, adjustment: bool = False) -> Reply:
        """One count of one product (or of one of its variants) at the warehouse's location: replaces the
        stock, or (``adjustment``) is added to it."""
        count = quantity if variant_id is None else {variant_id: quantity}
        return self.post_import({self.location_of(warehouse_id): {product_id: count}}, adjustment=adjustment)

    def post_import(self, stock: Mapping[str, Mapping[str, Any]], *, adjustment: bool = False) -> Reply:
        """``POST imports/stock`` with ``stock`` as it is ({location: {product: count or {variant: count}}});
        an answer that initiates fewer values than sent raises UnconfirmedError (ka-ching's message in
        it)."""
        params = dict(self._auth)
        if adjustment:
            params["adjustment"] = "true"
        reply = self._api.call("import_stock", "POST", STOCK_PATH, params=params, body=dict(stock),
                               classify=classify, messages=messages)
        data = reply.data if isinstance(reply.data, dict) else {}
        message = str(data.get("message", ""))[:200]
        sent, parsed = values_in(stock), initiated(message)
        if parsed is not None and parsed < sent:
            raise UnconfirmedError(f"ka-ching initiated {parsed} of the {sent} stock value(s) sent",
                                   destination="kaching", operation="import_stock", status=reply.status,
                                   error_messages=[message], latency_seconds=reply.latency_seconds)
        kept = {"message": message} if message else {}
        if parsed is not None:
            kept["values_sent"] = sent
        return Reply(reply.destination, reply.operation, reply.status, reply.data, reply.latency_seconds,
                     kept=kept)

    def check(self) -> str:
        """An empty import ``{}``: checks the URL and all three credentials and changes nothing."""
        reply = self.post_import({})
        message = reply.data.get("message") if isinstance(reply.data, dict) else None
        return f"credentials accepted (HTTP {reply.status}: {message or 'OK'})"
