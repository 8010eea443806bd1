"""The chaos run's verdict: the ledger against what the sandbox Trademax actually applied.  Pure.

Inputs: the planned events, their ledger records (``EventRecord`` or None), the sandbox's
``/_sandbox/state`` and ``/_sandbox/requests``.  A request the sandbox answered 2xx was applied (an injected
stall applies first and then withholds the answer; a 500 or 429 applies nothing); each is traced back to
its event by :func:`benchmarks.chaos_events.identity`.  The checks:

``final``        every planned event is delivered, superseded, uncertain or dead: none lost, none stuck
``once``         dispatch and receipt creates: exactly one applied create per delivered transaction_id,
                 at most one otherwise; vendor dispatches, dispatch deletes and relative adjustments (not
                 deduplicated by Trademax): exactly once if delivered, at most once if uncertain, never
                 otherwise; a publish (one-way) never dead-lettered once applied; every other delivered
                 event applied at least once
``unknown``      nothing applied that the ledger does not know; every request authentic (no 401)
``count_order``  absolute counts of a SKU applied in ``occurred_at`` order (the same count again is fine)
``stock``        per SKU, the sandbox's level equals the newest delivered count plus the relative
                 adjustments applied after its last application (each of them delivered or uncertain),
                 and the newest delivered count is the last one applied
``processes``    (filled in by the run, not here) no worker or scheduler exited unless the run killed it:
                 every worker pid was replaced only by the run's own kills
``poison``       (filled in by the run) every malformed raw message pushed is a malformed_message dead
                 letter (and, by ``unknown``, none reached Trademax)
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping
from urllib.parse import unquote

from benchmarks.chaos_events import Planned, identity, planned_identity

FINAL = ("delivered", "superseded", "uncertain", "dead")
NOT_DEDUPLICATED = ("vendor_dispatch.create", "dispatch.delete")
CHECKS = ("final", "once", "unknown", "count_order", "stock", "processes", "poison")


@dataclass
class Verdict:
    violations: dict[str, list[str]] = field(default_factory=lambda: {name: [] for name in CHECKS})
    states: Counter = field(default_factory=Counter)  # (operation, state) -> events
    faults: Counter = field(default_factory=Counter)  # fault kind -> requests
    faulted_events: dict[str, set] = field(default_factory=lambda: defaultdict(set))
    answers: Counter = field(default_factory=Counter)  # (status, error_code) of un-faulted requests
    applied: Counter = field(default_factory=Counter)  # identity -> applied requests
    skus_checked: int = 0

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def fail(self, check: str, message: str) -> None:
        self.violations[check].append(message)


def request_operation(method: str, path: str) -> tuple[str | None, dict]:
    """The operation a request path belongs to and the fields its path carries."""
    parts = [unquote(p) for p in path.split("?")[0].strip("/").split("/")]
    if parts[:1] != ["api"]:
        return None, {}
    match (method, parts[1:]):
        case ("POST", ["dispatch"]):
            return "dispatch.create", {}
        case ("PATCH", ["dispatch", dispatch_id]):
            return "dispatch.update", {"dispatch_id": dispatch_id}
        case ("DELETE", ["dispatch", dispatch_id]):
            return "dispatch.delete", {"dispatch_id": dispatch_id}
        case ("POST", ["vendor", "dispatch"]):
            return "vendor_dispatch.create", {}
        case ("POST", ["receipt"]):
            return "receipt.create", {}
        case ("PATCH", ["inventory", artno, "stock-adjustment"]):
            return "stock.adjust", {"artno": artno}
        case ("PATCH", ["inventory", artno]):
            return "inventory.update_packages", {"artno": artno}
        case ("PATCH", ["order", "outgoing", order_no]):
            return "order.lock_lines", {"order_no": order_no}
    return None, {}


def judge(planned: list[Planned], records: Mapping[tuple[str, str], Any], sandbox_state: Mapping,
          requests: Iterable[Mapping]) -> Verdict:
    verdict = Verdict()
    by_identity = {planned_identity(p): p for p in planned}
    state_of = {}
    for p in planned:
        record = records.get((p.operation, p.key))
        state = record.state if record is not None else "missing"
        state_of[planned_identity(p)] = state
        verdict.states[(p.operation, state)] += 1
        if state not in FINAL:
            verdict.fail("final", f"{p.operation} {p.key} is {state} after the run settled (lost)")

    dispatch_tx = {str(d["dispatch_id"]): d.get("transaction_id")
                   for d in [*sandbox_state.get("dispatches", []),
                             *sandbox_state.get("deleted_dispatches", [])]}
    _count_requests(verdict, requests, dispatch_tx, by_identity)
    _check_once(verdict, planned, state_of)
    _check_stock(verdict, planned, state_of, sandbox_state)
    return verdict


def _count_requests(verdict: Verdict, requests: Iterable[Mapping], dispatch_tx: dict,
                    by_identity: dict) -> None:
    for entry in requests:
        operation, path_fields = request_operation(entry["method"], entry["path"])
        fields = {**entry.get("params", {}), **path_fields}
        ident = identity(operation, fields, dispatch_tx) if operation else None
        fault = entry.get("fault") or "none"
        verdict.faults[fault] += 1
        if ident in by_identity:
            verdict.faulted_events[fault].add(ident)
        if entry.get("fault") in ("server_error", "throttle", "interrupted"):
            continue  # answered by the fault, or cut off mid-body by a killed worker: nothing applied
        verdict.answers[(entry["status"], entry.get("error_code"))] += 1
        if entry["status"] == 401:
            verdict.fail("unknown", f"request {entry['seq']} {entry['method']} {entry['path']} was not "
                                    f"authentic (error_code {entry.get('error_code')})")
        if not 200 <= entry["status"] < 300 or entry["method"] == "GET":
            # refused, or a read (the worker reads a dispatch back: worker.destinations.trademax.read_back)
            continue
        if ident not in by_identity:
            verdict.fail("unknown", f"request {entry['seq']} {entry['method']} {entry['path']} was applied "
                                    f"but matches no event the WMS sent ({ident!r})")
            continue
        verdict.applied[ident] += 1


def _check_once(verdict: Verdict, planned: list[Planned], state_of: dict) -> None:
    for p in planned:
        ident = planned_identity(p)
        state, applied = state_of[ident], verdict.applied[ident]
        what = f"{p.operation} {p.key} ({state}) was applied {applied} time(s)"
        if p.operation in ("dispatch.create", "receipt.create"):
            bad = applied != 1 if state == "delivered" else applied > 1
        elif p.operation in NOT_DEDUPLICATED or _is_relative(p):
            bad = {"delivered": applied != 1, "uncertain": applied > 1}.get(state, applied != 0)
        elif p.operation == "dispatch.publish":  # one-way: a resend after it landed is refused
            bad = applied < 1 if state == "delivered" else (state == "dead" and applied > 0)
        else:  # stating a target value: applying it again is harmless
            bad = state == "delivered" and applied < 1
        if bad:
            verdict.fail("once", what)


def _is_relative(p: Planned) -> bool:
    return p.operation == "stock.adjust" and p.event["type"] == "relative"


def _check_stock(verdict: Verdict, planned: list[Planned], state_of: dict, sandbox_state: Mapping) -> None:
    events = {planned_identity(p): p for p in planned if p.operation == "stock.adjust"}
    log_by_sku: dict[tuple, list[dict]] = defaultdict(list)
    for entry in sorted(sandbox_state.get("stock_adjustments", []), key=lambda e: e["seq"]):
        log_by_sku[(entry["warehouse_id"], entry["artno"])].append(entry)
    levels = {(s["warehouse_id"], s["artno"]): s["quantity"] for s in sandbox_state.get("stock", [])}
    skus = {p.sku for p in events.values()} | set(log_by_sku)
    for sku in sorted(skus):
        verdict.skus_checked += 1
        newest_seen, last_absolute, relatives_after = "", None, 0
        for entry in log_by_sku[sku]:
            ident = ("stock.adjust", sku[0], sku[1], entry["type"], entry["quantity"])
            event = events.get(ident)
            if event is None:
                verdict.fail("unknown", f"stock adjustment {entry} matches no event the WMS sent")
                continue
            if entry["type"] == "relative":
                relatives_after += entry["quantity"]
                continue
            at = event.event["occurred_at"]
            if at < newest_seen:
                verdict.fail("count_order", f"{sku}: count {event.key} (occurred_at {at}) applied after a "
                                            f"newer count (occurred_at {newest_seen})")
            newest_seen = max(newest_seen, at)
            last_absolute, relatives_after = event, 0
        delivered_counts = [e for i, e in events.items()
                            if e.sku == sku and e.event["type"] == "absolute" and state_of[i] == "delivered"]
        newest = max(delivered_counts, key=lambda e: e.event["occurred_at"], default=None)
        if newest is not last_absolute:
            verdict.fail("stock", f"{sku}: last count applied is {last_absolute and last_absolute.key}, "
                                  f"the newest delivered count is {newest and newest.key}")
        expected = (newest.event["quantity"] if newest else 0) + relatives_after
        if levels.get(sku, 0) != expected:
            verdict.fail("stock", f"{sku}: sandbox level {levels.get(sku, 0)}, the delivered events imply "
                                  f"{expected}")
