"""A catalog file as ``wms-relay catalog import`` reads it: CSV with the header
``artno,product_code,variant_code,title,active`` (any order; no other column), UTF-8, one row per artno.

Pure: bytes in, :class:`worker.store.catalog.CatalogRow` out — or :class:`CatalogFileError` naming the
line and the column of the first problem, and then nothing of the file is imported.  Refused:

- bytes that are not UTF-8 (a UTF-8 byte-order mark, as spreadsheets write, is allowed);
- a header with a missing, unknown or repeated column; a line with more or fewer fields than the header;
- an empty artno or product code; an artno a WMS event could not carry (over 64 characters, ``.``/``..``);
  an artno, product or variant code that starts or ends with whitespace;
- a field over :data:`MAX_FIELD` characters, or with a control character (a tab or a line break inside
  a quoted field included);
- ``active`` other than ``true``/``false`` (empty: ``true``); an empty title where the destination needs
  one (Stock2Shop: its minimum product has a title);
- an artno twice.

And, across the rows the catalog will hold after the import (:func:`check_together`: the file's, and with a
merge the catalog's rows it does not replace): one (product, variant) pair per artno — two artnos cannot be
one thing to count; a product either whole (no variant) or by variants, never both (ka-ching's body cannot
say both); and one title and one ``active`` per product (they are the product's, sent with each of its
variants).
"""
from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from typing import Iterable

from worker.store.catalog import ACTIVE_VALUES, COLUMNS, CatalogRow

MAX_FIELD = 255
MAX_ARTNO = 64  # a WMS event's artno (tasks.schemas.common.artno)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CODES = ("artno", "product_code", "variant_code")


class CatalogFileError(ValueError):
    """The file is refused whole: ``line`` (1 = the header) and ``column`` (a column's name, or "" for the
    whole line) of the first problem, and what it is."""

    def __init__(self, line: int, column: str, problem: str) -> None:
        where = f"line {line}" + (f", column {column}" if column else "")
        super().__init__(f"{where}: {problem}")
        self.line, self.column, self.problem = line, column, problem


@dataclass(frozen=True)
class FileRow:
    """A row and the line it came from."""

    line: int
    row: CatalogRow


def read(data: bytes, *, needs_title: bool = False) -> list[FileRow]:
    """Every row of a catalog file, in file order; CatalogFileError for the first problem."""
    text = _decoded(data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header, rows, seen = None, [], {}
    ended = 0  # the last line of the previous record
    try:
        for record in reader:
            start, ended = ended + 1, reader.line_num
            if not record or record == [""]:
                continue  # a blank line
            if header is None:
                header = _header(record, start)
                continue
            row = _row(dict(zip(header, record)), len(record), len(header), start, needs_title)
            if row.artno in seen:
                raise CatalogFileError(start, "artno", f"{row.artno!r} is on line {seen[row.artno]} already "
                                                       "(one row per artno)")
            seen[row.artno] = start
            rows.append(FileRow(start, row))
    except csv.Error as exc:
        raise CatalogFileError(ended + 1, "", f"not CSV: {exc}") from None
    if header is None:
        raise CatalogFileError(1, "", f"no header (the first line must be {','.join(COLUMNS)})")
    return rows


def _decoded(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        before = data[line_start:exc.start].decode("utf-8")
        fields = next(csv.reader([before]), [""])
        header = next(csv.reader([data[:data.find(b"\n")].decode("utf-8", "replace")]), [])
        index = max(len(fields) - 1, 0)
        column = header[index].strip() if line > 1 and index < len(header) else f"{index + 1}"
        raise CatalogFileError(line, column, f"not UTF-8 (byte 0x{data[exc.start]:02x}); save the file as "
                                             "UTF-8") from None


def _header(record: list[str], line: int) -> list[str]:
    names = [name.strip() for name in record]
    for name in names:
        if name not in COLUMNS:
            raise CatalogFileError(line, name, f"unknown column (the header is {','.join(COLUMNS)})")
        if names.count(name) > 1:
            raise CatalogFileError(line, name, "named twice")
    for name in COLUMNS:
        if name not in names:
            raise CatalogFileError(line, name, f"missing (the header is {','.join(COLUMNS)})")
    return names


def _row(values: dict[str, str], found: int, expected: int, line: int, needs_title: bool) -> CatalogRow:
    if found != expected:
        raise CatalogFileError(line, "", f"{found} fields, the header has {expected}")
    for column in COLUMNS:
        value = values[column]
        if len(value) > MAX_FIELD:
            raise CatalogFileError(line, column, f"{len(value)} characters, at most {MAX_FIELD}")
        if _CONTROL.search(value):
            raise CatalogFileError(line, column, f"a control character ({_CONTROL.search(value).group()!r})")
        if column in CODES and value != value.strip():
            raise CatalogFileError(line, column, f"{value!r} starts or ends with whitespace")
    artno = values["artno"]
    if not artno:
        raise CatalogFileError(line, "artno", "empty (every row names the WMS artno it maps)")
    if len(artno) > MAX_ARTNO or artno in (".", ".."):
        raise CatalogFileError(line, "artno", f"{artno!r} is not an artno a WMS event can carry "
                                              f"(1-{MAX_ARTNO} characters, not . or ..)")
    if not values["product_code"]:
        raise CatalogFileError(line, "product_code", "empty (every row names its product)")
    active = values["active"].strip().lower() or "true"
    if active not in ACTIVE_VALUES:
        raise CatalogFileError(line, "active", f"{values['active']!r}: true or false (empty: true)")
    if needs_title and not values["title"].strip():
        raise CatalogFileError(line, "title", "empty: this destination's products need a title")
    return CatalogRow(artno, values["product_code"], values["variant_code"], values["title"], active)


def check_together(rows: Iterable[FileRow], kept: Iterable[CatalogRow] = ()) -> None:
    """The file's rows, with the catalog's rows they do not replace (``kept``), make one catalog: see the
    module docstring.  CatalogFileError names the file's line (and the other row: a line or an artno)."""
    by_pair: dict[tuple[str, str], str] = {}
    whole: dict[str, tuple[bool, str]] = {}
    product: dict[str, tuple[str, str, str]] = {}
    entries = [(f"the catalog's row for artno {row.artno!r}", None, row) for row in kept]
    entries += [(f"line {one.line}", one.line, one.row) for one in rows]
    for where, line, row in entries:
        def refuse(column: str, problem: str) -> None:
            raise CatalogFileError(line or 0, column, problem)

        pair = (row.product_code, row.variant_code)
        if pair in by_pair:
            variant = f" variant {row.variant_code!r}" if row.variant_code else ""
            refuse("variant_code" if row.variant_code else "product_code",
                   f"product {row.product_code!r}{variant} is {by_pair[pair]}'s too (one artno each)")
        by_pair[pair] = where
        is_whole = not row.variant_code
        if row.product_code in whole and whole[row.product_code][0] != is_whole:
            other = "counted by variant" if is_whole else "whole (no variant)"
            refuse("variant_code", f"product {row.product_code!r} is {other} on {whole[row.product_code][1]}"
                                   ": a product is whole or by variants, not both")
        whole.setdefault(row.product_code, (is_whole, where))
        known = product.setdefault(row.product_code, (row.title, row.active, where))
        if known[0] != row.title:
            refuse("title", f"product {row.product_code!r} has the title {known[0]!r} on {known[2]} "
                            "(a title is the product's: one per product)")
        if known[1] != row.active:
            refuse("active", f"product {row.product_code!r} is active={known[1]} on {known[2]} (one per "
                             "product)")
