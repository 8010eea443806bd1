"""Stock2Shop's settings, declared once (worker.destinations.declaration): the API user, its password and
the source stock is pushed to.  Its "Rate Limits" allow one request a second: all our workers are one
client, so that is its default rate."""
from __future__ import annotations

from worker.destinations.declaration import CHOICE, LOCATIONS, REQUIRED, URL, Declaration, Variable

DECLARATION = Declaration(
    name="stock2shop", title="Stock2Shop", prefix="STOCK2SHOP",
    base_url=Variable("STOCK2SHOP_BASE_URL", "https://app.stock2shop.com/; on when set", kind=URL),
    credentials=(
        Variable("STOCK2SHOP_USERNAME", "the Stock2Shop API user's name", example="relay"),
        Variable("STOCK2SHOP_PASSWORD", "that user's password", secret=True),
        Variable("STOCK2SHOP_SOURCE_ID", "the id of the Stock2Shop source stock is pushed to", example="57"),
    ),
    locations=Variable("STOCK2SHOP_LOCATIONS", "WMS warehouse -> Stock2Shop warehouse (qty_availability "
                       "description)", kind=LOCATIONS, example="nw=Main"),
    # Its products queue's minimum is a product with a title and its variant (docs/destinations.md,
    # "Stock2Shop"): an artno alone gives neither, so there is no identity mode — every artno needs a row.
    catalog=Variable("STOCK2SHOP_CATALOG", "required: an artno without a row in Stock2Shop's catalog is not "
                     "sent until `wms-relay catalog import` gives it one (its products need a title and "
                     "their product/variant relation; identity is not offered)",
                     kind=CHOICE, choices=(REQUIRED,), default=REQUIRED),
    catalog_needs_title=True,
    secret_keys=("token",),  # the login token is a query parameter of every request after the login
    bulk=True, max_rps=1.0, batch_max=500,
)
