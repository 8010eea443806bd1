"""Reading Trademax answer bodies: strict JSON, the document's relaxed JSON, envelopes and excerpts."""
from __future__ import annotations

import pytest

from worker.destinations.trademax.responses import (
    Envelope, UnreadableBody, excerpt, parse_body, read_envelope,
)


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b'{"a": 1}', {"a": 1}),
        (b"\xef\xbb\xbf{\"a\": 1}", {"a": 1}),  # a UTF-8 BOM
        (b"{'artno': 2145, 'quantity': 542,}", {"artno": 2145, "quantity": 542}),
        (b"{'a': [1, 2, ], }", {"a": [1, 2]}),
        (b"{'say': 'he said \"hi\"'}", {"say": 'he said "hi"'}),
        (b"{'it': 'it\\'s'}", {"it": "it's"}),
        (b"{\"keep\": \"a, }\", 'x': 'b,]'}", {"keep": "a, }", "x": "b,]"}),  # commas inside strings stay
        (b"{\"mixed\": 'single', 'n': null, 't': true,}", {"mixed": "single", "n": None, "t": True}),
        (b"[]", []),
    ],
)
def test_parse_body(raw, expected):
    assert parse_body(raw) == expected


@pytest.mark.parametrize("raw", [b"", b"<html>oops</html>", b'{"error": {"error_co', b"{'open: 1}",
                                 b"\xff\xfe{"])
def test_unreadable_bodies_raise_with_an_excerpt(raw):
    with pytest.raises(UnreadableBody) as caught:
        parse_body(raw)
    assert caught.value.excerpt == excerpt(raw)


def test_excerpt_is_short_and_printable():
    text = excerpt(b"line1\r\nline2\x00\x1b[31m" + "é".encode() * 500)
    assert text.startswith("line1  line2??[31m")
    assert len(text) == 200 and text.isprintable()


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"error": {"error_code": 0, "error_messages": []}, "data": {"a": 1}}, Envelope(0, [], {"a": 1})),
        ({"error": {"code": 0, "error_messages": []}, "data": [1]}, Envelope(0, [], [1])),
        ({"error": {"error_code": "452", "error_messages": "dup"}}, Envelope(452, ["dup"], None)),
        ({"error": {"error_messages": ["broken"]}}, Envelope(1, ["broken"], None)),  # no code + messages
        ({"error": {"error_messages": []}, "data": 5}, Envelope(0, [], 5)),  # no code, no messages: success
        ({"error": {"error_code": True}}, Envelope(0, [], None)),  # a bool is not a code
        ({"error": "database down"}, Envelope(1, ["database down"], None)),
        ({"error": {"error_code": 450, "error_messages": {"order_no": ["required"], "x": "bad"}}},
         Envelope(450, ["order_no: required", "x: bad"], None)),
        ({"warehouse_id": "nw", "lines": []}, Envelope(None, [], {"warehouse_id": "nw", "lines": []})),
        ({"error": None, "data": 1}, Envelope(None, [], {"error": None, "data": 1})),
        ([1, 2], Envelope(None, [], [1, 2])),
    ],
)
def test_read_envelope(body, expected):
    assert read_envelope(body) == expected
