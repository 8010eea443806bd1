"""The StockTrim client (StockTrim's "StockTrim API" help article: Basic Workflow, Authentication; its
OpenAPI document: ``SetInventoryRequest``, ``Inventory``, ``SalesOrderWithLineItemsRequestDto``,
``SalesOrderResponseDto``, ``ProblemDetails``).

``POST {STOCKTRIM_BASE_URL}api/Inventory`` with headers ``api-auth-id``/``api-auth-signature`` and
``{"inventory": [{"productId", "locationCode", "stockOnHand"}], "updateOverallAllOnHandToBeSumOfLocation":
true}`` sets stock on hand per location (and the product's overall level to their sum).  After inventory
changed, :class:`worker.destinations.stocktrim.forecast.ForecastRuns` (the scheduler) triggers
``POST api/RunForecastCalculations`` now and then — never per event.  ``POST api/SalesOrdersBulk`` sends a
shipped dispatch as one sales order (worker.destinations.stocktrim.sales_orders), after reading ``GET
api/SalesOrders?productId=`` where an earlier answer was lost; delivered sales orders mark the demand changed
for the forecast run as inventory does.  The signature is scrubbed from every error text."""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Mapping

import requests

from worker.destinations.json_api import JsonApi, Reply
from worker.destinations.stocktrim.classification import classify, messages
from worker.destinations.stocktrim.sales_orders import (
    SalesOrder, found_references, missing_lines, order_body, summary)
from worker.errors import DestinationError, PermanentError, TransientError, UnconfirmedError
from worker.settings import Settings

INVENTORY_PATH = "api/Inventory"
FORECAST_PATH = "api/RunForecastCalculations"
STATUS_PATH = "api/ProcessingStatus"
SALES_ORDERS_BULK_PATH = "api/SalesOrdersBulk"
SALES_ORDERS_PATH = "api/SalesOrders"
PRODUCTS_PATH = "api/Products"
# Set after every delivered inventory post and sales order: worker.destinations.stocktrim.forecast runs the
# forecast when it is newer than the last run.
INVENTORY_CHANGED_KEY = "wms:stocktrim:forecast:changed_at"


