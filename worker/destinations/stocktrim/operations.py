"""What StockTrim takes: absolute stock counts, as stock on hand per location (``POST /api/Inventory``),
and shipped dispatches, as sales orders (``POST /api/SalesOrdersBulk``:
worker.destinations.stocktrim.sales_orders).

StockTrim keeps levels, not movements: relative adjustments are not sent.  Only warehouses listed in
``STOCKTRIM_LOCATIONS`` are sent.  The productId is the artno's row in StockTrim's catalog
(STOCKTRIM_CATALOG, identity by default: the artno itself): its variant code, or its product code when it
names no variant — StockTrim keeps one product per SKU.  Setting a level twice is harmless, so a lost answer
is sent again.

Sales orders (``STOCKTRIM_SALES_ORDERS=on``, the default): a dispatch that becomes final — a
``dispatch.create`` without ``draft: true``, a ``dispatch.publish``, a ``dispatch.update`` with ``draft:
false``, a ``vendor_dispatch.create`` — is one delivery of its own (queue ``stocktrim.sales``), never batched
with counts.  The relay hands its sender the dispatch as final (worker.delivery.sales_orders); a lost answer
is read back before anything is sent again, so its rows may be resent (``read_back_first``).
After inventory or demand changed, the scheduler asks StockTrim to recompute its forecasts at most once per
``STOCKTRIM_FORECAST_EVERY_MINUTES`` (worker.destinations.stocktrim.forecast), never per event.
"""
from __future__ import annotations

from typing import Any

from tasks.schemas import dispatch, stock
from worker.destinations.contract import BatchSender, Destination, Operation
from worker.destinations.stocktrim.declaration import DECLARATION, ON


def level(event: Any) -> bool:
    # Only absolute counts reach StockTrim: setting stock on hand again is harmless.
    return True


def product_id(catalog_row) -> str:
    """StockTrim's productId of a catalog row: its variant (a SKU), else its product."""
    return catalog_row.variant_code or catalog_row.product_code


def _set_inventory(client, fields, catalog_row):
    return client.set_stock_on_hand(fields["warehouse_id"], product_id(catalog_row), fields["quantity"])


def read_back_first(event: Any) -> bool:
    # A sales order whose answer was lost is read back (GET api/SalesOrders) and only its missing lines
    # are sent: resending it that way records no line twice.
    return True


def _send_sales_order(client, fields, final_dispatch):
    from worker.destinations.stocktrim.sales_orders import sales_order

    location = client.location_of(final_dispatch.warehouse_id)
    return client.deliver_sales_order(sales_order(final_dispatch, location, product_id))


def _sales_row(name, key_field, schema) -> Operation:
    return Operation(name=name, destination="stocktrim", resource="dispatch", key_field=key_field,
                     schema=schema, send=_send_sales_order, resend_rule=read_back_first,
                     makes_sales_order=True)


OPERATIONS: tuple[Operation, ...] = (
    Operation(name="stock.adjust", destination="stocktrim", resource="stock", key_field="event_id",
              schema=stock.StockAdjustmentSchema, send=_set_inventory, resend_rule=level,
              ordered_by_sku=True, uses_catalog=True),
    _sales_row("dispatch.create", "transaction_id", dispatch.DispatchCreateSchema),
    _sales_row("dispatch.update", "event_id", dispatch.DispatchUpdateSchema),
    _sales_row("dispatch.publish", "event_id", dispatch.DispatchPublishSchema),
    _sales_row("vendor_dispatch.create", "event_id", dispatch.VendorDispatchCreateSchema),
)


def sales_orders_on(settings) -> bool:
    return settings.destination("stocktrim").value("STOCKTRIM_SALES_ORDERS") == ON


def _final(event) -> bool:
    """Does the event make its dispatch final (a shipment that left: a sale)?"""
    draft = event.fields.get("draft")
    if event.operation == "dispatch.create":
        return draft is not True
    if event.operation == "dispatch.update":
        return draft is False
    return event.operation in ("dispatch.publish", "vendor_dispatch.create")


def takes(event, settings) -> bool:
    """An absolute count of a warehouse STOCKTRIM_LOCATIONS lists; with sales orders on, a dispatch that
    becomes final (of a listed warehouse, where the event names one)."""
    locations = settings.destination("stocktrim").locations
    if event.operation == "stock.adjust":
        return event.fields.get("type") == stock.ABSOLUTE and event.fields.get("warehouse_id") in locations
    if not (sales_orders_on(settings) and _final(event)):
        return False
    warehouse = event.fields.get("warehouse_id")
    return warehouse is None or warehouse in locations


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


def product(catalog_row) -> dict:
    """StockTrim's ``ProductsRequestDto`` of a catalog row: its productId, the artno people read, its
    title."""
    body = {"productId": product_id(catalog_row), "productCodeReadable": catalog_row.artno}
    if catalog_row.title:
        body["name"] = catalog_row.title
    return body


def sandbox(settings, options):
    """The fake StockTrim (``wms-relay sandbox --api stocktrim``)."""
    from worker.sandbox.stocktrim.api import StockTrimApi

    return StockTrimApi(auth_id=settings.stocktrim_auth_id, auth_signature=settings.stocktrim_auth_signature)


DESTINATION = Destination(declaration=DECLARATION, operations=OPERATIONS,
                          build_client=build_client, check=check, takes=takes, sandbox=sandbox,
                          housekeeping=housekeeping, product=product,
                          batch=BatchSender(entry=_inventory_entry, send=_inventory_batch))
