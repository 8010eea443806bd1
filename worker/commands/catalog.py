"""``wms-relay catalog import DEST FILE [--replace]``, ``catalog show DEST [ARTNO] [--json]``, ``catalog
export DEST``: what the WMS's artno is called at a destination.

A destination with a catalog (ka-ching, StockTrim, Stock2Shop) sends each count with its artno's row:
``artno,product_code,variant_code,title,active``.  An artno without a row is its own product where the
destination's ``<DEST>_CATALOG`` is ``identity`` (ka-ching's and StockTrim's default) and is not sent at all
where it is ``required`` (Stock2Shop): its delivery waits (reason ``unmapped``; `wms-relay status` names
it) until an import gives it a row, then it is sent at once.

import    reads a CSV file (``-``: standard input) with exactly that header, UTF-8.  Any problem — a
          missing or unknown column, an artno twice, an empty product code, a field over 255 characters, a
          control character, bytes that are not UTF-8, two artnos for one product variant — refuses the
          file whole, naming the line and the column; nothing of it is imported (exit code 2).  Rows are
          added or changed; with ``--replace`` the rows the file does not list are removed.  Says how many
          rows it added, changed and removed and how many waiting deliveries it released; audited.
show      one artno's row (exit code 1 when it has none: says what is sent for it), or the rows (the first
          50 by artno unless ``--limit N`` or ``--all``; ``export`` writes every one) and the deliveries
          waiting for one.
export    every row as a catalog file on standard output (``import`` reads it back unchanged).

Refused with exit code 2, nothing changed: a destination that has no catalog or is not on here (its base
URL is not set in this environment)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from worker.commands.presenting import (
    Refused, add_page_options, default_actor, described, friendly_errors, more_line, page_limit, paged,
    print_json, say, say_store)
from worker.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("catalog", help="what the WMS's artno is called at a destination (import, "
                              "show, export)", **described(__doc__))
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])
    sub = p.add_subparsers(dest="catalog_command", metavar="ACTION")
    imp = sub.add_parser("import", help="read a catalog file (CSV) into a destination's catalog",
                         **described(__doc__))
    imp.add_argument("destination", metavar="DEST", help="kaching, stocktrim or stock2shop")
    imp.add_argument("file", metavar="FILE", help="the CSV file (- for standard input)")
    imp.add_argument("--replace", action="store_true", help="remove the rows the file does not list")
    imp.add_argument("--actor", default=None, help="who is acting (default: your OS account)")
    imp.add_argument("--json", action="store_true", help="print the result as JSON")
    imp.set_defaults(handler=run_import)
    show = sub.add_parser("show", help="one artno's row, or the rows (50 unless --limit N or --all)",
                          **described(__doc__))
    show.add_argument("destination", metavar="DEST")
    show.add_argument("artno", metavar="ARTNO", nargs="?", default=None)
    add_page_options(show, "rows", "by artno")
    show.add_argument("--json", action="store_true",
                      help="print JSON (without ARTNO: rows is the page; total, limit and more say the rest)")
    show.set_defaults(handler=run_show)
    export = sub.add_parser("export", help="every row as CSV on standard output", **described(__doc__))
    export.add_argument("destination", metavar="DEST")
    export.set_defaults(handler=run_export)


def _read(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except OSError as exc:
        raise Refused(f"cannot read {file}: {exc.strerror or exc}; nothing was imported") from None


def _destination(settings: Settings, name: str):
    from worker.support.catalog import CatalogRefused, catalog_destination

    try:
        return catalog_destination(settings, name)
    except CatalogRefused as exc:
        raise Refused(str(exc)) from None


@friendly_errors
def run_import(args: argparse.Namespace) -> int:
    from worker.support.catalog import import_catalog
    from worker.support.workplace import workplace

    settings = Settings.from_env()
    _destination(settings, args.destination)
    data = _read(args.file)
    source = "standard input" if args.file == "-" else args.file
    with workplace(settings) as place:
        done = import_catalog(place.relay, place.tools.audit, args.destination, data, source=source,
                              replace=args.replace, actor=args.actor or default_actor())
    if args.json:
        print_json({**done.to_dict(), "store": place.store})
    else:
        say_store(place.store)
        say(done.message)
    return 2 if done.refusal else 0


@friendly_errors
def run_show(args: argparse.Namespace) -> int:
    from worker.support.catalog import products_of, waiting_for_rows
    from worker.support.workplace import workplace

    settings = Settings.from_env()
    target = _destination(settings, args.destination)
    page_limit(args)  # a bad --limit is refused before anything is read
    with workplace(settings) as place:
        catalog = place.relay.catalog_of(target.name)
        mode = settings.destination(target.name).catalog
        if args.artno is not None:
            row = catalog.row(args.artno)
            if args.json:
                print_json({"destination": target.name, "artno": args.artno, "mode": mode,
                            "row": None if row is None else row.to_dict(), "store": place.store})
            elif row is None:
                say_store(place.store)
                say(f"artno {args.artno} has no row in {target.title}'s catalog ({target.declaration.prefix}"
                    f"_CATALOG={mode}): " + ("it is sent as its own product." if mode == "identity" else
                                             "its counts wait (unmapped) until an import gives it one."))
            else:
                say_store(place.store)
                say(_line(row))
            return 0 if row is not None else 1
        page = paged(catalog.all_rows(), args)
        waiting = waiting_for_rows(place.relay, target.name).get(target.name)
        products = products_of(place.relay, target.name)
    if args.json:
        print_json({"destination": target.name, "mode": mode, "rows": [row.to_dict() for row in page.items],
                    **page.to_json(), "waiting": waiting or {"deliveries": 0, "first_artnos": []},
                    "store": place.store, **({"products": products} if products is not None else {})})
        return 0
    say_store(place.store)
    say(f"{target.title}'s catalog ({target.declaration.prefix}_CATALOG={mode}): {page.total} row(s)")
    for row in page.items:
        say("  " + _line(row))
    if page.more:
        say(f"{len(page.items)} of {page.total:,} rows shown (by artno). " + more_line(page)
            + f" `wms-relay catalog export {target.name}` writes every row as a file.")
    if waiting:
        say(f"{waiting['deliveries']} delivery(ies) wait for a row (unmapped), artnos "
            f"{', '.join(waiting['first_artnos'])}")
    if products is not None:
        say(f"products for {target.title}: {products['pending']} waiting to be sent, {products['refused']} "
            "refused" + "".join(f"\n  refused {pid}: {why}" for pid, why in products["refusals"].items()))
    return 0


def _line(row) -> str:
    variant = f" variant {row.variant_code}" if row.variant_code else ""
    title = f" {row.title!r}" if row.title else ""
    inactive = "" if row.active == "true" else " (inactive)"
    return f"{row.artno} -> product {row.product_code}{variant}{title}{inactive}"


@friendly_errors
def run_export(args: argparse.Namespace) -> int:
    from worker.support.catalog import rows_csv
    from worker.support.workplace import workplace

    settings = Settings.from_env()
    target = _destination(settings, args.destination)
    with workplace(settings) as place:
        rows = place.relay.catalog_of(target.name).all_rows()
    sys.stdout.write(rows_csv(rows))
    return 0
