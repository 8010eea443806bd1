"""The chaos run's verdict for the stock channels beside Trademax (ka-ching, StockTrim, Stock2Shop): each
destination's ledger against what its sandbox applied.  Pure.

Every warehouse of the workload is listed at every destination (``LOCATIONS``), so each absolute count is
one delivery to each of the three and each relative adjustment one delivery to ka-ching.  ka-ching and
Stock2Shop name each artno as a variant of a product by their catalogs (loaded by the run through ``wms-relay
catalog import``: ``benchmarks._harness.catalog_rows``, the variant code being the artno); StockTrim's is
identity.  What a sandbox applied is its application log in order (ka-ching ``events``, StockTrim and
Stock2Shop ``updates``): a faulted request (500, 429) applies nothing, a stalled one applies and then
withholds the answer.  Each applied value is traced back to its event by (warehouse, artno, type,
quantity), which the workload uses once per SKU.  The checks, per destination:

``final``        every delivery is delivered, superseded, uncertain or dead: none lost, none stuck
``once``         a relative adjustment (ka-ching) applied exactly once if delivered, at most once if
                 uncertain, never otherwise; a delivered count applied at least once
``unknown``      nothing applied that the WMS did not send there
``count_order``  absolute counts of a SKU applied in ``occurred_at`` order
``stock``        per SKU, the level equals the newest delivered count plus the relative adjustments applied
                 after its last application, and the newest delivered count is the last count applied
``not_applied``  no value the sandbox took and then did not apply: none in Stock2Shop's ``ignored`` list
                 (a product it would not process), none in ka-ching's ``failed`` list (initiated, not
                 applied) — what a 200 does not show
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Mapping

from benchmarks.chaos_checks import FINAL
from benchmarks.chaos_events import WAREHOUSES, Planned

DESTINATIONS = ("kaching", "stocktrim", "stock2shop")
CHECKS = ("final", "once", "unknown", "count_order", "stock", "not_applied")
# The relay's *_LOCATIONS for the run, and back: destination location -> WMS warehouse.
LOCATIONS = {"kaching": {w: f"shop-{w}" for w in WAREHOUSES}, "stocktrim": {w: w.upper() for w in WAREHOUSES},
             "stock2shop": {w: f"store-{w}" for w in WAREHOUSES}}


def settings_for_locations() -> dict[str, str]:
    return {f"{d.upper()}_LOCATIONS": ",".join(f"{w}={loc}" for w, loc in LOCATIONS[d].items())
            for d in DESTINATIONS}


@dataclass
class DestinationVerdict:
    destination: str
    violations: dict[str, list[str]] = field(default_factory=lambda: {name: [] for name in CHECKS})
    states: Counter = field(default_factory=Counter)  # (kind, state) -> deliveries
    applied_values: int = 0
    skus_checked: int = 0

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def fail(self, check: str, message: str) -> None:
        self.violations[check].append(message)


def deliveries(planned: list[Planned], destination: str) -> list[Planned]:
    """The planned events ``destination`` gets: every count; ka-ching also every adjustment."""
    return [p for p in planned if p.operation == "stock.adjust"
            and (p.event["type"] == "absolute" or destination == "kaching")]


def applied_log(destination: str, state: Mapping) -> list[tuple[str, str, str, Any]]:
    """(warehouse, artno, type, quantity) of every value the sandbox applied, in order."""
    back = {loc: w for w, loc in LOCATIONS[destination].items()}
    if destination == "kaching":  # a variant's code is its artno (the run's catalog)
        return [(back.get(e["location"], e["location"]), e.get("variant") or e["product"],
                 "relative" if e["type"] == "external_adjustment" else "absolute", e["count"])
                for e in state.get("events", []) if e["type"] in ("external_adjustment", "external_reset")]
    if destination == "stocktrim":
        return [(back.get(u["locationCode"], u["locationCode"]), u["productId"], "absolute", u["stockOnHand"])
                for u in state.get("updates", [])]
    return [(back.get(u["warehouse"], u["warehouse"]), u["sku"], "absolute", u["qty"])
            for u in state.get("updates", [])]


def levels(destination: str, state: Mapping) -> dict[tuple[str, str], Any]:
    back = {loc: w for w, loc in LOCATIONS[destination].items()}
    found = {(back.get(loc, loc), artno): qty for loc, stock in state.get("stock", {}).items()
             for artno, qty in stock.items()}
    for loc, products in state.get("variant_stock", {}).items():  # ka-ching: a variant's code is its artno
        for variants in products.values():
            found.update({(back.get(loc, loc), artno): qty for artno, qty in variants.items()})
    return found


def judge_destination(destination: str, planned: list[Planned], records: Mapping[tuple[str, str], Any],
                      state: Mapping) -> DestinationVerdict:
    """``records``: (operation, key) -> the destination's ledger record (or None)."""
    verdict = DestinationVerdict(destination)
    mine = deliveries(planned, destination)
    by_identity = {(p.event["warehouse_id"], p.event["artno"], p.event["type"], _num(p.event["quantity"])): p
                   for p in mine}
    state_of = {}
    for p in mine:
        record = records.get((p.operation, p.key))
        found = record.state if record is not None else "missing"
        state_of[p.key] = found
        verdict.states[(p.event["type"], found)] += 1
        if found not in FINAL:
            verdict.fail("final", f"{p.key} is {found} after the run settled (lost)")
    applied: Counter = Counter()
    log_by_sku: dict[tuple, list[Planned]] = defaultdict(list)
    for warehouse, artno, kind, quantity in applied_log(destination, state):
        verdict.applied_values += 1
        p = by_identity.get((warehouse, artno, kind, _num(quantity)))
        if p is None:
            verdict.fail("unknown", f"applied {kind} {quantity} of {artno} at {warehouse}: no such event")
            continue
        applied[p.key] += 1
        log_by_sku[(warehouse, artno)].append(p)
    for p in mine:
        times, found = applied[p.key], state_of[p.key]
        if p.event["type"] == "relative":
            bad = {"delivered": times != 1, "uncertain": times > 1}.get(found, times != 0)
        else:
            bad = found == "delivered" and times < 1
        if bad:
            verdict.fail("once", f"{p.event['type']} {p.key} ({found}) applied {times} time(s)")
    for kind in ("ignored", "failed"):
        for entry in state.get(kind, []):
            verdict.fail("not_applied", f"{kind}: {entry}")
    stock = levels(destination, state)
    for sku in sorted({p.sku for p in mine}):
        verdict.skus_checked += 1
        newest_seen, last_count, after = "", None, 0
        for p in log_by_sku[sku]:
            if p.event["type"] == "relative":
                after += p.event["quantity"]
                continue
            at = p.event["occurred_at"]
            if at < newest_seen:
                verdict.fail("count_order",
                             f"{sku}: count {p.key} ({at}) applied after a newer one ({newest_seen})")
            newest_seen = max(newest_seen, at)
            last_count, after = p, 0
        delivered = [p for p in mine if p.sku == sku and p.event["type"] == "absolute"
                     and state_of[p.key] == "delivered"]
        newest = max(delivered, key=lambda p: p.event["occurred_at"], default=None)
        if newest is not last_count:
            verdict.fail("stock", f"{sku}: last count applied {last_count and last_count.key}, "
                                  "newest delivered "
                                  f"{newest and newest.key}")
        expected = (newest.event["quantity"] if newest else 0) + after
        if _num(stock.get(sku, 0)) != expected:
            verdict.fail("stock", f"{sku}: level {stock.get(sku, 0)}, the delivered events imply {expected}")
    return verdict


def _num(value: Any) -> Any:
    try:
        return int(value) if float(value) == int(float(value)) else float(value)
    except (TypeError, ValueError):
        return value


def table(verdicts: list[DestinationVerdict]) -> list[str]:
    """The per-destination table of the run: deliveries by kind and state, applied values, the checks."""
    lines = ["", "| destination | kind | delivered | superseded | uncertain | dead | other "
                 "| values applied (all) | checks |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for v in verdicts:
        failing = [name for name, problems in v.violations.items() if problems]
        checks = "ok" if not failing else "FAILED: " + ", ".join(failing)
        for kind in ("absolute", "relative"):
            counts = {s: n for (k, s), n in v.states.items() if k == kind}
            if not counts:
                continue
            other = sum(n for s, n in counts.items() if s not in FINAL)
            lines.append(f"| {v.destination} | {kind} | " + " | ".join(str(counts.get(s, 0)) for s in FINAL)
                         + f" | {other} | {v.applied_values if kind == 'absolute' else ''} | {checks} |")
    for v in verdicts:
        for check, problems in v.violations.items():
            for problem in problems[:20]:
                lines.append(f"VIOLATION {v.destination} {check}: {problem}")
    return lines
