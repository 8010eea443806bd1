"""The chaos run's workload: a seeded mix of every operation, in batches as a WMS would send them.

Every event is built so that whatever the sandbox applied can be traced back to exactly one event
(``identity``), which is what makes the chaos checks exact rather than statistical:

- stock adjustments: each (warehouse_id, artno, type, quantity) is used once — relative quantities and
  absolute counts are drawn without repetition per SKU — and absolute counts of one SKU have distinct
  ``occurred_at`` (so "newest wins" has one answer) and arrive in shuffled order (so some are superseded);
- dispatch updates and publishes carry their own ``event_id`` as ``external_reference``; deletes are one per
  shipment; receipts and dispatch creates have their ``transaction_id``; vendor dispatches, package data
  and line locks have an ``order_no`` or ``weight`` of their own.

Shipments come in four kinds: draft + updates, draft + publish, draft + delete, and created published.
A third of the shipments with follow-ups send them one batch *before* the create (they must wait).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

# Share of draws per kind; a shipment draw makes ~1.8 events, so about 44% of events are stock
# adjustments and 26% dispatch events.
MIX = {"absolute": 0.20, "relative": 0.25, "shipment": 0.15, "receipt.create": 0.12,
       "vendor_dispatch.create": 0.05, "inventory.update_packages": 0.06, "order.lock_lines": 0.07}
WAREHOUSES = ("nw", "se")
# Within a batch, operations are enqueued in this order (creates before what depends on them).
ENQUEUE_ORDER = ("dispatch.create", "dispatch.update", "dispatch.publish", "dispatch.delete",
                 "vendor_dispatch.create", "receipt.create", "stock.adjust", "inventory.update_packages",
                 "order.lock_lines")
_EPOCH = datetime(2024, 5, 14, 6, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Planned:
    """One event of the workload: its operation, the JSON the WMS sends, its ledger key and batch."""

    operation: str
    event: dict
    key: str
    batch: int

    @property
    def sku(self) -> tuple[str, str] | None:
        if self.operation != "stock.adjust":
            return None
        return self.event["warehouse_id"], self.event["artno"]


def identity(operation: str, fields: dict[str, Any], dispatch_tx: dict[str, str]) -> tuple | None:
    """What names the event behind a request the sandbox saw (its ``params`` and path-derived fields).

    ``dispatch_tx`` maps Trademax dispatch ids (as text) to transaction ids."""
    if operation in ("dispatch.create", "receipt.create"):
        return operation, fields.get("transaction_id")
    if operation in ("dispatch.update", "dispatch.publish"):
        return "dispatch.change", fields.get("external_reference")
    if operation == "dispatch.delete":
        return operation, dispatch_tx.get(str(fields.get("dispatch_id")))
    if operation in ("vendor_dispatch.create", "order.lock_lines"):
        return operation, fields.get("order_no")
    if operation == "stock.adjust":
        return operation, fields.get("warehouse_id"), fields.get("artno"), fields.get("type"), \
            _int(fields.get("quantity"))
    if operation == "inventory.update_packages":
        packages = fields.get("packages") or [{}]
        return operation, fields.get("artno"), packages[0].get("weight")
    return None


def planned_identity(planned: Planned) -> tuple:
    """The identity of a planned event, as :func:`identity` computes it from the request."""
    e = planned.event
    if planned.operation == "dispatch.delete":
        return planned.operation, e["transaction_id"]
    return identity(planned.operation, e, {})


def _int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _at(seconds: float) -> str:
    return (_EPOCH + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


class _Builder:
    def __init__(self, count: int, batches: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.batches, self.seed = batches, seed
        self.serial = 0
        self.events: list[Planned] = []
        skus = max(4, count // 40)
        self.skus = [(WAREHOUSES[i % 2], f"CH{seed}-{i:04d}") for i in range(skus)]
        # Per SKU: distinct relative sizes, absolute counts and absolute times, drawn without repetition.
        self.relative_sizes = {sku: self._shuffled(range(1, 4 * count + 1)) for sku in self.skus}
        self.counts = {sku: self._shuffled(range(1000, 1000 + 10 * count, 10)) for sku in self.skus}
        self.count_times = {sku: self._shuffled(range(0, 86_400 * 30, 7)) for sku in self.skus}

    def _shuffled(self, values: range) -> list[int]:
        return self.rng.sample(values, min(len(values), 600))

    def next_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.seed}-{self.serial:05d}"

    def add(self, operation: str, event: dict, key: str, batch: int) -> None:
        self.events.append(Planned(operation, event, key, batch))

    def batch(self) -> int:
        return self.rng.randrange(self.batches)

    def stock(self, absolute: bool) -> None:
        sku = self.rng.choice(self.skus)
        event_id = self.next_id("stk")
        event = {"event_id": event_id, "warehouse_id": sku[0], "artno": sku[1]}
        if absolute:
            event.update(type="absolute", quantity=self.counts[sku].pop(),
                         occurred_at=_at(self.count_times[sku].pop()))
        else:
            size = self.relative_sizes[sku].pop()
            event.update(type="relative", quantity=size if self.rng.random() < 0.6 else -size, reason=2,
                         occurred_at=_at(self.rng.randrange(86_400 * 30)))
        self.add("stock.adjust", event, event_id, self.batch())

    def shipment(self) -> int:
        """A create and its follow-ups; returns how many events it made."""
        tx = self.next_id("CHX")
        warehouse = self.rng.choice(WAREHOUSES)
        artno = self.rng.choice(self.skus)[1]
        kind = self.rng.choice(["updates", "updates", "publish", "delete", "published"])
        create = {"transaction_id": tx, "warehouse_id": warehouse, "order_no": f"FO-{tx}", "order_type": "SO",
                  "draft": kind != "published", "occurred_at": _at(self.serial),
                  "packages": [_package(1, 1000, artno)],
                  "products": [{"line_no": 1000, "artno": artno, "quantity": 1}]}
        follow_ups: list[tuple[str, dict, str]] = []
        if kind == "updates":
            for n in range(self.rng.choice([1, 2])):
                event_id = self.next_id("upd")
                line = 2000 + 1000 * n
                follow_ups.append(("dispatch.update", {
                    "event_id": event_id, "transaction_id": tx, "warehouse_id": warehouse,
                    "external_reference": event_id, "occurred_at": _at(self.serial),
                    "packages": [_package(2 + n, line, artno)],
                    "products": [{"line_no": line, "artno": artno, "quantity": 2}]}, event_id))
        elif kind == "publish":
            event_id = self.next_id("pub")
            follow_ups.append(("dispatch.publish", {
                "event_id": event_id, "transaction_id": tx, "warehouse_id": warehouse,
                "external_reference": event_id, "occurred_at": _at(self.serial)}, event_id))
        elif kind == "delete":
            event_id = self.next_id("del")
            follow_ups.append(("dispatch.delete", {
                "event_id": event_id, "transaction_id": tx, "warehouse_id": warehouse,
                "occurred_at": _at(self.serial)}, event_id))
        create_batch = self.batch()
        early = follow_ups and create_batch > 0 and self.rng.random() < 1 / 3
        self.add("dispatch.create", create, tx, create_batch)
        for operation, event, key in follow_ups:
            if early:
                batch = self.rng.randrange(create_batch)
            else:
                batch = self.rng.randrange(create_batch, self.batches)
            self.add(operation, event, key, batch)
        return 1 + len(follow_ups)

    def receipt(self) -> None:
        tx = self.next_id("CHR")
        lines = [{"line_no": 1000 * (i + 1), "artno": self.rng.choice(self.skus)[1],
                  "quantity": self.rng.randrange(1, 50)} for i in range(self.rng.randrange(1, 4))]
        self.add("receipt.create", {"transaction_id": tx, "warehouse_id": self.rng.choice(WAREHOUSES),
                                    "order_no": f"IO-{tx}", "order_type": "PO", "received_date": "2024-05-13",
                                    "products": lines, "occurred_at": _at(self.serial)}, tx, self.batch())

    def other(self, operation: str) -> None:
        event_id = self.next_id(operation.split(".")[0][:3])
        warehouse = self.rng.choice(WAREHOUSES)
        event: dict[str, Any] = {"event_id": event_id, "occurred_at": _at(self.serial)}
        if operation == "vendor_dispatch.create":
            event.update(order_no=f"VO-{event_id}", labels_quantity=self.rng.randrange(1, 4))
        elif operation == "inventory.update_packages":
            event.update(artno=self.rng.choice(self.skus)[1], warehouse_id=warehouse, packages=[
                {"number": 1, "quantity": 1, "weight": self.serial + 0.5, "volume": 2}])
        else:
            event.update(order_no=f"LO-{event_id}", warehouse_id=warehouse,
                         lines=[{"line_no": 1000, "processing": 1}, {"line_no": 2000, "processing": 0}])
        self.add(operation, event, event_id, self.batch())


def _package(package_id: int, line_no: int, artno: str) -> dict:
    return {"package_id": package_id, "weight": 10 + package_id, "volume": 0.5,
            "products": [{"line_no": line_no, "artno": artno}]}


def build_workload(count: int, *, batches: int, seed: int) -> list[Planned]:
    """About ``count`` events (exactly ``count`` unless a shipment's follow-ups overshoot by one or two),
    each assigned to one of ``batches`` batches; ordered by batch, then by :data:`ENQUEUE_ORDER`."""
    builder = _Builder(count, batches, seed)
    kinds, weights = zip(*MIX.items())
    made = 0
    while made < count:
        kind = builder.rng.choices(kinds, weights)[0]
        if kind in ("absolute", "relative"):
            builder.stock(kind == "absolute")
            made += 1
        elif kind == "shipment":
            made += builder.shipment()
        elif kind == "receipt.create":
            builder.receipt()
            made += 1
        else:
            builder.other(kind)
            made += 1
    return sorted(builder.events, key=lambda p: (p.batch, ENQUEUE_ORDER.index(p.operation)))
