"""Everything the fake Trademax remembers, behind one lock.

Dispatches (draft/published, deleted), receipts, stock per (warehouse_id, artno) with every applied
adjustment logged, package data per (warehouse_id, artno) and order-line locks per (order_no, line_no).
Each operation validates first and changes state only when it answers success, so a rejected request
leaves no trace but its entry in the request log.

Sandbox conventions beyond the API document (documented here because tests rely on them):

- ids (dispatch_id, receipt_id) count up from 1 and restart at :meth:`reset`;
- a repeated ``transaction_id`` on dispatch or receipt creation answers 400 / error_code 452 with the
  original record (and so its id) as ``data``; deleting a dispatch frees its transaction_id;
- an unknown dispatch or receipt: 404 / error_code 1; a change to a published dispatch (update,
  delete): 400 / error_code 1 "dispatch is published" (the document's "This route will return an error
  for published dispatches", in its general error code);
- an artno starting with ``UNKNOWN`` (any case) on the inventory routes: 404 / error_code 1;
- stock of an artno never adjusted is 0.
"""
from __future__ import annotations

import copy
import threading
import time
from typing import Any, Callable, Mapping

from worker.sandbox.trademax import dispatches
from worker.sandbox.trademax import validation as v
from worker.sandbox.trademax.answers import DUPLICATE_TRANSACTION, GENERAL_ERROR, Answer, fail, ok, reject

DEFAULT_LABEL_BASE = "http://labels.sandbox.invalid/"
VENDOR_ID = "sandbox-vendor"


