"""The catalog at delivery: each count names its product by the artno's catalog row — and, where the
destination's catalog is ``required``, an artno without a row is not sent: its delivery waits.

A row flagged ``uses_catalog`` (``worker.destinations.contract.Operation``: the stock counts of ka-ching,
StockTrim and Stock2Shop) is sent with the artno's row of its destination's catalog
(``worker.store.catalog``), handed to its sender.  What becomes of an artno without a row is the
destination's ``<PREFIX>_CATALOG``:

- ``identity`` (ka-ching's and StockTrim's default): the artno is its own product
  (``CatalogRow.identity``);
- ``required`` (Stock2Shop's, its only mode): the delivery is ``waiting`` with reason ``unmapped`` —
  never sent half-formed.  It is listed in the catalog's waiting list and keeps an entry in the retry
  schedule, re-checked every :data:`RECHECK_SECONDS` (a safety net: a re-check that finds no row yet writes
  no new history entry).  The import that gives the artno a row releases it at once (``wms-relay catalog
  import``: worker.support.catalog), and it is then sent as any count — in its batch, or on its own.

The row is looked up where the request is built: before the claim of a count sent on its own
(``pipeline``), before a count joins its batch and again when the batch is built (``batch_delivery``:
``--replace`` may have removed the row meanwhile).  The row it was sent with is kept in the delivery's result
(``catalog``): ``wms-relay event`` and the desk's event page show it.
"""
from __future__ import annotations

from typing import Any, Iterable

from tasks.events import Delivery
from worker.delivery.relay import Relay
from worker.destinations.declaration import REQUIRED
from worker.destinations.table import DESTINATIONS
from worker.store.catalog import CatalogRow

WAITING_REASON = "unmapped"
RECHECK_SECONDS = 300.0


def looks_up(row: Any) -> bool:
    """Is a delivery by ``row`` sent with its artno's catalog row?"""
    return row is not None and row.uses_catalog


def required(relay: Relay, destination: str) -> bool:
    """Is an artno without a row left unsent at ``destination`` (its catalog is ``required``)?"""
    return relay.settings.destination(destination).catalog == REQUIRED


def may_wait(relay: Relay, row: Any) -> bool:
    """May a delivery by ``row`` have to wait for its artno's row?"""
    return looks_up(row) and required(relay, row.destination)


def row_of(relay: Relay, delivery: Delivery) -> CatalogRow | None:
    """The row ``delivery`` is sent with; None when its artno has none and the catalog is required."""
    return rows_of(relay, delivery.destination, [delivery.fields["artno"]]).get(delivery.fields["artno"])


def rows_of(relay: Relay, destination: str, artnos: Iterable[str]) -> dict[str, CatalogRow]:
    """The rows many counts of ``destination`` are sent with (one store call); an artno left out has no
    row and must wait (a required catalog)."""
    wanted = list(artnos)
    found = relay.catalog_of(destination).rows(wanted)
    if not required(relay, destination):
        found = {artno: found.get(artno) or CatalogRow.identity(artno) for artno in wanted}
    return found


def waiting_reason(destination: str, artno: str) -> str:
    title = DESTINATIONS[destination].title
    return (f"{WAITING_REASON}: artno {artno} has no row in {title}'s catalog "
            f"({DESTINATIONS[destination].declaration.prefix}_CATALOG=required); it is sent as soon as an "
            f"import gives it one: wms-relay catalog import {destination} FILE")


def waits_for_row(history: Any) -> bool:
    """The record's latest state change is a wait for its artno's catalog row."""
    last = list(history or ())[-1:] or [{}]
    return last[0].get("to") == "waiting" and str(last[0].get("reason") or "").startswith(WAITING_REASON)


def wait_for_row(relay: Relay, delivery: Delivery, *, owner: str | None = None,
                 artno: str | None = None) -> str:
    """Park ``delivery`` ``waiting`` for its artno's row: its ledger state (once: a re-check writes no new
    entry), the catalog's waiting list, a re-check in the retry schedule.  ``owner``: the batch that had
    claimed it (the move is then from ``sending``, under that claim).  ``artno``: the one it waits for
    when it is not the event's own (a sales order's line: worker.delivery.sales_orders)."""
    artno, ref = artno or delivery.fields["artno"], delivery.ref
    ledger = relay.ledger_of(delivery.destination)
    record = ledger.get(delivery.operation, delivery.key)
    already = record is not None and record.state == "waiting" and waits_for_row(record.history)
    if not already:
        ledger.transition(delivery.operation, delivery.key, "waiting", owner=owner,
                          expected_states=None if owner else ("accepted", "retrying", "waiting"),
                          reason=waiting_reason(delivery.destination, artno))
    catalog = relay.catalog_of(delivery.destination)
    catalog.wait_for_row(ref, artno, relay.clock())
    relay.schedule.schedule(ref, delivery.task_message(), relay.clock() + RECHECK_SECONDS)
    # A row may have been imported between the look and the registration (its import released nothing of
    # this one): look once more.
    if catalog.row(artno) is not None:
        catalog.stop_waiting(ref)
        relay.schedule.run_now([ref])
    return "waiting"


def found_row(relay: Relay, delivery: Delivery, state: str) -> None:
    """A delivery that was ``waiting`` (``state``) found its row: off the waiting list."""
    if state == "waiting":
        relay.catalog_of(delivery.destination).stop_waiting(delivery.ref)


def result_with(result: dict, catalog_row: CatalogRow | None) -> dict:
    """A delivery's result with the catalog row it was sent with (``catalog``)."""
    if catalog_row is None:
        return result
    return {**result, "catalog": {k: v for k, v in catalog_row.to_dict().items() if k != "artno"}}
