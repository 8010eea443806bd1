"""Every destination's settings declaration, in order (the first is the one the WMS publishes to): the
one list of destinations.  worker.settings and worker.redaction read it; ``worker.destinations.table``
builds its table from it (each declared destination's ``operations`` module beside its ``declaration``),
so a new destination is one line here.

Layer 1, as the declarations it lists: it imports nothing but them (docs/architecture.md, "How to add a
destination")."""
from __future__ import annotations

from worker.destinations.declaration import Declarations, declarations_of
from worker.destinations.kaching.declaration import DECLARATION as KACHING
from worker.destinations.stock2shop.declaration import DECLARATION as STOCK2SHOP
from worker.destinations.stocktrim.declaration import DECLARATION as STOCKTRIM
from worker.destinations.trademax.declaration import DECLARATION as TRADEMAX

DECLARATIONS: Declarations = declarations_of([TRADEMAX, KACHING, STOCKTRIM, STOCK2SHOP])
