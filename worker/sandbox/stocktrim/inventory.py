"""StockTrim's inventory as the fake keeps it, and the validation of ``POST /api/Inventory``.

The body is StockTrim's ``SetInventoryRequest`` (its OpenAPI document, api.stocktrim.com/index.html):
``{"inventory": [{"productId", "locationCode", "stockOnHand", "stockOnOrder"?}],
"updateOverallAllOnHandToBeSumOfLocation": bool}``.  :func:`parse_inventory` checks every item and
collects every problem as ASP.NET-style validation errors (``{"inventory[3].stockOnHand": [...]}``):
one bad item refuses the whole request and nothing is applied.  A *bad item* is exactly one of:

- ``productId`` or ``locationCode`` missing, not a string, or empty;
- ``stockOnHand`` missing, ``null``, a boolean, a string or not finite; ``stockOnOrder`` present and not
  such a number;
- ``productId`` starting with ``UNKNOWN`` (any case): the sandbox's product that does not exist.

Negative numbers are accepted (StockTrim's ``double``; an oversold product has negative stock on hand).
Fields StockTrim does not know are ignored, as its JSON reader does.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable


class InvalidInventory(ValueError):
    """The request is refused; ``errors`` maps a field path to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class InventoryItem:
    product_id: str
    location_code: str
    stock_on_hand: float
    stock_on_order: float | None


@dataclass(frozen=True)
class SetInventory:
    items: tuple[InventoryItem, ...]
    overall_is_sum_of_locations: bool


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _item(raw: Any, where: str, errors: dict[str, list[str]]) -> InventoryItem | None:
    if not isinstance(raw, dict):
        errors[where] = ["An inventory item must be a JSON object."]
        return None
    problems_before = len(errors)
    for name in ("productId", "locationCode"):
        value = raw.get(name)
        if not isinstance(value, str) or not value:
            errors[f"{where}.{name}"] = [f"The {name} field is required and must be a non-empty string."]
    if not _number(raw.get("stockOnHand")):
        errors[f"{where}.stockOnHand"] = [
            f"The JSON value could not be converted to System.Double: {raw.get('stockOnHand')!r}."]
    if "stockOnOrder" in raw and not _number(raw["stockOnOrder"]):
        errors[f"{where}.stockOnOrder"] = [
            f"The JSON value could not be converted to System.Double: {raw['stockOnOrder']!r}."]
    product = raw.get("productId")
    if isinstance(product, str) and product.upper().startswith("UNKNOWN"):
        errors[f"{where}.productId"] = [f"Product {product!r} was not found."]
    if len(errors) > problems_before:
        return None
    return InventoryItem(raw["productId"], raw["locationCode"], raw["stockOnHand"], raw.get("stockOnOrder"))


def parse_inventory(body: Any) -> SetInventory:
    """The request's items, or :class:`InvalidInventory` listing every bad field of every bad item."""
    if not isinstance(body, dict):
        raise InvalidInventory({"$": ["The request body must be a SetInventoryRequest JSON object."]})
    errors: dict[str, list[str]] = {}
    flag = body.get("updateOverallAllOnHandToBeSumOfLocation", False)
    if not isinstance(flag, bool):
        errors["updateOverallAllOnHandToBeSumOfLocation"] = ["The JSON value could not be converted to "
                                                             "System.Boolean."]
    raw_items = body.get("inventory")
    if not isinstance(raw_items, list):
        errors["inventory"] = ["The inventory field is required and must be an array."]
        raw_items = []
    items = [_item(raw, f"inventory[{i}]", errors) for i, raw in enumerate(raw_items)]
    if errors:
        raise InvalidInventory(errors)
    return SetInventory(tuple(i for i in items if i is not None), flag)


class StockTrimInventory:
    """Stock on hand per (location, product), the overall level per product, and forecast runs."""

    def __init__(self, *, clock: Callable[[], float] = time.time, forecast_seconds: float = 60.0) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.forecast_seconds = forecast_seconds
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._on_hand: dict[tuple[str, str], float] = {}
            self._on_order: dict[tuple[str, str], float] = {}
            self._overall: dict[str, float] = {}
            self._updates: list[dict[str, Any]] = []
            self._inventory_posts = 0
            self._forecast_runs: list[float] = []

    def set(self, request: SetInventory) -> int:
        """Apply every item; with the overall flag, each touched product's overall stock on hand becomes
        the sum over its locations.  Returns the number of items."""
        with self._lock:
            now = self._clock()
            for item in request.items:
                key = (item.location_code, item.product_id)
                self._on_hand[key] = item.stock_on_hand
                if item.stock_on_order is not None:
                    self._on_order[key] = item.stock_on_order
                self._updates.append({"productId": item.product_id, "locationCode": item.location_code,
                                      "stockOnHand": item.stock_on_hand, "time": now})
            if request.overall_is_sum_of_locations:
                for product in {item.product_id for item in request.items}:
                    self._overall[product] = sum(q for (_, p), q in self._on_hand.items() if p == product)
            self._inventory_posts += 1
        return len(request.items)

    def run_forecast(self) -> None:
        with self._lock:
            self._forecast_runs.append(self._clock())

    def processing_status(self) -> dict[str, Any]:
        """``GET /api/ProcessingStatus``: processing for ``forecast_seconds`` after the latest run."""
        with self._lock:
            runs = len(self._forecast_runs)
            started = self._forecast_runs[-1] if runs else None
            now = self._clock()
        if started is None or self.forecast_seconds <= 0 or now >= started + self.forecast_seconds:
            return {"id": runs, "isProcessing": False, "percentageComplete": 100,
                    "statusMessage": "Idle"}
        done = int(100 * (now - started) / self.forecast_seconds)
        return {"id": runs, "isProcessing": True, "percentageComplete": done,
                "statusMessage": "Calculating forecasts"}

    def snapshot(self) -> dict:
        """``stock`` {location: {product: on hand}}, ``stock_on_order`` likewise, ``overall_stock_on_hand``
        {product: sum}, ``updates`` (every item applied, with time), ``inventory_posts``, ``forecast_runs``
        {count, times}."""
        with self._lock:
            stock: dict[str, dict[str, float]] = {}
            for (location, product), quantity in sorted(self._on_hand.items()):
                stock.setdefault(location, {})[product] = quantity
            on_order: dict[str, dict[str, float]] = {}
            for (location, product), quantity in sorted(self._on_order.items()):
                on_order.setdefault(location, {})[product] = quantity
            return {"stock": stock, "stock_on_order": on_order, "overall_stock_on_hand": dict(self._overall),
                    "updates": list(self._updates), "inventory_posts": self._inventory_posts,
                    "forecast_runs": {"count": len(self._forecast_runs), "times": list(self._forecast_runs)}}
