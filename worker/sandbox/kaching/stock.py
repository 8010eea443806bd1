"""ka-ching's stock, as the fake stock import keeps it: one count per (stock location, product) or per
(stock location, product, variant), and every value applied, in order.

The import body (ka-ching's "Stock" import page) is ``{"<stock_location_id>": {"<product_id>": n,
"<product_id>": {"<variant_id>": n}}}``.  :func:`parse_import` turns it into a flat list of
:class:`StockValue` or raises :class:`BadImport` naming the first thing wrong; :class:`KachingStock`
applies a whole list or nothing:

=================  ==========================================================================
``replace``        POST: each count becomes the stock (ka-ching's ``external_reset`` event)
``adjust``         POST ``adjustment=true``: each count is added (``external_adjustment``); a
                   record that does not exist yet starts from 0
``delete``         DELETE: each named record is removed (the count is required and ignored)
=================  ==========================================================================

Sandbox convention: a stock location whose id starts with ``UNKNOWN`` (any case) does not exist, and an
import naming one is refused whole (ka-ching: "It is not possible to import stock numbers to a non
existing stock location").  Products need not exist ("It is possible to import products that do not
(yet) exist at a given stock location").
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

REPLACE, ADJUST, DELETE = "external_reset", "external_adjustment", "deleted"


class BadImport(ValueError):
    """The body is not a stock import ka-ching would take; the message names the first problem."""


class UnknownLocation(LookupError):
    """The import names stock locations that do not exist (``locations``, sorted)."""

    def __init__(self, locations: list[str]) -> None:
        super().__init__(", ".join(locations))
        self.locations = locations


@dataclass(frozen=True)
class StockValue:
    location: str
    product: str
    variant: str | None
    count: float


def _count(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadImport(f"the stock count of {where} must be a number, got {value!r}")
    return value


def parse_import(body: Any) -> list[StockValue]:
    """Every value in a stock import body, in body order."""
    if not isinstance(body, dict):
        raise BadImport("the body must be a JSON object of stock locations")
    values = []
    for location, products in body.items():
        if not location:
            raise BadImport("a stock location id must not be empty")
        if not isinstance(products, dict):
            raise BadImport(f"stock location {location!r} must map product ids to counts")
        for product, count in products.items():
            if not product:
                raise BadImport(f"a product id at {location!r} must not be empty")
            if isinstance(count, dict):
                for variant, variant_count in count.items():
                    if not variant:
                        raise BadImport(f"a variant id of {location}/{product} must not be empty")
                    values.append(StockValue(location, product, variant,
                                             _count(variant_count, f"{location}/{product}/{variant}")))
            else:
                values.append(StockValue(location, product, None, _count(count, f"{location}/{product}")))
    return values


def location_exists(location: str) -> bool:
    return not location.upper().startswith("UNKNOWN")


class KachingStock:
    """Stock per location, product and variant, behind one lock; every applied value is logged."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._stock: dict[tuple[str, str, str | None], float] = {}
            self._events: list[dict[str, Any]] = []
            self._imports = 0

    def apply(self, kind: str, values: list[StockValue]) -> int:
        """Apply every value (``kind``: REPLACE, ADJUST or DELETE) or, if one names a stock location
        that does not exist, none (:class:`UnknownLocation`).  Returns how many values were applied."""
        missing = sorted({v.location for v in values if not location_exists(v.location)})
        if missing:
            raise UnknownLocation(missing)
        with self._lock:
            now = self._clock()
            for value in values:
                key = (value.location, value.product, value.variant)
                if kind == DELETE:
                    self._stock.pop(key, None)
                elif kind == ADJUST:
                    self._stock[key] = self._stock.get(key, 0) + value.count
                else:
                    self._stock[key] = value.count
                self._events.append({"type": kind, "location": value.location, "product": value.product,
                                     "variant": value.variant, "count": value.count, "time": now})
            self._imports += 1
        return len(values)

    def snapshot(self) -> dict:
        """``stock`` {location: {product: count}}, ``variant_stock`` {location: {product: {variant:
        count}}}, ``events`` (every applied value: type, location, product, variant, count, time) and
        ``imports`` (requests applied)."""
        with self._lock:
            stock: dict[str, dict[str, float]] = {}
            variant_stock: dict[str, dict[str, dict[str, float]]] = {}
            for (location, product, variant), count in sorted(self._stock.items(), key=lambda i: str(i[0])):
                if variant is None:
                    stock.setdefault(location, {})[product] = count
                else:
                    variant_stock.setdefault(location, {}).setdefault(product, {})[variant] = count
            return {"stock": stock, "variant_stock": variant_stock, "events": list(self._events),
                    "imports": self._imports}
