"""A destination's catalog as support staff keep it: ``wms-relay catalog import DEST FILE [--replace]``,
``catalog show DEST [ARTNO]``, ``catalog export DEST`` (worker.commands.catalog), and what ``status`` and
the desk say of the deliveries waiting for a row.

An import reads the file whole (worker.support.catalog_file: any problem refuses it, naming the line and
the column, and nothing of it is imported), checks it together with the rows it keeps (a merge keeps the
catalog's other rows; ``--replace`` drops them), writes it in one replayable step (worker.store.catalog)
and releases the deliveries that were waiting for a row of it — due now in the retry schedule, each then
sent once by its own claim.  Every import, done or refused for its file, is written to the audit log (who,
the destination, the file, what it added, changed, removed and released).

Refused with :class:`CatalogRefused` (the CLI exits 2), nothing changed: a destination that is unknown, has
no catalog, or is not on (its base URL is not set in this environment — what ``status`` calls on).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from worker.delivery.product_sync import queue_rows
from worker.destinations.contract import Destination
from worker.destinations.table import DESTINATIONS
from worker.store.catalog import COLUMNS, CatalogChange, CatalogRow
from worker.support.catalog_file import CatalogFileError, check_together, read

ACTION = "catalog-import"
FIRST = 5  # how many waiting artnos status and the desk name


class CatalogRefused(ValueError):
    """The import cannot be done; the message is one sentence saying why (nothing changed)."""


def catalog_destination(settings: Any, name: str) -> Destination:
    """The destination ``name`` whose catalog people may import to; CatalogRefused saying why not."""
    found = DESTINATIONS.get(name)
    if found is None:
        raise CatalogRefused(f"No destination {name!r}: the destinations with a catalog are "
                             f"{', '.join(with_catalog())}.")
    if found.declaration.catalog is None:
        raise CatalogRefused(f"{found.title} has no catalog (it is sent what the WMS names): the "
                             f"destinations with one are {', '.join(with_catalog())}.")
    if not found.is_on(settings):
        raise CatalogRefused(f"{found.title} is not on here ({found.declaration.base_url.name} is not set): "
                             "its catalog is imported where it is on; nothing was changed.")
    return found


def with_catalog() -> list[str]:
    return [name for name, d in DESTINATIONS.items() if d.declaration.catalog is not None]


@dataclass(frozen=True)
class CatalogImport:
    """What one import did (or, with ``refusal``, why its file was refused)."""

    destination: str
    source: str
    rows: int
    replace: bool
    change: CatalogChange | None = None
    released_now: int = 0  # of the released deliveries, those made due now (the rest were on their way)
    refusal: str = ""
    products_queued: int = 0  # rows whose product is sent to the destination (worker.delivery.product_sync)

    @property
    def message(self) -> str:
        if self.refusal:
            return f"{self.source} refused, nothing imported: {self.refusal}"
        change = self.change
        removed = f", removed {change.removed}" if self.replace else ""
        return (f"{self.rows} row(s) read from {self.source}: added {change.added}, changed {change.changed}"
                f"{removed}; released {len(change.released)} waiting delivery(ies)"
                + (f"; {self.products_queued} product(s) queued for {DESTINATIONS[self.destination].title}"
                   if self.products_queued else ""))

    def to_dict(self) -> dict:
        found = {"destination": self.destination, "file": self.source, "rows": self.rows,
                 "replace": self.replace, "status": "failed" if self.refusal else "done",
                 "message": self.message}
        if self.change is not None:
            found.update(self.change.to_dict())
            found["products_queued"] = self.products_queued
        return found


def import_catalog(relay: Any, audit: Any, destination: str, data: bytes, *, source: str, replace: bool,
                   actor: str, via: str = "cli") -> CatalogImport:
    """Import a catalog file's ``data`` into ``destination``'s catalog (see the module docstring)."""
    target = catalog_destination(relay.settings, destination)
    catalog = relay.catalog_of(target.name)
    try:
        rows = read(data, needs_title=target.declaration.catalog_needs_title)
        artnos = {one.row.artno for one in rows}
        kept = () if replace else [row for row in catalog.all_rows() if row.artno not in artnos]
        check_together(rows, kept)
    except CatalogFileError as exc:
        done = CatalogImport(target.name, source, 0, replace, refusal=str(exc))
    else:
        change = catalog.load([one.row for one in rows], replace=replace)
        due = relay.schedule.run_now(change.released) if change.released else 0
        changed = set(change.changed_artnos)
        queued = queue_rows(relay, target.name, [one.row for one in rows if one.row.artno in changed])
        done = CatalogImport(target.name, source, len(rows), replace, change, due, products_queued=queued)
    if audit is not None:
        audit.record(actor=actor, action=ACTION, target=target.name, reason=source,
                     status="failed" if done.refusal else "done", message=done.message, via=via)
    return done


def rows_csv(rows: list[CatalogRow]) -> str:
    """The rows as a catalog file (the header, then one line per row, by artno): what import reads."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([getattr(row, column) for column in COLUMNS])
    return out.getvalue()


def waiting_for_rows(relay: Any, destination: str | None = None, limit: int = 200) -> dict:
    """The deliveries waiting for a catalog row, per destination with a catalog that is on: how many and the
    first artnos.  The first ``limit`` listed are checked against the ledger (one a person discarded is
    not counted); any beyond are counted as listed.  A read model."""
    from worker.delivery.catalog_wait import waits_for_row

    found = {}
    for name in with_catalog():
        target = DESTINATIONS[name]
        if destination not in (None, name) or not target.is_on(relay.settings):
            continue
        listed = relay.catalog_of(name).waiting(limit)
        ledger, artnos, count = relay.ledger_of(name), [], 0
        for waiting in listed:
            operation, _, key = waiting.ref[len(target.ref_prefix):].partition(":")
            record = ledger.get(operation, key)
            if record is None or record.state != "waiting" or not waits_for_row(record.history):
                continue  # moved on (a person discarded it): a spare entry
            count += 1
            if waiting.artno not in artnos and len(artnos) < FIRST:
                artnos.append(waiting.artno)
        count += max(relay.catalog_of(name).waiting_count() - len(listed), 0)
        if count:
            found[name] = {"title": target.title, "deliveries": count, "first_artnos": artnos}
    return found


def products_of(relay: Any, destination: str) -> dict | None:
    """The products an import queued for ``destination`` (worker.delivery.product_sync): how many wait to
    be sent, how many it refused and why; None where it takes no products."""
    from worker.delivery.product_sync import sync_of, takes_products

    if not takes_products(destination):
        return None
    sync = sync_of(relay, destination)
    refusals = {pid: refusal.get("why", "") for pid, refusal in sync.refusals().items()}
    return {**sync.counts(), "refusals": refusals}
