"""marshmallow schemas of the WMS events wms-relay delivers to Trademax, one module per Trademax
resource (dispatch, receipt, stock, inventory, orders), following the resource pages of Trademax's API
documentation (see ``worker.destinations.trademax``).

The lowest layer of the WMS contract: the rows of the operation tables (``worker.destinations``) name
these schemas, and ``tasks.events.validate_event`` loads with them.  Importing this package connects to
nothing and imports no Celery, Redis or HTTP library, and nothing of ``worker``.
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
]
