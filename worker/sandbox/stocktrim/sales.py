"""StockTrim's sales orders and products as the fake keeps them — strict where the documents are silent.

``POST /api/SalesOrdersBulk`` takes a ``SalesOrderWithLineItemsRequestDto`` (StockTrim's OpenAPI document):
``{"orderDate", "locationCode"?, "customerCode"?, "saleOrderLineItems": [{"productId", "orderDate",
"quantity", "externalReferenceId"?, "locationCode"?, "unitPrice"?}]}``.  Nothing in StockTrim's documents
says a repeated ``externalReferenceId`` is refused or merged, so the fake takes the reading that hurts a
client most: **every line it is given is stored, a repeated externalReferenceId included** (a second sale
of the same goods).  ``/_sandbox/state`` lists any such duplicate, so a test can tell.  A bad line refuses
the whole request (400, ValidationProblemDetails by field path), nothing stored:

- ``orderDate`` missing or not an ISO date-time (the order's, or a line's);
- a line's ``productId`` missing, empty or not a string; ``quantity`` missing, not a number, or negative
  (the document's ``minimum: 0``); ``unitPrice`` present and not a number;
- ``productId`` starting with ``UNKNOWN`` (any case): the sandbox's product that does not exist.

A line's location is its own ``locationCode``, else the order's.  ``GET /api/SalesOrders?productId=``
answers that product's lines (every product's without it) as ``SalesOrderResponseDto`` items, oldest
first; ``DELETE /api/SalesOrders/Range?fromDate=&toDate=&productId=`` removes the lines in the range.
``POST /api/Products`` upserts a ``ProductsRequestDto`` by ``productId`` (201 new, 200 updated).
"""
from __future__ import annotations

import math
import threading
from datetime import datetime, timezone
from typing import Any

from worker.sandbox.stocktrim.inventory import InvalidInventory


def parse_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _line(raw: Any, where: str, order: dict, errors: dict[str, list[str]]) -> dict | None:
    if not isinstance(raw, dict):
        errors[where] = ["A sales order line item must be a JSON object."]
        return None
    before = len(errors)
    product = raw.get("productId")
    if not isinstance(product, str) or not product:
        errors[f"{where}.productId"] = ["The productId field is required and must be a non-empty string."]
    elif product.upper().startswith("UNKNOWN"):
        errors[f"{where}.productId"] = [f"Product {product!r} was not found."]
    quantity = raw.get("quantity")
    if not _number(quantity) or quantity < 0:
        errors[f"{where}.quantity"] = [f"The quantity field must be a number of at least 0: {quantity!r}."]
    if raw.get("unitPrice") is not None and not _number(raw.get("unitPrice")):
        errors[f"{where}.unitPrice"] = [f"The JSON value could not be converted to System.Double: "
                                        f"{raw.get('unitPrice')!r}."]
    if parse_date(raw.get("orderDate")) is None:
        errors[f"{where}.orderDate"] = [f"The orderDate field is required and must be a date-time: "
                                        f"{raw.get('orderDate')!r}."]
    if len(errors) > before:
        return None
    return {"productId": product, "externalReferenceId": raw.get("externalReferenceId"),
            "orderDate": raw["orderDate"], "quantity": quantity, "unitPrice": raw.get("unitPrice"),
            "locationCode": raw.get("locationCode") or order.get("locationCode"),
            "customerCode": raw.get("customerCode") or order.get("customerCode")}


def parse_sales_order(body: Any) -> list[dict]:
    """The request's lines, or InvalidInventory (the fake's one refusal) naming every bad field."""
    if not isinstance(body, dict):
        raise InvalidInventory({"$": [
            "The request body must be a SalesOrderWithLineItemsRequestDto object."]})
    errors: dict[str, list[str]] = {}
    if parse_date(body.get("orderDate")) is None:
        errors["orderDate"] = [f"The orderDate field is required and must be a date-time: "
                               f"{body.get('orderDate')!r}."]
    raw_lines = body.get("saleOrderLineItems")
    if raw_lines is not None and not isinstance(raw_lines, list):
        errors["saleOrderLineItems"] = ["The saleOrderLineItems field must be an array."]
        raw_lines = []
    lines = [_line(raw, f"saleOrderLineItems[{i}]", body, errors) for i, raw in enumerate(raw_lines or [])]
    if errors:
        raise InvalidInventory(errors)
    return [line for line in lines if line is not None]


def parse_product(body: Any) -> dict:
    if not isinstance(body, dict):
        raise InvalidInventory({"$": ["The request body must be a ProductsRequestDto object."]})
    product = body.get("productId")
    if not isinstance(product, str) or not product:
        raise InvalidInventory({"productId": [
            "The productId field is required and must be a non-empty string."]})
    for name in ("productCodeReadable", "name"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise InvalidInventory({name: ["The JSON value could not be converted to System.String."]})
    return dict(body)


class SalesLedger:
    """Every sales order line stored (duplicates too), and the products by productId."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._lines: list[dict] = []
            self._next_id = 1
            self._products: dict[str, dict] = {}
            self._bulk_posts = 0

    def add(self, lines: list[dict]) -> list[dict]:
        with self._lock:
            stored = []
            for line in lines:
                stored.append({"id": self._next_id, "locationId": 0, **line})
                self._next_id += 1
            self._lines.extend(stored)
            self._bulk_posts += 1
            return stored

    def of_product(self, product_id: str | None) -> list[dict]:
        with self._lock:
            return [dict(line) for line in self._lines
                    if product_id is None or line["productId"] == product_id]

    def delete_range(self, since: datetime, until: datetime, product_id: str | None) -> int:
        with self._lock:
            kept = [line for line in self._lines
                    if not ((product_id is None or line["productId"] == product_id)
                            and since <= parse_date(line["orderDate"]) <= until)]
            removed, self._lines = len(self._lines) - len(kept), kept
            return removed

    def upsert_product(self, product: dict) -> tuple[dict, bool]:
        with self._lock:
            known = self._products.get(product["productId"])
            created = known is None
            merged = {"id": len(self._products) + 1 if created else known["id"], **(known or {}), **product}
            self._products[product["productId"]] = merged
            return dict(merged), created

    def products(self, code: str | None = None) -> list[dict]:
        with self._lock:
            return [dict(p) for p in self._products.values() if code is None or p["productId"] == code]

    def snapshot(self) -> dict:
        """``sales`` {location: {product: quantity summed}}, ``sales_lines`` (every stored line),
        ``duplicated_references`` {externalReferenceId: times stored, for each stored more than once},
        ``sales_order_posts``, ``products`` {productId: product}."""
        with self._lock:
            sales: dict[str, dict[str, float]] = {}
            seen: dict[str, int] = {}
            for line in self._lines:
                per_location = sales.setdefault(line["locationCode"] or "", {})
                per_location[line["productId"]] = per_location.get(line["productId"], 0) + line["quantity"]
                if line["externalReferenceId"]:
                    seen[line["externalReferenceId"]] = seen.get(line["externalReferenceId"], 0) + 1
            return {"sales": sales, "sales_lines": [dict(line) for line in self._lines],
                    "duplicated_references": {ref: n for ref, n in seen.items() if n > 1},
                    "sales_order_posts": self._bulk_posts,
                    "products": {k: dict(v) for k, v in self._products.items()}}
