"""A shipped dispatch as one StockTrim sales order (StockTrim's OpenAPI document: ``POST
/api/SalesOrdersBulk`` with a ``SalesOrderWithLineItemsRequestDto``, ``GET /api/SalesOrders?productId=``
answering ``SalesOrderResponseDto`` items).  Pure: no HTTP, no store.

StockTrim's guide asks for two data sets, "Products and Sale Orders", and calculates the forecast "based on
the sales history": each dispatch that becomes final is a sale the warehouse knows of the moment it ships.
One line per product line of the dispatch as final, named ``<transaction_id>:<line_no>``
(``externalReferenceId``).  Nothing in StockTrim's documents says it refuses a repeated
``externalReferenceId``, so the relay assumes a resent line is recorded twice: a sales order whose answer was
lost is read back first (:func:`missing_lines`) and only the lines StockTrim lacks are sent again.

    SalesLine(reference, artno, product_id, quantity)   one line; product_id from the catalog row
    SalesOrder(location, order_date, lines, read_back_first)
    sales_order(dispatch, location, product_id)         a final dispatch (worker.destinations.shipments)
    order_body(order, lines)                            the SalesOrderWithLineItemsRequestDto
    missing_lines(order, found)                         the lines whose reference StockTrim does not show
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable

from worker.destinations.shipments import FinalDispatch


@dataclass(frozen=True)
class SalesLine:
    reference: str  # externalReferenceId: <transaction_id>:<line_no>
    artno: str
    product_id: str
    quantity: Any


@dataclass(frozen=True)
class SalesOrder:
    """What the relay hands the sender of a sales order: the warehouse's location, the event's
    ``occurred_at`` and the lines.  ``read_back_first``: an earlier attempt's answer was lost (or its worker
    stopped mid-send) — StockTrim's sales orders are read before anything is sent again."""

    location: str
    order_date: str
    lines: tuple[SalesLine, ...]
    read_back_first: bool = False

    @property
    def references(self) -> list[str]:
        return [line.reference for line in self.lines]

    @property
    def products(self) -> list[str]:
        return list(dict.fromkeys(line.product_id for line in self.lines))


def sales_order(dispatch: FinalDispatch, location: str,
                product_id: Callable[[Any], str]) -> SalesOrder:
    """The sales order of a final dispatch (worker.destinations.shipments) at ``location``; each line's
    productId is ``product_id(catalog_row)``."""
    lines = tuple(SalesLine(line.reference, line.artno, product_id(line.catalog_row), line.quantity)
                  for line in dispatch.lines)
    return SalesOrder(location, order_date(dispatch.occurred_at), lines, dispatch.read_back_first)


def order_date(occurred_at: str) -> str:
    """An event's ``occurred_at`` as StockTrim's date-time: the ISO form its generated models write
    (``2024-05-14T07:12:45+00:00``), so the body is the same JSON after a round trip through them."""
    return datetime.fromisoformat(occurred_at.replace("Z", "+00:00")).isoformat()


def order_body(order: SalesOrder, lines: Iterable[SalesLine] | None = None) -> dict:
    """``SalesOrderWithLineItemsRequestDto`` of ``lines`` (default: all of the order's)."""
    items = [{"productId": line.product_id, "orderDate": order.order_date, "quantity": line.quantity,
              "externalReferenceId": line.reference, "locationCode": order.location}
             for line in (order.lines if lines is None else lines)]
    return {"orderDate": order.order_date, "locationCode": order.location, "saleOrderLineItems": items}


def found_references(answers: Iterable[Any]) -> set[str]:
    """The ``externalReferenceId`` of every ``SalesOrderResponseDto`` in the answers of ``GET
    api/SalesOrders`` (one list per product)."""
    found: set[str] = set()
    for answer in answers:
        for item in answer if isinstance(answer, list) else ():
            if isinstance(item, dict) and item.get("externalReferenceId"):
                found.add(str(item["externalReferenceId"]))
    return found


def missing_lines(order: SalesOrder, found: set[str]) -> list[SalesLine]:
    return [line for line in order.lines if line.reference not in found]


KEPT_REFERENCES = 20  # the ledger stays small: a dispatch may have 5,000 lines


def summary(order: SalesOrder, sent: Iterable[SalesLine], *, read_back: bool) -> dict:
    """What the ledger keeps of a delivered sales order (``sales_order``): its location, how many lines
    it has and how many this attempt sent, the first KEPT_REFERENCES references, what a read-back found."""
    sent = list(sent)
    kept = {"location": order.location, "lines": len(order.lines), "sent": len(sent),
            "references": order.references[:KEPT_REFERENCES]}
    if read_back:
        kept["read_back"] = True
        kept["found"] = len(order.lines) - len(sent)
    return kept
