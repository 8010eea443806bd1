"""The fake StockTrim (``wms-relay sandbox --api stocktrim``; base URL ``http://HOST:PORT/``, paths as
in StockTrim's OpenAPI document: ``/api/...``).

Every request carries the headers ``api-auth-id`` and ``api-auth-signature`` (StockTrim's
"Authentication" section), compared with the configured values.  Errors are RFC 7807 ProblemDetails
(``type``, ``title``, ``status``, ``detail``; validation errors add ``errors``):

===================================  ======  =====================================================
request                              status  body
===================================  ======  =====================================================
a header missing                     401     ProblemDetails, detail "Invalid Authorization Headers"
a header wrong                       401     ProblemDetails, detail "Invalid auth Id or signature"
``POST /api/Inventory``, valid       200     ``{"id": 0, "message": "Inventory set for N item(s)",
                                             "supplier": {...}, "purchaseOrderLineItems": []}``
  a bad item (stocktrim.inventory)   400     ValidationProblemDetails, ``errors`` by field path;
                                             nothing applied
``POST /api/SalesOrdersBulk``        201     the first stored line as a ``SalesOrderResponseDto``;
                                             every line stored, a repeated externalReferenceId
                                             too (stocktrim.sales); a bad line: 400, nothing stored
``GET /api/SalesOrders?productId=``  200     the product's lines (``SalesOrderResponseDto`` list)
``DELETE /api/SalesOrders/Range``    200     the lines of fromDate..toDate (and productId) removed
``POST /api/Products``               201/200 ``ProductsResponseDto``: upserted by productId (new/known)
``GET /api/Products?code=``          200     the products (that one)
``POST /api/RunForecastCalculations``  201   empty; the run is recorded
``GET /api/ProcessingStatus``        200     ``{"id", "isProcessing", "percentageComplete",
                                             "statusMessage"}`` (``wms-relay check``'s request)
another path or verb                 404     ProblemDetails
===================================  ======  =====================================================

StockTrim does not rate-limit (its client guide, "No Rate Limiting"): only injected faults answer 429.
"""
from __future__ import annotations

import hmac
import time
from typing import Any, Callable, Mapping

from worker.sandbox.exchange import Reply, Request
from worker.sandbox.server import SandboxApi
from worker.sandbox.stocktrim.inventory import InvalidInventory, StockTrimInventory, parse_inventory
from worker.sandbox.stocktrim.sales import SalesLedger, parse_date, parse_product, parse_sales_order

_TYPES = {400: "https://tools.ietf.org/html/rfc7231#section-6.5.1",
          401: "https://tools.ietf.org/html/rfc7235#section-3.1",
          404: "https://tools.ietf.org/html/rfc7231#section-6.5.4",
          429: "https://tools.ietf.org/html/rfc6585#section-4",
          500: "https://tools.ietf.org/html/rfc7231#section-6.6.1"}
_TITLES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
           500: "Internal Server Error"}


def problem(status: int, detail: str, *, headers: tuple = (), **extra: Any) -> Reply:
    """An RFC 7807 ProblemDetails answer."""
    body = {"type": _TYPES.get(status), "title": _TITLES.get(status, "Error"), "status": status,
            "detail": detail, **extra}
    return Reply(status, body, headers=headers)


class StockTrimApi(SandboxApi):
    name = "StockTrim"
    prefix = "/api/"
    hidden = frozenset({"api-auth-signature"})

    def __init__(self, *, auth_id: str, auth_signature: str, clock: Callable[[], float] = time.time,
                 forecast_seconds: float = 60.0) -> None:
        self._auth = (auth_id, auth_signature)
        self.inventory = StockTrimInventory(clock=clock, forecast_seconds=forecast_seconds)
        self.sales = SalesLedger()

    def snapshot(self) -> dict:
        return {**self.inventory.snapshot(), **self.sales.snapshot()}

    def reset(self) -> None:
        self.inventory.reset()
        self.sales.reset()

    def logged_params(self, request: Request) -> Mapping[str, Any]:
        return {**super().logged_params(request), "api-auth-id": request.header("api-auth-id")}

    def answer(self, request: Request) -> Reply:
        auth_id, signature = request.header("api-auth-id"), request.header("api-auth-signature")
        if not auth_id or not signature:
            return problem(401, "Invalid Authorization Headers")
        if not (hmac.compare_digest(auth_id.encode(), self._auth[0].encode())
                & hmac.compare_digest(signature.encode(), self._auth[1].encode())):
            return problem(401, "Invalid auth Id or signature")
        route = (request.method, request.path.rstrip("/").lower())
        if route == ("POST", "/api/inventory"):
            return self._with_body(request, parse_inventory, self._set_inventory)
        if route == ("POST", "/api/runforecastcalculations"):
            self.inventory.run_forecast()
            return Reply(201)
        if route == ("GET", "/api/processingstatus"):
            return Reply(200, self.inventory.processing_status())
        if route == ("POST", "/api/salesordersbulk"):
            return self._with_body(request, parse_sales_order, self._add_sales)
        if route == ("GET", "/api/salesorders"):
            return Reply(200, self.sales.of_product(request.query_params().get("productId") or None))
        if route == ("DELETE", "/api/salesorders/range"):
            return self._delete_range(request.query_params())
        if route == ("POST", "/api/products"):
            return self._with_body(request, parse_product, self._upsert_product)
        if route == ("GET", "/api/products"):
            return Reply(200, self.sales.products(request.query_params().get("code") or None))
        return self.unknown_path(request.path)

    @staticmethod
    def _with_body(request: Request, parse, apply) -> Reply:
        try:
            body = request.json()
        except ValueError:
            return problem(400, "The request body is not valid JSON.",
                           title="One or more validation errors occurred.",
                           errors={"$": ["The request body is not valid JSON."]})
        try:
            parsed = parse(body)
        except InvalidInventory as exc:  # a bad inventory item, sales order line or product
            return problem(400, "See errors.", title="One or more validation errors occurred.",
                           errors=exc.errors)
        return apply(parsed)

    def _add_sales(self, lines: list) -> Reply:
        stored = self.sales.add(lines)
        return Reply(201, stored[0] if stored else None)

    def _upsert_product(self, product: dict) -> Reply:
        stored, created = self.sales.upsert_product(product)
        return Reply(201 if created else 200, stored)

    def _delete_range(self, params: Mapping[str, str]) -> Reply:
        since, until = parse_date(params.get("fromDate")), parse_date(params.get("toDate"))
        if since is None or until is None:
            return problem(400, "See errors.", title="One or more validation errors occurred.",
                           errors={name: ["The value is required and must be a date-time."]
                                   for name in ("fromDate", "toDate")
                                   if parse_date(params.get(name)) is None})
        self.sales.delete_range(since, until, params.get("productId") or None)
        return Reply(200)

    def _set_inventory(self, parsed) -> Reply:
        count = self.inventory.set(parsed)
        return Reply(200, {"id": 0, "message": f"Inventory set for {count} item(s)",
                           "supplier": {"supplierCode": None, "supplierName": None},
                           "purchaseOrderLineItems": []})

    def server_error(self, message: str) -> Reply:
        return problem(500, message)

    def throttled(self, message: str, retry_after: int) -> Reply:
        return problem(429, message, headers=(("Retry-After", str(retry_after)),))

    def malformed(self, message: str) -> Reply:
        return problem(400, message)

    def unknown_path(self, path: str) -> Reply:
        return problem(404, f"No StockTrim endpoint at {path}")
