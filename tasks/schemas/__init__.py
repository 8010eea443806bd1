"""marshmallow schemas of the WMS events wms-relay delivers to Trademax, one module per Trademax
resource (dispatch, receipt, stock, inventory, orders), mirroring ``docs/trademax-api.txt``.

``tasks.events`` holds the operation table and :func:`validate_event`; they are re-exported here
(lazily, so that ``tasks.events`` can import the schema modules without a cycle).  Importing this
package connects to nothing and imports no Celery, Redis or HTTP library.
"""
from __future__ import annotations

from tasks.schemas.common import EventSchema
from tasks.schemas.dispatch import (
    DispatchCreateSchema,
    DispatchDeleteSchema,
    DispatchPublishSchema,
    DispatchUpdateSchema,
    VendorDispatchCreateSchema,
)
from tasks.schemas.inventory import PackageDataSchema
from tasks.schemas.orders import LineLocksSchema
from tasks.schemas.receipt import ReceiptCreateSchema
from tasks.schemas.stock import StockAdjustmentSchema

_FROM_EVENTS = ("DeliveryEvent", "InvalidEvent", "OPERATIONS", "OperationSpec", "validate_event",
                "safe_to_resend_on_unknown_outcome")

__all__ = [
    "EventSchema",
    "DispatchCreateSchema",
    "DispatchUpdateSchema",
    "DispatchPublishSchema",
    "DispatchDeleteSchema",
    "VendorDispatchCreateSchema",
    "ReceiptCreateSchema",
    "StockAdjustmentSchema",
    "PackageDataSchema",
    "LineLocksSchema",
    *_FROM_EVENTS,
]


def __getattr__(name: str):
    if name in _FROM_EVENTS:
        from tasks import events

        return getattr(events, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
