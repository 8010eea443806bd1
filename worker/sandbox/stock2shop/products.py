"""Stock2Shop's products queue as the fake keeps it (``POST /v1/products/queue``).

Stock2Shop *queues* products and processes them later ("Products are added to a queue for subsequent
processing. The endpoint will return the number of products added to the queue"; products whose
product/variant relationship is wrong "will be ignored").  So the fake checks in two steps:

1. **Queueing** (:func:`parse_queue`, refused with 400 and nothing queued): the body must be
   ``{"system_products": [...]}``, a non-empty list of ``{"source": {...}, "product": {...}}``;
   ``source.source_product_code`` a non-empty string; ``source.source_id``, if given, the request's
   ``source_id``; ``product.variants`` an object (as in the document) or a list of objects.
2. **Processing** (:meth:`Stock2ShopProducts.process`, right after queueing, in queue order): a product
   is applied or *ignored* — counted in the answer's ``sync_product`` either way, as Stock2Shop counts
   what it queued, and listed under ``ignored`` in the sandbox's state with the reason:

   - a product the sandbox has not seen before needs a non-empty ``title`` (the document's "minimum
     required information"); a known product may omit it (a stock-only update keeps the title);
   - each variant needs non-empty ``source_variant_code`` and ``sku``;
   - the product/variant relation must match what the sandbox holds ("If the relationship between the
     product and variant is not correctly configure, these products will be ignored"): a variant it holds
     under another product (a variant queued as a product of its own, a shirt's size under the wrong
     shirt) is ignored — the reading that hurts the relay most, since the document says no more of what
     "correctly configured" is;
   - each ``qty_availability`` entry needs a non-empty ``description`` (the warehouse) and an integer
     ``qty``.

Applied: the product's title and variants are stored; each ``qty_availability`` entry sets
``stock[description][sku]``; warehouses not named are left as they were.
"""
from __future__ import annotations

import copy
import threading
import time
from typing import Any, Callable


class BadQueue(ValueError):
    """The body cannot be queued; the message names the first problem."""


def parse_queue(body: Any, source_id: str) -> list[dict[str, Any]]:
    """The queued products (``{"source", "product"}`` objects), or :class:`BadQueue`."""
    if not isinstance(body, dict) or not isinstance(body.get("system_products"), list):
        raise BadQueue("the body must be {\"system_products\": [...]}")
    products = body["system_products"]
    if not products:
        raise BadQueue("system_products is empty")
    for i, entry in enumerate(products):
        where = f"system_products[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("source"), dict) \
                or not isinstance(entry.get("product"), dict):
            raise BadQueue(f"{where} must hold a source object and a product object")
        source = entry["source"]
        code = source.get("source_product_code")
        if not isinstance(code, str) or not code:
            raise BadQueue(f"{where}.source.source_product_code is required")
        if "source_id" in source and str(source["source_id"]) != source_id:
            raise BadQueue(f"{where}.source.source_id {source['source_id']!r} is not the request's "
                           f"source_id {source_id!r}")
        variants = entry["product"].get("variants")
        if not (isinstance(variants, dict)
                or (isinstance(variants, list) and all(isinstance(v, dict) for v in variants))):
            raise BadQueue(f"{where}.product.variants must be an object (or a list of objects)")
    return products


def _variants(product: dict) -> list[dict]:
    variants = product["variants"]
    return [variants] if isinstance(variants, dict) else list(variants)


def _why_ignored(code: str, product: dict, known: bool, owners: dict[str, str]) -> str | None:
    title = product.get("title")
    if not known and not (isinstance(title, str) and title.strip()):
        return "a new product needs a title"
    for variant in _variants(product):
        for name in ("source_variant_code", "sku"):
            if not isinstance(variant.get(name), str) or not variant[name]:
                return f"a variant needs {name}"
        owner = owners.get(variant["source_variant_code"])
        if owner is not None and owner != code:
            return (f"variant {variant['source_variant_code']!r} belongs to product {owner!r}: the "
                    "product/variant relation does not match")
        availability = variant.get("qty_availability", [])
        if not isinstance(availability, list):
            return "qty_availability must be a list"
        for entry in availability:
            if not isinstance(entry, dict) or not isinstance(entry.get("description"), str) \
                    or not entry["description"]:
                return "a qty_availability entry needs a description (the warehouse)"
            if isinstance(entry.get("qty"), bool) or not isinstance(entry.get("qty"), int):
                return f"qty of warehouse {entry['description']!r} must be a whole number"
    return None


class Stock2ShopProducts:
    """Products by source_product_code, stock by (warehouse, sku), ignored products, behind one lock."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._products: dict[str, dict[str, Any]] = {}
            self._owners: dict[str, str] = {}  # source_variant_code -> the source_product_code holding it
            self._stock: dict[str, dict[str, int]] = {}
            self._ignored: list[dict[str, Any]] = []
            self._updates: list[dict[str, Any]] = []
            self._queued = 0

    def process(self, products: list[dict[str, Any]]) -> int:
        """Queue and process ``products`` (from :func:`parse_queue`); returns how many were queued."""
        with self._lock:
            now = self._clock()
            for entry in products:
                code, product = entry["source"]["source_product_code"], entry["product"]
                reason = _why_ignored(code, product, code in self._products, self._owners)
                if reason:
                    self._ignored.append({"source_product_code": code, "reason": reason, "time": now})
                    continue
                record = self._products.setdefault(code, {"title": None, "variants": {}})
                if product.get("title"):
                    record["title"] = product["title"]
                for variant in _variants(product):
                    record["variants"][variant["source_variant_code"]] = copy.deepcopy(variant)
                    self._owners[variant["source_variant_code"]] = code
                    for entry_qty in variant.get("qty_availability", []):
                        warehouse, qty = entry_qty["description"], entry_qty["qty"]
                        self._stock.setdefault(warehouse, {})[variant["sku"]] = qty
                        self._updates.append({"warehouse": warehouse, "sku": variant["sku"], "qty": qty,
                                              "product": code, "variant": variant["source_variant_code"],
                                              "time": now})
            self._queued += len(products)
            return len(products)

    def snapshot(self) -> dict:
        """``stock`` {warehouse: {sku: qty}}, ``products`` {source_product_code: {title, variants}},
        ``ignored`` (product, reason, time), ``updates`` (every qty applied), ``queued``."""
        with self._lock:
            return {"stock": copy.deepcopy(self._stock), "products": copy.deepcopy(self._products),
                    "ignored": list(self._ignored), "updates": list(self._updates), "queued": self._queued}
