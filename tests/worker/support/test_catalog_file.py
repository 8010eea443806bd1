"""A catalog file is read whole or refused whole (worker.support.catalog_file): every bad input of issue 19
— a missing or unknown column, a duplicate artno, an empty product code, a field over 255 characters, a
control character, bytes that are not UTF-8 — and the rest (a line with the wrong number of fields, broken
quoting, ``active`` neither true nor false, an artno no WMS event can carry, whitespace around a code, a
missing title where the destination needs one) is named by its line and its column; rows that cannot live
in one catalog together (two artnos for one variant, a product whole and by variant, two titles for one
product) are refused too, against the catalog's kept rows as well."""
from __future__ import annotations

import pytest

from worker.store.catalog import CatalogRow
from worker.support.catalog_file import CatalogFileError, check_together, read

HEADER = b"artno,product_code,variant_code,title,active\n"


def test_a_good_file_any_column_order_quotes_blank_lines_and_a_bom():
    data = (b"\xef\xbb\xbf" + b"title,artno,product_code,active,variant_code\n"
            b'"Shirt, blue",4711-S,P-100,,P-100-S\n\n'
            b'"Shirt, blue",4711-M,P-100,TRUE,P-100-M\n'
            b"Chair \xe2\x80\x93 oak,123,CHAIR,false,\n")
    rows = read(data)
    assert [(one.line, one.row) for one in rows] == [
        (2, CatalogRow("4711-S", "P-100", "P-100-S", "Shirt, blue", "true")),
        (4, CatalogRow("4711-M", "P-100", "P-100-M", "Shirt, blue", "true")),
        (5, CatalogRow("123", "CHAIR", "", "Chair – oak", "false"))]
    check_together(rows)


@pytest.mark.parametrize("data, line, column, says", [
    (b"artno,product_code,variant_code,title\nA,P,,T\n", 1, "active", "missing"),
    (HEADER.replace(b"\n", b",price\n") + b"A,P,,T,,9\n", 1, "price", "unknown column"),
    (b"artno,artno,product_code,variant_code,title,active\n", 1, "artno", "named twice"),
    (b"", 1, "", "no header"),
    (HEADER + b"A,P,,T,\nB,Q,,U,\nA,R,,V,\n", 4, "artno", "on line 2 already"),
    (HEADER + b"A,,,T,\n", 2, "product_code", "empty"),
    (HEADER + b",P,,T,\n", 2, "artno", "empty"),
    (HEADER + b"A,P,," + b"x" * 256 + b",\n", 2, "title", "256 characters"),
    (HEADER + b"A,P,,T\x07,\n", 2, "title", "control character"),
    (HEADER + b'A,P,,"two\nlines",\n', 2, "title", "control character"),
    (HEADER + b"A,P,\tV,T,\n", 2, "variant_code", "control character"),
    (HEADER + b"A,P,,ok,\nB,Q,,caf\xe9,\n", 3, "title", "not UTF-8"),
    (HEADER + b"A\xff,P,,T,\n", 2, "artno", "not UTF-8"),
    (HEADER + b"A,P,,T\n", 2, "", "4 fields, the header has 5"),
    (HEADER + b'A,"P,,T,\n', 2, "", "not CSV"),
    (HEADER + b"A,P,,T,yes\n", 2, "active", "true or false"),
    (HEADER + b"..,P,,T,\n", 2, "artno", "not an artno"),
    (HEADER + b"A" * 65 + b",P,,T,\n", 2, "artno", "not an artno"),
    (HEADER + b"A,P ,,T,\n", 2, "product_code", "whitespace"),
])
def test_each_bad_input_names_its_line_and_column(data, line, column, says):
    with pytest.raises(CatalogFileError) as refused:
        read(data)
    assert (refused.value.line, refused.value.column) == (line, column), str(refused.value)
    assert says in str(refused.value)
    assert str(refused.value).startswith(f"line {line}" + (f", column {column}" if column else ""))


def test_a_destination_that_needs_titles_refuses_a_row_without_one():
    assert read(HEADER + b"A,P,,,\n")[0].row.title == ""
    with pytest.raises(CatalogFileError, match="line 2, column title: empty"):
        read(HEADER + b"A,P,,,\n", needs_title=True)


@pytest.mark.parametrize("data, kept, line, column, says", [
    (HEADER + b"A,P,S,Shirt,\nB,P,S,Shirt,\n", [], 3, "variant_code", "line 2's too"),
    (HEADER + b"A,P,,Shirt,\nB,P,,Shirt,\n", [], 3, "product_code", "line 2's too"),
    (HEADER + b"A,P,S,Shirt,\nB,P,,Shirt,\n", [], 3, "variant_code", "whole or by variants"),
    (HEADER + b"A,P,S,Shirt,\nB,P,M,Shirts,\n", [], 3, "title", "one per product"),
    (HEADER + b"A,P,S,Shirt,\nB,P,M,Shirt,false\n", [], 3, "active", "one per product"),
    (HEADER + b"B,P,S,Shirt,\n", [CatalogRow("A", "P", "S", "Shirt")], 2, "variant_code",
     "the catalog's row for artno 'A'"),
    (HEADER + b"B,P,,Shirt,\n", [CatalogRow("A", "P", "S", "Shirt")], 2, "variant_code", "whole or by"),
])
def test_rows_that_cannot_be_one_catalog_are_refused(data, kept, line, column, says):
    with pytest.raises(CatalogFileError) as refused:
        check_together(read(data), kept)
    assert (refused.value.line, refused.value.column, says in str(refused.value)) == (line, column, True), \
        str(refused.value)


def test_rows_of_a_merge_live_with_the_rows_it_keeps():
    check_together(read(HEADER + b"B,P,M,Shirt,\n"), [CatalogRow("A", "P", "S", "Shirt")])
