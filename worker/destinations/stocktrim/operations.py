"""What StockTrim takes: absolute stock counts, as stock on hand per location (``POST /api/Inventory``).

StockTrim keeps levels, not movements: relative adjustments are not sent.  Only warehouses listed in
``STOCKTRIM_LOCATIONS`` are sent.  The productId is the artno's row in StockTrim's catalog
(STOCKTRIM_CATALOG, identity by default: the artno itself): its variant code, or its product code when it
names no variant — StockTrim keeps one product per SKU.  Setting a level twice is harmless, so a lost answer
is sent again.
After inventory changed, the scheduler asks StockTrim to recompute its forecasts at most once per
``STOCKTRIM_FORECAST_EVERY_MINUTES`` (worker.destinations.stocktrim.forecast), never per event.
"""
from __future__ import annotations

from typing import Any

from tasks.schemas import stock
from worker.destinations.contract import BatchSender, Destination, Operation
from worker.destinations.stocktrim.declaration import DECLARATION


def level(event: Any) -> bool:
    # Only absolute counts reach StockTrim: setting stock on hand again is harmless.
    return True


def product_id(catalog_row) -> str:
    """StockTrim's productId of a catalog row: its variant (a SKU), else its product."""
    return catalog_row.variant_code or catalog_row.product_code


def _set_inventory(client, fields, catalog_row):
    return client.set_stock_on_hand(fields["warehouse_id"], product_id(catalog_row), fields["quantity"])


OPERATIONS: tuple[Operation, ...] = (
    Operation(name="stock.adjust", destination="stocktrim", resource="stock", key_field="event_id",
              schema=stock.StockAdjustmentSchema, send=_set_inventory, resend_rule=level,
              ordered_by_sku=True, uses_catalog=True),
)


def takes(event, settings) -> bool:
    """An absolute count of a warehouse STOCKTRIM_LOCATIONS lists."""
    return (event.fields.get("type") == stock.ABSOLUTE
            and event.fields.get("warehouse_id") in settings.destination("stocktrim").locations)


def build_client(settings, *, redis=None, clock=None):
    import time

    from worker.destinations.stocktrim.client import StockTrimClient

    return StockTrimClient(settings, redis=redis, clock=clock or time.time)


def check(client) -> str:
    return client.check()


def _inventory_entry(client, item, catalog_row):
    return {"productId": product_id(catalog_row), "locationCode": client.location_of(item.warehouse_id),
            "stockOnHand": item.quantity}


def _inventory_batch(client, kind, entries):
    """One ``POST api/Inventory`` of many products' stock on hand (levels only)."""
    return client.set_inventory(entries)


def housekeeping(settings, *, redis, clock):
    """The forecast run the scheduler triggers (None when StockTrim is off)."""
    if not DESTINATION.is_on(settings):
        return None
    from worker.destinations.stocktrim.forecast import ForecastRuns

    return ForecastRuns.from_settings(settings, redis=redis, clock=clock)


def sandbox(settings, options):
    """The fake StockTrim (``wms-relay sandbox --api stocktrim``)."""
    from worker.sandbox.stocktrim.api import StockTrimApi

    return StockTrimApi(auth_id=settings.stocktrim_auth_id, auth_signature=settings.stocktrim_auth_signature)


DESTINATION = Destination(declaration=DECLARATION, operations=OPERATIONS,
                          build_client=build_client, check=check, takes=takes, sandbox=sandbox,
                          housekeeping=housekeeping,
                          batch=BatchSender(entry=_inventory_entry, send=_inventory_batch))
