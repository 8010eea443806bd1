"""Receipt events: goods received against an incoming order (Trademax ``POST receipt``)."""
from __future__ import annotations

from tasks.schemas.common import (
    CalendarDate,
    Choice,
    EventSchema,
    Integer,
    Listing,
    Nested,
    StrictSchema,
    Text,
    artno,
    order_no,
    quantity,
    transaction_id,
    warehouse_id,
)

ORDER_TYPES = ("PO", "SRO", "TO")
MAX_PRODUCTS = 5000


class ReceiptProductSchema(StrictSchema):
    """One received order line.  ``line_no`` is an int in the receipt document (no digit strings)."""

    line_no = Integer(required=True)
    artno = artno(required=True)
    quantity = quantity(required=True)
    vendor_shipment_no = Text(64)


class ReceiptCreateSchema(EventSchema):
    """``receipt.create`` -> ``POST receipt``; keyed by ``transaction_id`` (a repeat gets error 452)."""

    warehouse_id = warehouse_id(required=True)
    order_no = order_no(required=True)
    transaction_id = transaction_id(required=True)
    order_type = Choice(ORDER_TYPES, required=True)
    received_date = CalendarDate(required=True)
    products = Listing(Nested(ReceiptProductSchema), max_items=MAX_PRODUCTS, required=True)
