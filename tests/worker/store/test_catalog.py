"""A destination's catalog in the store (worker.store.catalog): an import is all or nothing and says what it
added, changed and removed (``--replace`` only) and which artnos' rows it changed; importing the same file
again changes nothing; each destination's catalog is its own; the deliveries waiting for an artno's row
are released by the import that gives it one — once, even when the merge is resent (the store-call rule)
— and not before; a catalog larger than one staging chunk arrives whole.  On fakeredis and valkey."""
from __future__ import annotations

from worker.store.catalog import STAGING_CHUNK, Catalog, CatalogRow
from worker.store.requests import replayable

SHIRT = [CatalogRow(f"4711-{size}", "P-100", f"P-100-{size}", "Shirt") for size in "SML"]
CHAIR = CatalogRow("123", "CHAIR", "", "Chair", "false")


def test_an_import_adds_then_changes_then_replaces(store_client):
    catalog = Catalog(store_client, "wms:stock2shop")
    first = catalog.load([*SHIRT, CHAIR])
    assert (first.added, first.changed, first.removed) == (4, 0, 0)
    assert sorted(first.changed_artnos) == ["123", "4711-L", "4711-M", "4711-S"]
    assert catalog.row("4711-M") == SHIRT[1] and catalog.row("nope") is None
    assert catalog.rows(["123", "nope", "4711-S"]) == {"123": CHAIR, "4711-S": SHIRT[0]}

    again = catalog.load([*SHIRT, CHAIR])
    assert (again.added, again.changed, again.removed, again.changed_artnos) == (0, 0, 0, ())

    renamed = CatalogRow("123", "CHAIR", "", "Armchair", "false")
    merged = catalog.load([renamed])  # a merge keeps the rows it does not name
    assert (merged.added, merged.changed, merged.removed, merged.changed_artnos) == (0, 1, 0, ("123",))
    assert catalog.count() == 4 and catalog.row("123").title == "Armchair"

    replaced = catalog.load([SHIRT[0], renamed], replace=True)
    assert (replaced.added, replaced.changed, replaced.removed) == (0, 0, 2)
    assert sorted(replaced.removed_artnos) == ["4711-L", "4711-M"]
    assert [row.artno for row in catalog.all_rows()] == ["123", "4711-S"]


def test_each_destination_has_its_own_catalog(store_client):
    Catalog(store_client, "wms:kaching").load([CHAIR])
    assert Catalog(store_client, "wms:stock2shop").row("123") is None
    assert Catalog(store_client, "wms:kaching").row("123") == CHAIR


def test_waiting_deliveries_are_released_by_the_import_that_gives_their_row_once(store_client):
    catalog = Catalog(store_client, "wms:stock2shop")
    catalog.wait_for_row("stock2shop/stock.adjust:E-1", "4711-M", 100.0)
    catalog.wait_for_row("stock2shop/stock.adjust:E-2", "4711-M", 101.0)
    catalog.wait_for_row("stock2shop/stock.adjust:E-3", "999", 102.0)
    catalog.wait_for_row("stock2shop/stock.adjust:E-1", "4711-M", 150.0)  # a re-check: listed since 100
    assert [(w.ref[-3:], w.artno, w.since) for w in catalog.waiting()] == [
        ("E-1", "4711-M", 100.0), ("E-2", "4711-M", 101.0), ("E-3", "999", 102.0)]

    assert catalog.load([CHAIR]).released == ()  # no row for them yet
    with replayable("import-1"):
        change = catalog.load(SHIRT)
    assert sorted(change.released) == ["stock2shop/stock.adjust:E-1", "stock2shop/stock.adjust:E-2"]
    with replayable("import-1"):  # the same merge resent (redis-py after a timeout): its reply replayed
        assert catalog.load(SHIRT).released == change.released
    assert not list(store_client.scan_iter("wms:stock2shop:catalog:staging:*"))
    assert catalog.load(SHIRT).released == ()  # taken off the list: never released twice
    assert [w.artno for w in catalog.waiting()] == ["999"] and catalog.waiting_count() == 1
    catalog.stop_waiting("stock2shop/stock.adjust:E-3")
    assert catalog.waiting() == [] and catalog.waiting_count() == 0


def test_a_catalog_bigger_than_a_staging_chunk_arrives_whole(store_client):
    catalog = Catalog(store_client, "wms:kaching")
    rows = [CatalogRow(f"A-{i}", f"P-{i // 3}", f"V-{i}") for i in range(STAGING_CHUNK * 2 + 7)]
    change = catalog.load(rows)
    assert change.added == len(rows) and catalog.count() == len(rows)
    assert catalog.row(f"A-{len(rows) - 1}") == rows[-1]
    assert not list(store_client.scan_iter("wms:kaching:catalog:staging:*"))  # the staging is gone
