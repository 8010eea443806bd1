"""The chaos run's verdict for StockTrim's sales orders: every dispatch of the workload that became final
(a ``dispatch.create`` without draft, a ``dispatch.publish``, a ``vendor_dispatch.create``) is one StockTrim
delivery, and its lines are judged against what the sandbox StockTrim stored — which keeps every line it
is given, a repeated ``externalReferenceId`` too.  Pure.

``final``     every sales-order delivery is delivered, uncertain or dead: none lost, none stuck
``doubled``   no externalReferenceId stored twice (a resend after a lost answer or a killed worker reads
              StockTrim back first and sends only the missing lines)
``once``      a delivered order's lines are each stored exactly once (a vendor dispatch: none); an uncertain
              or dead one's at most once; a second publish of a shipment adds nothing
``unknown``   no stored line that no final dispatch of the workload has
``quantity``  each stored line's product and quantity are the shipped line's
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

from benchmarks.chaos_checks import FINAL
from benchmarks.chaos_events import Planned

CHECKS = ("final", "doubled", "once", "unknown", "quantity")
SALES_OPERATIONS = ("dispatch.create", "dispatch.publish", "vendor_dispatch.create")


def sales_deliveries(planned: list[Planned]) -> list[Planned]:
    """The planned events StockTrim gets as sales orders (every warehouse of the run is listed)."""
    return [p for p in planned if p.operation in SALES_OPERATIONS
            and not (p.operation == "dispatch.create" and p.event.get("draft"))]


def shipped_lines(planned: list[Planned]) -> dict[str, dict[str, tuple[str, Any]]]:
    """transaction_id -> {externalReferenceId: (artno, quantity)} of every dispatch create (the workload's
    publishes carry no lines: a published draft's lines are its create's)."""
    return {p.key: {f"{p.key}:{line['line_no']}": (line["artno"], line["quantity"])
                    for line in p.event["products"]}
            for p in planned if p.operation == "dispatch.create"}


@dataclass
class SalesVerdict:
    violations: dict[str, list[str]] = field(default_factory=lambda: {name: [] for name in CHECKS})
    states: Counter = field(default_factory=Counter)
    lines_stored: int = 0
    read_back: int = 0

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def fail(self, check: str, message: str) -> None:
        self.violations[check].append(message)


def judge_sales(planned: list[Planned], records: Mapping[tuple[str, str], Any],
                state: Mapping) -> SalesVerdict:
    """``records``: (operation, key) -> StockTrim's ledger record of a sales-order delivery (or None);
    ``state``: the sandbox StockTrim's ``/_sandbox/state``."""
    verdict = SalesVerdict()
    shipped = shipped_lines(planned)
    stored = Counter(line["externalReferenceId"] for line in state.get("sales_lines", []))
    verdict.lines_stored = sum(stored.values())
    for ref, times in stored.items():
        if times > 1:
            verdict.fail("doubled", f"{ref} stored {times} times")
    every_line = {ref: line for lines in shipped.values() for ref, line in lines.items()}
    for line in state.get("sales_lines", []):
        ref = line["externalReferenceId"]
        if ref not in every_line:
            verdict.fail("unknown", f"stored {ref}: no final dispatch of the run has it")
        elif (line["productId"], line["quantity"]) != every_line[ref]:
            verdict.fail("quantity", f"{ref}: stored {line['productId']} x {line['quantity']}, shipped "
                                     f"{every_line[ref][0]} x {every_line[ref][1]}")
    made_by: dict[str, str] = {}  # transaction_id -> the state of the delivery that sent its lines
    for p in sales_deliveries(planned):
        record = records.get((p.operation, p.key))
        found = record.state if record is not None else "missing"
        verdict.states[(p.operation, found)] += 1
        if found not in FINAL:
            verdict.fail("final", f"{p.operation} {p.key} is {found} after the run settled (lost)")
            continue
        result = (record.result or {}).get("sales_order") if record is not None else None
        if isinstance(result, dict):
            verdict.read_back += bool(result.get("read_back"))
            made_by[p.event["transaction_id"]] = found
        elif found != "delivered" and p.operation != "vendor_dispatch.create":
            made_by.setdefault(p.event["transaction_id"], found)
    for tx, lines in shipped.items():
        found = made_by.get(tx)
        for ref in lines:
            times = stored.get(ref, 0)
            bad = times != 1 if found == "delivered" else (times > 1 if found else times != 0)
            if bad:
                verdict.fail("once", f"{ref} ({found or 'no sales order'}) stored {times} time(s)")
    return verdict


def table(verdict: SalesVerdict) -> list[str]:
    failing = [name for name, problems in verdict.violations.items() if problems]
    checks = "ok" if not failing else "FAILED: " + ", ".join(failing)
    lines = ["", f"StockTrim's sales orders ({verdict.lines_stored} lines stored, {verdict.read_back} "
                 "read back after a lost answer):",
             "", "| operation | delivered | uncertain | dead | other | checks |",
             "|---|---:|---:|---:|---:|---|"]
    for operation in SALES_OPERATIONS:
        counts = {s: n for (op, s), n in verdict.states.items() if op == operation}
        if counts:
            other = sum(n for s, n in counts.items() if s not in ("delivered", "uncertain", "dead"))
            lines.append(f"| {operation} | {counts.get('delivered', 0)} | {counts.get('uncertain', 0)} | "
                         f"{counts.get('dead', 0)} | {other} | {checks} |")
    for check, problems in verdict.violations.items():
        for problem in problems[:20]:
            lines.append(f"VIOLATION stocktrim sales {check}: {problem}")
    return lines
