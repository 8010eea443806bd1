"""What ka-ching takes: stock counts, as its stock import (``POST /imports/stock``).

An absolute count replaces the stock at the warehouse's ka-ching location (``external_reset``); a relative
adjustment is added to it (``&adjustment=true``, ``external_adjustment``).  Only warehouses listed in
``KACHING_LOCATIONS`` are sent.  A lost answer: an absolute count is sent again (setting a value twice
is harmless); a relative one is parked ``uncertain`` (adding twice is not).
"""
from __future__ import annotations

from typing import Any

from tasks.schemas import stock
from worker.destinations.contract import BatchSender, Destination, Operation
from worker.destinations.kaching.declaration import DECLARATION


def absolute_stock_value(event: Any) -> bool:
    # Replacing the count again leaves ka-ching as replacing it once; adding again adds twice.
    return event.fields.get("type") == stock.ABSOLUTE


def _import_stock(client, fields, _):
    return client.import_stock(fields["warehouse_id"], fields["artno"], fields["quantity"],
                               adjustment=fields["type"] == stock.RELATIVE)


OPERATIONS: tuple[Operation, ...] = (
    Operation(name="stock.adjust", destination="kaching", resource="stock", key_field="event_id",
              schema=stock.StockAdjustmentSchema, send=_import_stock, resend_rule=absolute_stock_value,
              ordered_by_sku=True),
)


def takes(event, settings) -> bool:
    """A count or an adjustment of a warehouse KACHING_LOCATIONS lists."""
    return event.fields.get("warehouse_id") in settings.destination("kaching").locations


def build_client(settings, *, redis=None, clock=None):
    import time

    from worker.destinations.kaching.client import KachingClient

    return KachingClient(settings, clock=clock or time.time)


def check(client) -> str:
    return client.check()


def _import_entry(client, item):
    return client.location_of(item.warehouse_id), item.artno, item.quantity


def _import_batch(client, kind, entries):
    """One stock import of many counts: ``{location: {product: count}}``.  A batch holds one count per
    product (the newest level, or one adjustment: worker.flow.batches); only two warehouses mapped to one
    ka-ching location can meet in one value — adjustments then add up (the sum adds the same), the later
    level wins."""
    stock: dict = {}
    for location, artno, quantity in entries:
        counts = stock.setdefault(location, {})
        counts[artno] = counts.get(artno, 0) + quantity if kind == "add" else quantity
    return client.post_import(stock, adjustment=kind == "add")


def sandbox(settings, options):
    """The fake ka-ching stock import (``wms-relay sandbox --api kaching``)."""
    from worker.sandbox.kaching.api import KachingApi

    return KachingApi(account=settings.kaching_account, integration=settings.kaching_integration,
                      api_key=settings.kaching_api_key)


DESTINATION = Destination(declaration=DECLARATION, operations=OPERATIONS, build_client=build_client,
                          check=check, takes=takes, sandbox=sandbox,
                          batch=BatchSender(entry=_import_entry, send=_import_batch, kinds=("level", "add")))