class SandboxState:
    def __init__(self, *, clock: Callable[[], float] = time.time,
                 label_base: str = DEFAULT_LABEL_BASE) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._label_base = label_base
        self.reset()

    def reset(self) -> None:
        """Forget everything; ids start again at 1."""
        with self._lock:
            self._dispatches: dict[int, dict] = {}
            self._deleted: list[dict] = []
            self._dispatch_by_transaction: dict[str, int] = {}
            self._receipts: dict[int, dict] = {}
            self._receipt_by_transaction: dict[str, int] = {}
            self._stock: dict[tuple[str, str], int] = {}
            self._adjustments: list[dict] = []
            self._packages: dict[tuple[str, str], dict[str, dict]] = {}
            self._locks: dict[tuple[str, str], dict] = {}
            self._next_dispatch_id = 1
            self._next_receipt_id = 1

    def _today(self) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(self._clock()))

    # -- dispatch ---------------------------------------------------------------------------------
    def create_dispatch(self, fields: Mapping[str, Any]) -> Answer:
        with self._lock:
            transaction_id = str(v.required(fields, "transaction_id"))
            if transaction_id in self._dispatch_by_transaction:
                original = self._dispatches[self._dispatch_by_transaction[transaction_id]]
                return _duplicate(transaction_id, "dispatch", original["dispatch_id"], original)
            record = dispatches.new_dispatch(self._next_dispatch_id, fields, today=self._today(),
                                             label_base=self._label_base)
            self._next_dispatch_id += 1
            self._dispatches[record["dispatch_id"]] = record
            self._dispatch_by_transaction[transaction_id] = record["dispatch_id"]
            return ok(copy.deepcopy(record))

    def update_dispatch(self, dispatch_id: str, fields: Mapping[str, Any]) -> Answer:
        with self._lock:
            record = self._draft(dispatch_id, "changed")
            record = dispatches.updated_dispatch(record, fields, label_base=self._label_base)
            self._dispatches[record["dispatch_id"]] = record
            return ok(copy.deepcopy(record))

    def delete_dispatch(self, dispatch_id: str) -> Answer:
        with self._lock:
            record = self._draft(dispatch_id, "deleted")
            del self._dispatches[record["dispatch_id"]]
            self._dispatch_by_transaction.pop(str(record.get("transaction_id")), None)
            self._deleted.append(record)
            return ok({"dispatch_id": record["dispatch_id"], "deleted": True})

    def get_dispatch(self, dispatch_id: str) -> Answer:
        with self._lock:
            return ok(copy.deepcopy(self._dispatch(dispatch_id)))

    def create_vendor_dispatch(self, fields: Mapping[str, Any]) -> Answer:
        with self._lock:
            record = dispatches.new_vendor_dispatch(self._next_dispatch_id, fields, today=self._today(),
                                                    label_base=self._label_base, vendor_id=VENDOR_ID)
            self._next_dispatch_id += 1
            self._dispatches[record["dispatch_id"]] = record
            return ok(copy.deepcopy(record), code_key="code")  # the document's vendor-dispatch quirk

    def _dispatch(self, dispatch_id: str) -> dict:
        record = self._dispatches.get(_int_id(dispatch_id))
        if record is None:
            raise reject(404, GENERAL_ERROR, f"dispatch {dispatch_id} not found")
        return record

    def _draft(self, dispatch_id: str, action: str) -> dict:
        record = self._dispatch(dispatch_id)
        if not record["draft"]:
            raise reject(400, GENERAL_ERROR,
                         f"dispatch is published: dispatch {dispatch_id} cannot be {action}")
        return record

    # -- receipt ----------------------------------------------------------------------------------
    def create_receipt(self, fields: Mapping[str, Any]) -> Answer:
        with self._lock:
            for name in ("warehouse_id", "order_no", "transaction_id"):
                v.required(fields, name)
            v.one_of(fields, "order_type", ("PO", "SRO", "TO"))
            v.date(fields, "received_date")
            for i, product in enumerate(v.records(fields, "products")):
                v.integer(product, "line_no", f"products[{i}].")
                v.required(product, "artno", f"products[{i}].")
                v.integer(product, "quantity", f"products[{i}].")
            transaction_id = str(fields["transaction_id"])
            if transaction_id in self._receipt_by_transaction:
                original = self._receipts[self._receipt_by_transaction[transaction_id]]
                return _duplicate(transaction_id, "receipt", original["receipt_id"], original)
            record = {"receipt_id": self._next_receipt_id, **copy.deepcopy(dict(fields))}
            self._next_receipt_id += 1
            self._receipts[record["receipt_id"]] = record
            self._receipt_by_transaction[transaction_id] = record["receipt_id"]
            return ok(copy.deepcopy(record))

    def get_receipt(self, receipt_id: str) -> Answer:
        with self._lock:
            record = self._receipts.get(_int_id(receipt_id))
            if record is None:
                raise reject(404, GENERAL_ERROR, f"receipt {receipt_id} not found")
            return ok(copy.deepcopy(record))

    # -- inventory: stock ---------------------------------------------------------------------------
    def get_stock(self, artno: str, fields: Mapping[str, Any]) -> Answer:
        with self._lock:
            key = _product(fields, artno)
            return ok({"artno": artno, "quantity": self._stock.get(key, 0)})

    def adjust_stock(self, artno: str, fields: Mapping[str, Any]) -> Answer:
        """``absolute`` sets the quantity, ``relative`` adds to it; every applied change is logged."""
        with self._lock:
            key = _product(fields, artno)
            kind = v.one_of(fields, "type", ("absolute", "relative"))
            quantity = v.integer(fields, "quantity")
            reason_needed = kind == "relative" or v.present(fields, "reason")
            reason = v.integer(fields, "reason") if reason_needed else None
            if kind == "absolute" and quantity < 0:
                raise v.invalid("quantity", "an absolute quantity cannot be negative")
            old = self._stock.get(key, 0)
            new = quantity if kind == "absolute" else old + quantity
            self._stock[key] = new
            self._adjustments.append({
                "seq": len(self._adjustments) + 1, "warehouse_id": key[0], "artno": artno, "type": kind,
                "quantity": quantity, "reason": reason, "old_quantity": old, "new_quantity": new,
            })
            return ok({"artno": artno, "old_quantity": old, "new_quantity": new})

    # -- inventory: package data ----------------------------------------------------------------------
    def get_package_data(self, artno: str, fields: Mapping[str, Any]) -> Answer:
        with self._lock:
            key = _product(fields, artno)
            return ok(self._package_data(key))

    def update_package_data(self, artno: str, fields: Mapping[str, Any]) -> Answer:
        """Adds or replaces packages by ``number``; each needs volume or height, width and length."""
        with self._lock:
            key = _product(fields, artno)
            packages = v.records(fields, "packages")
            for i, package in enumerate(packages):
                where = f"packages[{i}]."
                for name in ("number", "quantity"):
                    v.integer(package, name, where)
                v.number(package, "weight", where)
                if not v.present(package, "volume"):
                    for name in ("height", "width", "length"):
                        v.number(package, name, where)
            stored = self._packages.setdefault(key, {})
            for package in packages:
                stored[str(package["number"])] = copy.deepcopy(package)
            return ok(self._package_data(key))

    def _package_data(self, key: tuple[str, str]) -> dict:
        stored = self._packages.get(key, {})
        packages = sorted(stored.values(), key=lambda p: v.integer(p, "number"))
        return {"artno": key[1], "packages": copy.deepcopy(packages)}

    # -- order lines -------------------------------------------------------------------------------
    def lock_order_lines(self, order_no: str, fields: Mapping[str, Any]) -> Answer:
        """Sets ``processing`` (1 lock, 0 release) per line.  Answers without an envelope, as documented."""
        with self._lock:
            warehouse_id = v.required(fields, "warehouse_id")
            lines = v.records(fields, "lines")
            for i, line in enumerate(lines):
                v.integer(line, "line_no", f"lines[{i}].")
                if v.integer(line, "processing", f"lines[{i}].") not in (0, 1):
                    raise v.invalid(f"lines[{i}].processing", "expected 1 (processing) or 0 (release)")
            for line in lines:
                self._locks[(order_no, str(line["line_no"]))] = {
                    "order_no": order_no, "line_no": line["line_no"], "warehouse_id": warehouse_id,
                    "processing": v.integer(line, "processing")}
            return Answer(status=200, envelope=False, data={"warehouse_id": warehouse_id, "lines": [
                {"line_no": line["line_no"], "processing": v.integer(line, "processing")} for line in lines]})

    def get_order_lines(self, order_no: str, fields: Mapping[str, Any]) -> Answer:
        with self._lock:
            warehouse_id = v.required(fields, "warehouse_id")
            lines = sorted((lock for (order, _), lock in self._locks.items() if order == order_no),
                           key=lambda lock: int(lock["line_no"]))
            return Answer(status=200, envelope=False, data={"warehouse_id": warehouse_id, "lines": [
                {"line_no": lock["line_no"], "processing": lock["processing"]} for lock in lines]})

    # -- for /_sandbox/state ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Everything applied so far, as JSON-ready data."""
        with self._lock:
            return copy.deepcopy({
                "dispatches": [self._dispatches[i] for i in sorted(self._dispatches)],
                "deleted_dispatches": self._deleted,
                "receipts": [self._receipts[i] for i in sorted(self._receipts)],
                "stock": [{"warehouse_id": w, "artno": a, "quantity": q}
                          for (w, a), q in self._stock.items()],
                "stock_adjustments": self._adjustments,
                "package_data": [{"warehouse_id": w, **self._package_data((w, a))}
                                 for (w, a) in self._packages],
                "line_locks": list(self._locks.values()),
            })


def _duplicate(transaction_id: str, kind: str, record_id: int, original: dict) -> Answer:
    """452: the transaction_id was seen; ``data`` is the original record (so the caller learns its id)."""
    return fail(400, DUPLICATE_TRANSACTION, f"request duplication: transaction_id {transaction_id} is "
                f"{kind} {record_id}", data=copy.deepcopy(original))


def _int_id(value: str) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _product(fields: Mapping[str, Any], artno: str) -> tuple[str, str]:
    """The (warehouse_id, artno) key of an inventory route; unknown products answer 404."""
    warehouse_id = str(v.required(fields, "warehouse_id"))
    if artno.upper().startswith("UNKNOWN"):
        raise reject(404, GENERAL_ERROR, f"product {artno} not found")
    return warehouse_id, artno
