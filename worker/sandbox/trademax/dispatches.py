"""Dispatch records of the fake Trademax: checking, creating, updating and publishing them.

Pure functions over plain dicts (the state module holds the lock and the store).  The rules follow the
API document's dispatch section:

- a dispatch is created as a draft (``draft: true``) or published (``draft`` false or absent);
- a draft may be incomplete; a published dispatch needs packages (package_id, weight, volume, products
  with line_no and artno) and products (line_no, artno, quantity);
- an update adds or replaces packages by ``package_id`` and products by ``line_no``, and replaces header
  values; ``draft: false`` publishes, which is one-way — and so does an update that leaves ``draft`` out
  ("By sending draft = false or ignoring this property will make dispatch route work as previously");
  only ``draft: true`` keeps a draft a draft;
- a published dispatch refuses every update and delete ("This route will return an error for published
  dispatches"): 400 / error_code 1, the document's general error code (worker.sandbox.trademax.state);
- Trademax fills in dispatch_id, shipping_agent_code, tracking_code, dispatch_date, totals, haulier_id,
  logtrade_consignment_id, labels_url_pdf, labels_url_web, and a label_url per package.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping

from worker.sandbox.trademax import validation as v

ORDER_TYPES = ("SO", "PRO", "TO")
# Filled in by "Trademax"; an update cannot overwrite them.
ASSIGNED = ("dispatch_id", "transaction_id", "shipping_agent_code", "tracking_code", "dispatch_date",
            "total_weight", "total_volume", "haulier_id", "logtrade_consignment_id", "labels_url_pdf",
            "labels_url_web", "vendor_id")


def check_header(fields: Mapping[str, Any]) -> None:
    v.required(fields, "warehouse_id")
    v.required(fields, "order_no")
    v.one_of(fields, "order_type", ORDER_TYPES)
    v.required(fields, "transaction_id")
    _check_shape(fields)


def _check_shape(fields: Mapping[str, Any]) -> None:
    """Whatever packages/products a draft carries must at least be lists of objects with their ids."""
    for name in ("packages", "products"):
        if fields.get(name) not in (None, []):
            v.records(fields, name)
    for i, package in enumerate(fields.get("packages") or []):
        v.integer(package, "package_id", f"packages[{i}].")


def check_complete(record: Mapping[str, Any]) -> None:
    """Everything a published dispatch needs (the document's required fields)."""
    for i, package in enumerate(v.records(record, "packages")):
        where = f"packages[{i}]."
        v.integer(package, "package_id", where)
        v.number(package, "weight", where)
        v.number(package, "volume", where)
        for j, product in enumerate(v.records(package, "products", where)):
            v.required(product, "line_no", f"{where}products[{j}].")
            v.required(product, "artno", f"{where}products[{j}].")
    for i, product in enumerate(v.records(record, "products")):
        v.required(product, "line_no", f"products[{i}].")
        v.required(product, "artno", f"products[{i}].")
        v.integer(product, "quantity", f"products[{i}].")


def new_dispatch(dispatch_id: int, fields: Mapping[str, Any], *, today: str, label_base: str) -> dict:
    check_header(fields)
    draft = v.boolean(fields, "draft", default=False)
    record = copy.deepcopy(dict(fields))
    record["draft"] = draft
    record.setdefault("packages", [])
    record.setdefault("products", [])
    if not draft:
        check_complete(record)
    return _assign(record, dispatch_id, today=today, label_base=label_base)


def updated_dispatch(record: Mapping[str, Any], fields: Mapping[str, Any], *, label_base: str) -> dict:
    """The record after an update (the caller has checked it is still a draft).  Only ``draft: true`` keeps
    it a draft: ``false`` or no ``draft`` at all publishes it (the document's reading)."""
    _check_shape(fields)
    publish = not v.boolean(fields, "draft", default=False)
    merged = copy.deepcopy(dict(record))
    for name, value in fields.items():
        if name in ("packages", "products", "draft") or name in ASSIGNED:
            continue
        merged[name] = copy.deepcopy(value)
    if "order_type" in fields:
        v.one_of(merged, "order_type", ORDER_TYPES)
    merged["packages"] = _merge(merged["packages"], fields.get("packages") or [], "package_id")
    merged["products"] = _merge(merged["products"], fields.get("products") or [], "line_no")
    if publish:
        check_complete(merged)
        merged["draft"] = False
    return _assign(merged, merged["dispatch_id"], today=merged["dispatch_date"], label_base=label_base)


def new_vendor_dispatch(dispatch_id: int, fields: Mapping[str, Any], *, today: str, label_base: str,
                        vendor_id: str) -> dict:
    """A vendor dispatch: Trademax makes ``labels_quantity`` packages for the order."""
    order_no = v.required(fields, "order_no")
    labels = v.integer(fields, "labels_quantity")
    if labels < 1:
        raise v.invalid("labels_quantity", "must be at least 1")
    record = copy.deepcopy(dict(fields))
    record.update(vendor_id=vendor_id, order_no=order_no, order_type="SO", draft=True, products=[])
    record.setdefault("external_reference", None)
    record["packages"] = [
        {"package_id": n, "external_package_id": n, "weight": 0, "volume": 0, "picking_zones": [],
         "label_sscc": f"00{dispatch_id * 1000 + n:018d}", "products": []}
        for n in range(1, labels + 1)
    ]
    return _assign(record, dispatch_id, today=today, label_base=label_base)


def _merge(existing: list[dict], changes: list[dict], key: str) -> list[dict]:
    merged = {str(item.get(key)): item for item in existing}
    for item in changes:
        merged[str(item.get(key))] = copy.deepcopy(item)
    return list(merged.values())


def _assign(record: dict, dispatch_id: int, *, today: str, label_base: str) -> dict:
    base = f"{label_base}dispatch/{dispatch_id}"
    record.update(
        dispatch_id=dispatch_id,
        shipping_agent_code=record.get("shipping_agent_code") or "DHL",
        tracking_code=f"SBX{dispatch_id:010d}",
        dispatch_date=today,
        total_weight=sum(_number(p.get("weight")) for p in record["packages"]),
        total_volume=sum(_number(p.get("volume")) for p in record["packages"]),
        haulier_id=3,
        logtrade_consignment_id=str(10_000_000 + dispatch_id),
        labels_url_pdf=f"{base}/labels.pdf",
        labels_url_web=f"{base}/labels",
    )
    for package in record["packages"]:
        package["label_url"] = f"{base}/package/{package.get('package_id')}.pdf"
    return record


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