class StockTrimClient:
    """Calls StockTrim.  Thread-safe: one per process.  With ``redis``, a delivered inventory post marks
    the inventory changed for the forecast run (INVENTORY_CHANGED_KEY)."""

    def __init__(self, settings: Settings, *, redis=None, clock: Callable[[], float] = time.time,
                 session: requests.Session | None = None) -> None:
        settings.require_credentials("stocktrim")
        if not settings.stocktrim_base_url:
            raise PermanentError("STOCKTRIM_BASE_URL is not set", destination="stocktrim")
        self._api = JsonApi("stocktrim", settings.stocktrim_base_url, clock=clock, session=session,
                            timeout=(settings.connect_timeout, settings.read_timeout),
                            secrets=[settings.stocktrim_auth_signature])
        self._headers = {"api-auth-id": settings.stocktrim_auth_id,
                         "api-auth-signature": settings.stocktrim_auth_signature}
        self._locations = settings.stocktrim_locations
        self._clock = clock
        self._redis = redis

    def __repr__(self) -> str:
        return f"StockTrimClient(base_url={self._api.base_url!r})"

    def close(self) -> None:
        self._api.close()

    def location_of(self, warehouse_id: str) -> str:
        """The StockTrim location code of a WMS warehouse (STOCKTRIM_LOCATIONS)."""
        location = self._locations.get(warehouse_id)
        if location is None:
            raise PermanentError(f"warehouse {warehouse_id!r} is not in STOCKTRIM_LOCATIONS",
                                 destination="stocktrim", operation="set_inventory")
        return location

    def set_stock_on_hand(self, warehouse_id: str, product_id: str, quantity: Any) -> Reply:
        """One product's stock on hand at the warehouse's location."""
        return self.set_inventory([{"productId": product_id, "locationCode": self.location_of(warehouse_id),
                                    "stockOnHand": quantity}])

    def set_inventory(self, items: Iterable[Mapping[str, Any]]) -> Reply:
        """``POST api/Inventory`` with ``items`` (each productId, locationCode, stockOnHand)."""
        items = [dict(item) for item in items]
        reply = self._api.call("set_inventory", "POST", INVENTORY_PATH, headers=self._headers,
                               body={"inventory": items, "updateOverallAllOnHandToBeSumOfLocation": True},
                               classify=classify, messages=messages)
        self._mark_changed()
        return Reply(reply.destination, reply.operation, reply.status, None, reply.latency_seconds,
                     kept={"items": len(items)})

    def _mark_changed(self) -> None:
        if self._redis is not None:
            self._redis.set(INVENTORY_CHANGED_KEY, f"{self._clock():.3f}")

    def sales_orders_of(self, product_id: str) -> Reply:
        """``GET api/SalesOrders?productId=``: the product's sales orders (``SalesOrderResponseDto`` list)."""
        return self._api.call("read_sales_orders", "GET", SALES_ORDERS_PATH, headers=self._headers,
                              params={"productId": product_id}, classify=classify, messages=messages)

    def create_sales_order(self, body: dict) -> Reply:
        """``POST api/SalesOrdersBulk`` with one ``SalesOrderWithLineItemsRequestDto``."""
        return self._api.call("sales_order", "POST", SALES_ORDERS_BULK_PATH, headers=self._headers,
                              body=body, classify=classify, messages=messages)

    def set_product(self, product: Mapping[str, Any]) -> Reply:
        """``POST api/Products`` with one ``ProductsRequestDto`` (StockTrim creates or updates it by
        productId)."""
        reply = self._api.call("set_product", "POST", PRODUCTS_PATH, headers=self._headers,
                               body=dict(product), classify=classify, messages=messages)
        return Reply(reply.destination, reply.operation, reply.status, None, reply.latency_seconds,
                     kept={"productId": product.get("productId")})

    def deliver_sales_order(self, order: SalesOrder) -> Reply:
        """Send ``order`` — all of its lines, or, when an earlier answer was lost (``read_back_first``), only
        those StockTrim's sales orders do not show yet: StockTrim is not known to refuse a repeated
        externalReferenceId, so a blind resend could record a line twice.  Every line there already: a
        ``duplicate`` reply, nothing sent.  A read StockTrim answers "later" (TransientError) is tried again
        later; a read that fails otherwise (its answer lost, refused) raises UnconfirmedError: the delivery
        is ``uncertain`` for a person, never resent on a guess."""
        sent, found, latency = list(order.lines), None, 0.0
        if order.read_back_first:
            try:
                answers = [self.sales_orders_of(product) for product in order.products]
            except TransientError:
                raise
            except DestinationError as exc:
                raise UnconfirmedError(
                    f"its earlier answer was lost and reading StockTrim's sales orders back failed: {exc}",
                    destination="stocktrim", operation="sales_order", status=exc.status) from exc
            latency = sum(a.latency_seconds for a in answers)
            found = found_references(a.data for a in answers)
            sent = missing_lines(order, found)
            if not sent:
                status = answers[-1].status if answers else 200
                return Reply("stocktrim", "sales_order", status, None, latency,
                             kept={"sales_order": summary(order, sent, read_back=True)}, duplicate=True)
        reply = self.create_sales_order(order_body(order, sent))
        self._mark_changed()
        return Reply(reply.destination, reply.operation, reply.status, None, latency + reply.latency_seconds,
                     kept={"sales_order": summary(order, sent, read_back=found is not None)})

    def run_forecast(self) -> Reply:
        """``POST api/RunForecastCalculations``: StockTrim recomputes its forecasts (takes minutes)."""
        return self._api.call("run_forecast", "POST", FORECAST_PATH, headers=self._headers,
                              classify=classify, messages=messages)

    def processing_status(self) -> Reply:
        return self._api.call("processing_status", "GET", STATUS_PATH, headers=self._headers,
                              classify=classify, messages=messages)

    def check(self) -> str:
        """``GET api/ProcessingStatus``: needs both headers, reads nothing of the tenant's data."""
        reply = self.processing_status()
        data = reply.data if isinstance(reply.data, dict) else {}
        busy = " (a forecast run is processing)" if data.get("isProcessing") else ""
        return f"credentials accepted (HTTP {reply.status}){busy}"
