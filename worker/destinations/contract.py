"""What every destination provides: a :class:`Destination` with one :class:`Operation` row per WMS
operation it takes, and the :class:`Classification` every destination's answers are read into.

A destination is a package ``worker/destinations/<name>/`` (``trademax/``, ``kaching/``, ``stocktrim/``,
``stock2shop/``) whose ``declaration`` module declares its settings (``worker.destinations.declaration``)
and whose ``operations`` module defines ``OPERATIONS`` (its rows) and ``DESTINATION`` (the rest below).
``operations`` stays pure — no HTTP library, no Redis — so the table, Celery's routes and the WMS contract
can be read without them; the client is imported when a process builds it.

A row (:class:`Operation`) is everything the relay knows about one WMS operation at one destination:

==================  ==========================================================================
``name``            the WMS operation (``stock.adjust``); with the key, what the destination's ledger keys
``destination``     the destination's name (``kaching``): the first part of its task and queue names
``task_name``       the Celery task it travels as (``kaching.stock.adjust``).  The WMS publishes the first
                    destination's tasks (``trademax.<operation>``: the contract predates the others); the
                    relay publishes the others' (fan-out, :func:`worker.destinations.table.routes`)
``queue``           the Celery queue it travels on (one per destination resource: ``kaching.stock``)
``task_module``     the module under ``tasks/`` that registers the task
``key_field``       the field that is the event's idempotency key (``transaction_id``/``event_id``)
``schema``          the marshmallow schema of the WMS event (``tasks.schemas``); the same for every
                    destination of one operation (the WMS sends one event)
``send``            ``send(client, fields, resolved) -> reply``: the one call that delivers it;
                    ``resolved`` is what the relay looked up for it — the shipment's dispatch_id for a row
                    that ``needs_dispatch_id``, the artno's catalog row (worker.store.catalog.CatalogRow)
                    for a row that ``uses_catalog``, else None
``needs_dispatch_id``  names a shipment by transaction_id: waits for its create's dispatch_id
                    (worker.delivery.dispatch_wait)
``resend_rule``     ``rule(event) -> bool``: may it be sent again after an unknown outcome?  Where not,
                    a lost answer parks the delivery ``uncertain`` for a person
``ordered_by_sku``  its absolute counts (``type=absolute``) are values of one (warehouse_id, artno):
                    each takes its SKU's turn, an older one is superseded (worker.delivery.stock_turn)
``wakes_dispatch_waiters``
                    its delivery gives a shipment its dispatch_id: the deliveries waiting for it
                    (``needs_dispatch_id``) run now (worker.delivery.dispatch_wait)
``uses_catalog``    it names the product by the artno's row in the destination's catalog (its declaration's
                    ``catalog``): the relay looks the row up and, where the catalog is ``required`` and the
                    artno has none, the delivery waits (worker.delivery.catalog_wait)
``makes_sales_order``
                    a final dispatch becomes one sales order of its product lines (StockTrim): the relay
                    hands the sender the order's plan — its lines as final (a draft's lines merged with its
                    updates'), their products from the catalog, and whether an earlier attempt's answer was
                    lost (read back first) — never batched with counts (worker.delivery.sales_orders)
==================  ==========================================================================

A destination (:class:`Destination`) adds what is not per row:

==================  ==========================================================================
``declaration``     its settings (``worker.destinations.declaration``): its ``name``, its ``title`` (how
                    people write it), its variables; ``is_on(settings)``: its base URL set?  An off
                    destination gets nothing
``takes``           ``takes(event, settings) -> bool``: the routing rule — is this (valid) event for it?
                    (e.g. its ``*_LOCATIONS`` lists the event's warehouse; StockTrim takes absolute
                    counts only).  Asked only for operations it has a row for
``build_client``    ``build_client(settings, *, redis, clock) -> client``: imports and builds its client
                    (one per process, shared by the threads); the client raises the ``worker.errors``
                    tree (:class:`Classification` → ``TransientError`` / ``OutcomeUnknownError`` /
                    ``PermanentError``) and returns a reply with ``status``, ``error_code``,
                    ``latency_seconds``, ``duplicate`` and ``ledger_result()``
``check``           ``check(client) -> str``: one harmless request (``wms-relay check``): what it saw,
                    or it raises the errors tree
``housekeeping``    ``housekeeping(settings, *, redis, clock) -> job | None``: a periodic job the
                    scheduler runs (StockTrim's forecast run), or None
``namespace``       the prefix of its Redis keys (ledger, stock order): ``wms`` for the first destination
                    (its keys predate the others, so a store written before them reads as its
                    deliveries), ``wms:<name>`` for the others
``ref_prefix``      what comes before ``operation:key`` in a delivery's ref (retry entries, dead letters,
                    what people type): ``""`` for the first destination, ``<name>/`` for the others
``sandbox``         ``sandbox(settings, options) -> SandboxApi``: imports and builds its fake API
                    (``wms-relay sandbox --api <name>``; credentials from the variables its client reads,
                    ``options``: the command's arguments), or None when it has none
``product``         ``product(catalog_row) -> body`` where it keeps products the relay tells it of
                    (StockTrim's ``POST /api/Products``): a catalog import's new and changed rows are
                    sent by each worker's flow keeper (worker.delivery.product_sync), else None
``batch``           a :class:`BatchSender` for a bulk API (many stock counts per request, its declaration
                    says ``bulk``), else None: its counts are batched per ``<DEST>_BATCH_MAX`` /
                    ``<DEST>_BATCH_SECONDS`` (worker.flow); its ``entry`` is handed each count's catalog
                    row
==================  ==========================================================================

Queues, routes, task modules and the routing of one event to its destinations are built from the
destinations in ``worker.destinations.table``.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable

from worker.destinations.declaration import Declaration

Send = Callable[[Any, dict, Any], Any]


class Classification(str, enum.Enum):
    """What one answer (or the lack of one) means for a delivery, whichever destination gave it."""

    DELIVERED = "delivered"
    DUPLICATE = "duplicate"  # the destination already had it (Trademax's 452): delivered
    TRANSIENT = "transient"  # not applied; try again later
    OUTCOME_UNKNOWN = "outcome_unknown"  # sent, no answer: resend only where the row's resend rule allows
    PERMANENT = "permanent"  # refused; retrying will not change it: a dead letter

    @property
    def delivered(self) -> bool:
        return self in (Classification.DELIVERED, Classification.DUPLICATE)


def classification_of(error: Any) -> Classification:
    """The classification a failed call's error (``worker.errors``) stands for: what its attempt's
    ``outcome`` records."""
    from worker.errors import OutcomeUnknownError, TransientError

    if isinstance(error, TransientError):
        return Classification.TRANSIENT
    if isinstance(error, OutcomeUnknownError):
        return Classification.OUTCOME_UNKNOWN
    return Classification.PERMANENT


@dataclass(frozen=True)
class Operation:
    """One WMS operation as one destination delivers it (see the module docstring)."""

    name: str
    destination: str
    resource: str  # the destination's resource: names the queue and the task module
    key_field: str  # "transaction_id" (the destination deduplicates it) or "event_id"
    schema: type
    send: Send
    resend_rule: Callable[[Any], bool]
    needs_dispatch_id: bool = False
    ordered_by_sku: bool = False
    wakes_dispatch_waiters: bool = False
    uses_catalog: bool = False
    makes_sales_order: bool = False

    def __post_init__(self) -> None:
        if sum((self.uses_catalog, self.needs_dispatch_id, self.makes_sales_order)) > 1:
            raise ValueError(f"{self.task_name}: a row is handed a dispatch_id, a catalog row or a sales "
                             "order's plan, only one")

    @property
    def batchable(self) -> bool:
        """May a bulk destination take it in a batch (a stock count)?  A sales order never."""
        return not self.makes_sales_order

    @property
    def task_name(self) -> str:
        return f"{self.destination}.{self.name}"

    @property
    def queue(self) -> str:
        return f"{self.destination}.{self.resource}"

    @property
    def task_module(self) -> str:
        return f"tasks.{self.resource}"

    def safe_to_resend(self, event: Any) -> bool:
        """Whether ``event`` may be sent again when a read timeout (or a worker killed mid-send) left it
        unknown whether the destination applied it.  Where not, the pipeline parks it ``uncertain``."""
        return self.resend_rule(event)


@dataclass(frozen=True)
class BatchSender:
    """How a bulk destination takes many stock counts in one request (worker.flow.batches batches them;
    worker.delivery.batch_delivery sends them).

    ``entry(client, item, catalog_row) -> part``: one pending count's part of the request (``item`` has
    ``warehouse_id``, ``artno``, ``quantity``, ``kind``; ``catalog_row`` names its product there:
    worker.store.catalog.CatalogRow); raises ``PermanentError`` when that count cannot be sent (its
    warehouse has no location there).  ``send(client, kind, parts) -> reply``: one request
    carrying ``parts``, all of one kind — ``level`` (an absolute count: replaces) or ``add`` (a relative
    adjustment: adds; only where ``kinds`` has it)."""

    entry: Callable[[Any, Any], Any]
    send: Callable[[Any, str, list], Any]
    kinds: tuple[str, ...] = ("level",)


def _always(*_: Any, **__: Any) -> bool:
    return True


def _no_housekeeping(*_: Any, **__: Any) -> None:
    return None


@dataclass(frozen=True)
class Destination:
    """One retail API the relay delivers to (see the module docstring)."""

    declaration: Declaration
    operations: tuple[Operation, ...]
    build_client: Callable[..., Any]
    check: Callable[[Any], str]
    takes: Callable[[Any, Any], bool] = _always
    housekeeping: Callable[..., Any] = _no_housekeeping
    namespace: str = ""
    ref_prefix: str | None = None
    batch: BatchSender | None = None  # a bulk destination: its stock counts may be batched
    sandbox: Callable[[Any, Any], Any] | None = None
    # product(catalog_row) -> the body that tells it of the product (StockTrim's Products), or None: the
    # rows a catalog import adds or changes are sent (worker.delivery.product_sync)
    product: Callable[[Any], dict] | None = None
    name: str = field(init=False)
    title: str = field(init=False)  # how people write it: "ka-ching"
    operation_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.declaration.name)
        object.__setattr__(self, "title", self.declaration.title)
        if (self.batch is not None) != self.declaration.bulk:
            raise ValueError(f"{self.name}: a batch sender goes with a declaration that says bulk, and only "
                             "with one")
        if not self.namespace:
            object.__setattr__(self, "namespace", f"wms:{self.name}")
        if self.ref_prefix is None:
            object.__setattr__(self, "ref_prefix", f"{self.name}/")
        object.__setattr__(self, "operation_names", tuple(row.name for row in self.operations))
        for row in self.operations:
            if row.destination != self.name:
                raise ValueError(f"{row.name}: a row of {row.destination!r} in {self.name!r}'s table")
            if row.uses_catalog and self.declaration.catalog is None:
                raise ValueError(f"{row.task_name} uses a catalog its declaration does not declare")

    def __repr__(self) -> str:
        return f"Destination({self.name!r})"

    def is_on(self, settings: Any) -> bool:
        """Configured (its base URL set)?"""
        return settings.destination(self.name).is_on

    def row(self, operation: str) -> Operation | None:
        """Its row for ``operation``, or None when it does not take that operation."""
        for row in self.operations:
            if row.name == operation:
                return row
        return None

    def delivery_ref(self, operation: str, key: str) -> str:
        """``kaching/stock.adjust:E-1`` (``stock.adjust:E-1`` for the first destination): one delivery."""
        return f"{self.ref_prefix}{operation}:{key}"
