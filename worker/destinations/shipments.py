"""What a row that ``makes_sales_order`` is handed (worker.destinations.contract): a dispatch as final —
its warehouse, when it shipped, its product lines with their catalog rows — and whether an earlier
attempt's answer was lost.  Pure data: the relay builds it (worker.delivery.sales_orders), the
destination's sender turns it into its request (StockTrim: worker.destinations.stocktrim.sales_orders)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping


@dataclass(frozen=True)
class ShippedLine:
    reference: str  # <transaction_id>:<line_no>: the line's name at the destination, once
    line_no: Any
    artno: str
    quantity: Any
    catalog_row: Any  # worker.store.catalog.CatalogRow: the product it names there


@dataclass(frozen=True)
class FinalDispatch:
    transaction_id: str
    warehouse_id: str
    occurred_at: str
    lines: tuple[ShippedLine, ...]
    read_back_first: bool = False  # an earlier attempt's answer was lost: read the destination first


def reference(transaction_id: str, line_no: Any) -> str:
    """A shipped line's name: ``<transaction_id>:<line_no>``."""
    return f"{transaction_id}:{line_no}"


def merged_lines(noted: Iterable[Mapping[str, Any]], own: Iterable[Mapping[str, Any]]) -> list[dict]:
    """A dispatch's product lines as final: ``noted`` (the create's and updates' lines, newest per
    line_no: worker.store.dispatch_lines) overlaid by ``own`` (the final event's ``products``), by
    line_no — the way Trademax merges an update's products into the dispatch.  Ordered by line_no."""
    lines: dict[str, dict] = {}
    for line in [*noted, *own]:
        lines[str(line["line_no"])] = {"line_no": line["line_no"], "artno": line["artno"],
                                       "quantity": line["quantity"]}
    return sorted(lines.values(), key=lambda line: int(line["line_no"]))
