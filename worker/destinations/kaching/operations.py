"""What ka-ching takes: stock counts, as its stock import (``POST /imports/stock``).

An absolute count replaces the stock at the warehouse's ka-ching location (``external_reset``); a relative
adjustment is added to it (``&adjustment=true``, ``external_adjustment``).  Only warehouses listed in
``KACHING_LOCATIONS`` are sent.  The product is the artno's row in ka-ching's catalog (KACHING_CATALOG,
identity by default: the artno itself): a row with a variant is sent as ``{"<location>": {"<product>":
{"<variant>": n}}}``, and the variants of one product in one batch share its object.  A lost answer: an
absolute count is sent again (setting a value twice is harmless); a relative one is parked ``uncertain``
(adding twice is not).  An import "initiated" for fewer values than it carried parks its counts
``uncertain`` (worker.destinations.kaching.client).
"""
from __future__ import annotations

from typing import Any

from tasks.schemas import stock
from worker.destinations.contract import BatchSender, Destination, Operation
from worker.destinations.kaching.declaration import DECLARATION
from worker.errors import PermanentError


def absolute_stock_value(event: Any) -> bool:
    # Replacing the count again leaves ka-ching as replacing it once; adding again adds twice.
    return event.fields.get("type") == stock.ABSOLUTE


def _import_stock(client, fields, catalog_row):
    return client.import_stock(fields["warehouse_id"], catalog_row.product_code, fields["quantity"],
                               variant_id=catalog_row.variant_code or None,
                               adjustment=fields["type"] == stock.RELATIVE)


OPERATIONS: tuple[Operation, ...] = (
    Operation(name="stock.adjust", destination="kaching", resource="stock", key_field="event_id",
              schema=stock.StockAdjustmentSchema, send=_import_stock, resend_rule=absolute_stock_value,
              ordered_by_sku=True, uses_catalog=True),
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


def _import_entry(client, item, catalog_row):
    return (client.location_of(item.warehouse_id), catalog_row.product_code, catalog_row.variant_code or None,
            item.quantity)


def _import_batch(client, kind, entries):
    """One stock import of many counts: ``{location: {product: count}}``, a variant's count as ``{location:
    {product: {variant: count}}}`` (the variants of one product share its object).  A batch holds one count
    per artno (the newest level, or one adjustment: worker.flow.batches); only two warehouses mapped to one
    ka-ching location can meet in one value — adjustments then add up (the sum adds the same), the later
    level wins."""
    stock: dict = {}
    for location, product, variant, quantity in entries:
        counts = stock.setdefault(location, {})
        held = counts.get(product)
        if held is not None and (variant is None) == isinstance(held, dict):
            # The catalog refuses a product both whole and by variant; an identity artno that is another
            # row's product code can still meet one here — no body can say both.
            raise PermanentError(f"product {product!r} at {location!r} is counted both as a whole (an artno "
                                 "without a catalog row) and by variant: give that artno its own row",
                                 destination="kaching", operation="import_stock")
        if variant is not None:
            counts, product = counts.setdefault(product, {}), variant
        counts[product] = counts.get(product, 0) + quantity if kind == "add" else quantity
    return client.post_import(stock, adjustment=kind == "add")


def sandbox(settings, options):
    """The fake ka-ching stock import (``wms-relay sandbox --api kaching``)."""
    from worker.sandbox.kaching.api import KachingApi

    return KachingApi(account=settings.kaching_account, integration=settings.kaching_integration,
                      api_key=settings.kaching_api_key)


DESTINATION = Destination(declaration=DECLARATION, operations=OPERATIONS, build_client=build_client,
                          check=check, takes=takes, sandbox=sandbox,
                          batch=BatchSender(entry=_import_entry, send=_import_batch, kinds=("level", "add")))
