"""StockTrim's settings, declared once (worker.destinations.declaration): the tenant's api-auth-id and
api-auth-signature (StockTrim's Help page), how often its forecasts are recomputed, and whether shipped
dispatches are sent as its sales orders."""
from __future__ import annotations

from worker.destinations.declaration import (
    CATALOG_MODES, CHOICE, IDENTITY, LOCATIONS, NUMBER, URL, Declaration, Variable)

ON, OFF = "on", "off"
SALES_ORDER_MODES = (ON, OFF)

DECLARATION = Declaration(
    name="stocktrim", title="StockTrim", prefix="STOCKTRIM",
    base_url=Variable("STOCKTRIM_BASE_URL", "https://api.stocktrim.com/; on when set", kind=URL),
    credentials=(
        Variable("STOCKTRIM_AUTH_ID", "StockTrim's api-auth-id (the tenant id, from StockTrim's Help page)",
                 example="tenant-1"),
        Variable("STOCKTRIM_AUTH_SIGNATURE", "StockTrim's api-auth-signature (from StockTrim's Help page)",
                 secret=True),
    ),
    locations=Variable("STOCKTRIM_LOCATIONS", "WMS warehouse -> StockTrim location code", kind=LOCATIONS,
                       example="nw=NW"),
    catalog=Variable("STOCKTRIM_CATALOG", "an artno without a row in StockTrim's catalog: identity (its own "
                     "productId) or required (not sent until `wms-relay catalog import` gives it one)",
                     kind=CHOICE, choices=CATALOG_MODES, default=IDENTITY),
    others=(
        Variable("STOCKTRIM_FORECAST_EVERY_MINUTES", "StockTrim's forecast run at most this often, and only "
                 "after inventory or demand changed", kind=NUMBER, default=60.0, minimum=0.01),
        Variable("STOCKTRIM_SALES_ORDERS", "on: every final dispatch (dispatch.create without draft, "
                 "dispatch.publish, a publishing dispatch.update, vendor_dispatch.create) is one StockTrim "
                 "sales order, its lines the forecast's demand; off: none are sent", kind=CHOICE,
                 choices=SALES_ORDER_MODES, default=ON),
    ),
    secret_keys=("api-auth-signature",),  # the signature is a header of every request
    bulk=True, batch_max=500,
)
