"""ka-ching's settings, declared once (worker.destinations.declaration): its stock import integration's
account, integration id and api key (docs/destinations.md, "ka-ching")."""
from __future__ import annotations

from worker.destinations.declaration import (
    CATALOG_MODES, CHOICE, IDENTITY, LOCATIONS, URL, Declaration, Variable)

DECLARATION = Declaration(
    name="kaching", title="ka-ching", prefix="KACHING",
    base_url=Variable("KACHING_BASE_URL", "ka-ching's base (https://{BASE_URL}); on when set", kind=URL),
    credentials=(
        Variable("KACHING_ACCOUNT", "the ka-ching account id", example="acme"),
        Variable("KACHING_INTEGRATION", "the id of the import integration set up in ka-ching", example="wms"),
        Variable("KACHING_API_KEY", "the api key of that import integration", secret=True),
    ),
    locations=Variable("KACHING_LOCATIONS", "WMS warehouse -> ka-ching stock location (nw=shop-1,se=shop-2)",
                       kind=LOCATIONS, example="nw=shop-nw"),
    catalog=Variable("KACHING_CATALOG", "an artno without a row in ka-ching's catalog: identity (its own "
                     "product id) or required (not sent until `wms-relay catalog import` gives it one)",
                     kind=CHOICE, choices=CATALOG_MODES, default=IDENTITY),
    secret_keys=("apikey",),  # the api key is a query parameter of every import
    bulk=True, batch_max=500,
)
