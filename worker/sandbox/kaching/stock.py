"""ka-ching's stock, as the fake stock import keeps it: one count per (stock location, product) or per
(stock location, product, variant), every value applied, in order, and every value that failed.

The import body (ka-ching's "Stock" import page) is ``{"<stock_location_id>": {"<product_id>": n,
"<product_id>": {"<variant_id>": n}}}``.  :func:`parse_import` turns it into a flat list of
:class:`StockValue` or raises :class:`BadImport` naming the first thing wrong; :class:`KachingStock`
parses and processes a list:

=================  ==========================================================================
``replace``        POST: each count becomes the stock (ka-ching's ``external_reset`` event)
``adjust``         POST ``adjustment=true``: each count is added (``external_adjustment``); a
                   record that does not exist yet starts from 0
``delete``         DELETE: each named record is removed (the count is required and ignored)
=================  ==========================================================================

Sandbox convention: a stock location whose id starts with ``UNKNOWN`` (any case) does not exist.  ka-ching:
"It is not possible to import stock numbers to a non existing stock location" — but an import is only
*initiated* by its answer ("Import of N stock value(s) initiated", N "the number of values that has been
parsed from the request") and runs asynchronously, so the document does not say the answer refuses it.
The fake takes the reading that hurts the relay most: the values are parsed (counted in N), answered 200,
and then fail — never applied, each listed under ``failed`` with its reason.  Products need not exist
("It is possible to import products that do not (yet) exist at a given stock location").
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
            self._failed: list[dict[str, Any]] = []
            self._imports = 0

    def apply(self, kind: str, values: list[StockValue], *, unparsed: int = 0) -> int:
        """Process an import (``kind``: REPLACE, ADJUST or DELETE): its last ``unparsed`` values are not
        parsed, a value at a stock location that does not exist fails, every other is applied.  Returns how
        many values were parsed (the answer's N)."""
        parsed = values[:len(values) - unparsed] if unparsed else list(values)
        with self._lock:
            now = self._clock()
            for value in values[len(parsed):]:
                self._fail(kind, value, "not parsed (the sandbox's initiated_fewer switch)", now)
            for value in parsed:
                if not location_exists(value.location):
                    self._fail(kind, value, f"stock location {value.location!r} does not exist", now)
                    continue
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
        return len(parsed)

    def _fail(self, kind: str, value: StockValue, reason: str, now: float) -> None:
        self._failed.append({"type": kind, "location": value.location, "product": value.product,
                             "variant": value.variant, "count": value.count, "reason": reason, "time": now})

    def snapshot(self) -> dict:
        """``stock`` {location: {product: count}}, ``variant_stock`` {location: {product: {variant:
        count}}}, ``events`` (every applied value: type, location, product, variant, count, time),
        ``failed`` (every value initiated and not applied, with its reason) and ``imports`` (requests
        processed)."""
        with self._lock:
            stock: dict[str, dict[str, float]] = {}
            variant_stock: dict[str, dict[str, dict[str, float]]] = {}
            for (location, product, variant), count in sorted(self._stock.items(), key=lambda i: str(i[0])):
                if variant is None:
                    stock.setdefault(location, {})[product] = count
                else:
                    variant_stock.setdefault(location, {}).setdefault(product, {})[variant] = count
            return {"stock": stock, "variant_stock": variant_stock, "events": list(self._events),
                    "failed": list(self._failed), "imports": self._imports}
