"""What Stock2Shop takes: absolute stock counts, as the warehouse's quantity of a variant in its products
queue (``POST /v1/products/queue``).

Stock2Shop keeps levels (``qty_availability``), not movements: relative adjustments are not sent.  Only
warehouses listed in ``STOCK2SHOP_LOCATIONS`` are sent (the location is the ``description`` of the
quantity).  Each count is queued as its artno's row in Stock2Shop's catalog says — product, variant, title
(STOCK2SHOP_CATALOG=required: an artno without a row waits, ``unmapped``; worker.delivery.catalog_wait).
Setting a level twice is harmless, so a lost answer is sent again.
"""
from __future__ import annotations

from typing import Any

from tasks.schemas import stock
from worker.destinations.contract import BatchSender, Destination, Operation
from worker.destinations.stock2shop.declaration import DECLARATION


def level(event: Any) -> bool:
    # Only absolute counts reach Stock2Shop: queueing the same quantity again is harmless.
    return True


def _queue_level(client, fields, catalog_row):
    return client.queue_stock_level(fields["warehouse_id"], catalog_row, fields["quantity"])


OPERATIONS: tuple[Operation, ...] = (
    Operation(name="stock.adjust", destination="stock2shop", resource="stock", key_field="event_id",
              schema=stock.StockAdjustmentSchema, send=_queue_level, resend_rule=level,
              ordered_by_sku=True, uses_catalog=True),
)


def takes(event, settings) -> bool:
    """An absolute count of a warehouse STOCK2SHOP_LOCATIONS lists."""
    return (event.fields.get("type") == stock.ABSOLUTE
            and event.fields.get("warehouse_id") in settings.destination("stock2shop").locations)


def build_client(settings, *, redis=None, clock=None):
    import time

    from worker.destinations.stock2shop.client import Stock2ShopClient

    return Stock2ShopClient(settings, redis=redis, clock=clock or time.time)


def check(client) -> str:
    return client.check()


def _queue_entry(client, item, catalog_row):
    return client.stock_level(client.location_of(item.warehouse_id), catalog_row, item.quantity)


def _queue_batch(client, kind, entries):
    """One ``POST v1/products/queue`` of many products' quantities (levels only)."""
    return client.queue_products(entries)


def sandbox(settings, options):
    """The fake Stock2Shop (``wms-relay sandbox --api stock2shop``; ``--token-ttl``, ``--max-rps``)."""
    from worker.sandbox.stock2shop.api import Stock2ShopApi

    return Stock2ShopApi(username=settings.stock2shop_username, password=settings.stock2shop_password,
                         source_id=settings.stock2shop_source_id, token_ttl=options.token_ttl,
                         max_rps=options.max_rps)


DESTINATION = Destination(declaration=DECLARATION, operations=OPERATIONS,
                          build_client=build_client, check=check, takes=takes, sandbox=sandbox,
                          batch=BatchSender(entry=_queue_entry, send=_queue_batch))
