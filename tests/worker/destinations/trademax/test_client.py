"""The Trademax client on the wire (``responses``): exact method, path, params and a signature that
verifies, for every operation; then how answers become replies and errors."""
from __future__ import annotations

import json
import pickle
import traceback
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses

import signing
from worker import __version__
from worker.errors import OutcomeUnknownError, PermanentError, TransientError
from worker.settings import Settings, SettingsError
from worker.destinations.trademax.client import TrademaxClient, TrademaxReply
from worker.destinations.trademax.calls import CALLS
from worker.destinations.trademax.responses import EXCERPT_LIMIT

BASE = "http://trademax.test/api/"
SECRET = "s3cret-for-tests"
NOW = 1_700_000_000.75
OK = {"error": {"error_code": 0, "error_messages": []}, "data": {"ok": True}}

DISPATCH = {
    "warehouse_id": "nw", "order_no": "FO123456", "transaction_id": "8723GYSFD52F32T", "order_type": "SO",
    "draft": True, "external_reference": None,
    "packages": [{"package_id": 1, "external_package_id": 123, "weight": 34, "volume": 2.1,
                  "picking_zones": ["A"], "products": [{"line_no": 1000, "artno": "123-45"}]}],
    "products": [{"line_no": 1000, "artno": "123-45", "quantity": 12}],
}
RECEIPT = {"order_no": "IO12345", "transaction_id": "R1", "order_type": "PO", "warehouse_id": "NW",
           "received_date": "2015-07-26", "products": [{"line_no": 1000, "artno": "113-11", "quantity": 3}]}
ADJUST = {"warehouse_id": "nw", "quantity": "-7", "type": "relative", "reason": 2}
PACKAGES = {"warehouse_id": "nw", "packages": [{"number": 1, "quantity": 1, "volume": 35, "weight": 12.5}]}
LINES = {"warehouse_id": "nw",
         "lines": [{"line_no": 1000, "processing": 1}, {"line_no": 2000, "processing": 0}]}

# The WMS's example update without its draft: the fields its sender gets.
UPDATE_EVENT = {k: v for k, v in json.loads(
    (Path(__file__).resolve().parents[4] / "examples" / "dispatch.update.json").read_text()).items()
    if k != "draft"}

# operation, call, method, path as sent (quoted), own params as the server should see them
CASES = [
    ("create_dispatch", lambda c: c.create_dispatch(DISPATCH), "POST", "dispatch", DISPATCH),
    ("update_dispatch", lambda c: c.update_dispatch(123, DISPATCH), "PATCH", "dispatch/123", DISPATCH),
    ("publish_dispatch", lambda c: c.publish_dispatch("123", {"warehouse_id": "nw"}), "PATCH", "dispatch/123",
     {"warehouse_id": "nw", "draft": False}),
    ("delete_dispatch", lambda c: c.delete_dispatch(123), "DELETE", "dispatch/123", {}),
    ("get_dispatch", lambda c: c.get_dispatch(123), "GET", "dispatch/123", {}),
    ("create_vendor_dispatch", lambda c: c.create_vendor_dispatch({"order_no": "FO1", "labels_quantity": 2}),
     "POST", "vendor/dispatch", {"order_no": "FO1", "labels_quantity": 2}),
    ("create_receipt", lambda c: c.create_receipt(RECEIPT), "POST", "receipt", RECEIPT),
    ("get_receipt", lambda c: c.get_receipt(77), "GET", "receipt/77", {}),
    ("adjust_stock", lambda c: c.adjust_stock("123", ADJUST), "PATCH", "inventory/123/stock-adjustment",
     ADJUST),
    ("get_stock", lambda c: c.get_stock("123", "nw"), "GET", "inventory/123/stock-adjustment",
     {"warehouse_id": "nw"}),
    ("get_package_data", lambda c: c.get_package_data("12/3 ä", "nw"), "GET", "inventory/12%2F3%20%C3%A4",
     {"warehouse_id": "nw"}),
    ("update_package_data", lambda c: c.update_package_data("12/3 ä", PACKAGES), "PATCH",
     "inventory/12%2F3%20%C3%A4", PACKAGES),
    ("lock_order_lines", lambda c: c.lock_order_lines("IO 1/2", LINES), "PATCH", "order/outgoing/IO%201%2F2",
     LINES),
    ("get_order_lines", lambda c: c.get_order_lines("IO12345", "nw"), "GET", "order/outgoing/IO12345",
     {"warehouse_id": "nw"}),
]


def make_client(clock=lambda: NOW, **settings) -> TrademaxClient:
    values = {"trademax_base_url": BASE, "trademax_api_key": "public-key", "trademax_secret": SECRET,
              "connect_timeout": 2.0, "read_timeout": 7.0, **settings}
    return TrademaxClient(Settings(**values), clock=clock)


def sent_params(request) -> dict:
    """What the server receives: the query for GET/DELETE, the JSON body otherwise."""
    if request.method in ("GET", "DELETE"):
        assert not request.body
        return dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))
    assert request.headers["Content-Type"] == "application/json"
    assert not urlsplit(request.url).query
    return json.loads(request.body)


def test_every_operation_is_covered():
    assert sorted(case[0] for case in CASES) == sorted(CALLS)


@pytest.mark.parametrize("name, call, method, path, own", CASES, ids=[c[0] for c in CASES])
@responses.activate
def test_operation_on_the_wire(name, call, method, path, own):
    responses.add(method, BASE + path, json=OK)
    reply = call(make_client())

    assert reply == TrademaxReply(operation=name, status=200, error_code=0, data={"ok": True},
                                  latency_seconds=reply.latency_seconds)
    (sent,) = [c.request for c in responses.calls]
    assert sent.method == method
    assert urlsplit(sent.url).path == urlsplit(BASE).path + path  # quoted exactly once
    assert sent.headers["User-Agent"] == f"wms-relay/{__version__}"
    params = sent_params(sent)
    signature = params.pop("signature")
    auth = {"api_key": "public-key", "timestamp": int(NOW), "method": method, "url": BASE + path}
    if method in ("GET", "DELETE"):
        assert params == {k: str(v) for k, v in {**own, **auth}.items()}
    else:
        assert params == {**own, **auth}  # exactly the signed params, nothing more
    assert signature == signing.sign(params, SECRET)
    assert signing.verify({**params, "signature": signature}, SECRET)


@pytest.mark.parametrize("event_draft, sent_draft", [(..., True), (True, True), (False, False)],
                         ids=["left out: true", "true", "false"])
@responses.activate
def test_dispatch_update_always_sends_draft_and_keeps_a_draft_unless_told(event_draft, sent_draft):
    """Trademax's document: "By sending draft = false or ignoring this property will make dispatch route
    work as previously" — an update without draft would publish; dispatch.update sends the event's own
    value, else true.  Built from the WMS's example event through the operation's own sender."""
    from worker.destinations.trademax.operations import OPERATIONS

    from tasks.events import validate_event

    responses.add("PATCH", BASE + "dispatch/4711", json=OK)
    event = UPDATE_EVENT if event_draft is ... else {**UPDATE_EVENT, "draft": event_draft}
    fields = validate_event("dispatch.update", event).fields
    (row,) = [row for row in OPERATIONS if row.name == "dispatch.update"]
    row.send(make_client(), fields, 4711)
    params = sent_params(responses.calls[0].request)
    assert params["draft"] is sent_draft
    assert {k: params[k] for k in fields} == fields  # everything else as the WMS sent it
    assert "draft" not in fields or event_draft is not ...  # the default is not written into the event


@responses.activate
def test_every_attempt_is_signed_afresh_with_the_injected_clock():
    responses.add("GET", BASE + "dispatch/1", json=OK)
    ticks = iter([1000.0, 1001.9])
    client = make_client(clock=lambda: next(ticks))
    client.get_dispatch(1)
    client.get_dispatch(1)
    first, second = (sent_params(c.request) for c in responses.calls)
    assert (first["timestamp"], second["timestamp"]) == ("1000", "1001")
    assert first["signature"] != second["signature"]


@responses.activate
def test_timeouts_are_explicit():
    seen = {}

    def capture(request):
        seen["timeout"] = request.req_kwargs["timeout"]
        return 200, {}, json.dumps(OK)

    responses.add_callback("GET", BASE + "receipt/1", callback=capture)
    make_client().get_receipt(1)
    assert seen["timeout"] == (2.0, 7.0)


def test_auth_params_cannot_be_smuggled_in_fields():
    with pytest.raises(PermanentError, match="signature, url"):
        make_client().create_receipt({**RECEIPT, "url": "http://elsewhere/", "signature": "x"})


def test_missing_credentials_name_the_variable():
    with pytest.raises(SettingsError, match="TRADEMAX_SECRET"):
        make_client(trademax_secret="")


def test_unsignable_fields_are_permanent():
    with pytest.raises(PermanentError, match="cannot be signed"):
        make_client().create_receipt({**RECEIPT, "quantity": float("nan")})


# -- answers --------------------------------------------------------------------------------------
def envelope(code, messages=(), data=None):
    return {"error": {"error_code": code, "error_messages": list(messages)}, "data": data or []}


@responses.activate
def test_duplicate_is_delivered_with_the_original_data():
    responses.add("POST", BASE + "receipt", status=400,
                  json=envelope(452, ["request duplication"], {"receipt_id": 9}))
    reply = make_client().create_receipt(RECEIPT)
    assert reply.duplicate and reply.error_code == 452 and reply.status == 400
    assert reply.data == {"receipt_id": 9}


@pytest.mark.parametrize(
    "status, body, error, attributes",
    [
        (401, envelope(405, ["signature validation failed"]), PermanentError,
         {"status": 401, "error_code": 405, "error_messages": ["signature validation failed"]}),
        (400, envelope(450, ["required param order_no not specified"]), PermanentError,
         {"error_code": 450}),
        (200, envelope(1, ["general error"]), PermanentError, {"status": 200, "error_code": 1}),
        (500, envelope(500, ["boom"]), TransientError,
         {"status": 500, "error_code": 500, "retry_after": None}),
        (200, envelope(501, ["database error"]), TransientError, {"status": 200, "error_code": 501}),
        (404, envelope(1, ["not found"]), PermanentError, {"status": 404}),
    ],
)
@responses.activate
def test_error_answers(status, body, error, attributes):
    responses.add("GET", BASE + "receipt/1", status=status, json=body)
    with pytest.raises(error) as caught:
        make_client().get_receipt(1)
    for name, value in attributes.items():
        assert getattr(caught.value, name) == value
    assert caught.value.operation == "get_receipt"
    assert caught.value.latency_seconds >= 0
    assert pickle.loads(pickle.dumps(caught.value)).__dict__ == caught.value.__dict__


@pytest.mark.parametrize(
    "header, expected",
    [("1", 1.0), ("120", 120.0), ("Tue, 14 Nov 2023 22:14:20 GMT", 60.0 - 0.75), ("garbage", None)],
)
@responses.activate
def test_429_carries_retry_after(header, expected):
    responses.add("GET", BASE + "dispatch/1", status=429, json=envelope(1), headers={"Retry-After": header})
    with pytest.raises(TransientError) as caught:
        make_client().get_dispatch(1)
    assert caught.value.status == 429
    assert caught.value.retry_after == (None if expected is None else pytest.approx(expected))


@responses.activate
def test_document_quirks_single_quotes_trailing_commas_and_code():
    body = ("{\n 'error': {'error_code': 0, 'error_messages': [],},\n"
            " 'data': {'artno': 2145, 'quantity': 542,}\n}")
    responses.add("GET", BASE + "inventory/2145/stock-adjustment", body=body)
    responses.add("POST", BASE + "vendor/dispatch",
                  json={"error": {"code": 0, "error_messages": []}, "data": {"dispatch_id": 390333}})
    responses.add("POST", BASE + "dispatch",
                  json={"error": {"code": 450, "error_messages": ["required param order_no not specified"]}})
    client = make_client()
    assert client.get_stock("2145", "nw").data == {"artno": 2145, "quantity": 542}
    vendor = client.create_vendor_dispatch({"order_no": "IO1", "labels_quantity": 1})
    assert vendor.data == {"dispatch_id": 390333}
    with pytest.raises(PermanentError) as caught:
        client.create_dispatch(DISPATCH)
    assert caught.value.error_code == 450


@responses.activate
def test_an_answer_without_envelope_is_delivered_with_the_body_as_data():
    body = {"warehouse_id": "nw", "lines": [{"line_no": 1000, "processing": 1}]}
    responses.add("PATCH", BASE + "order/outgoing/IO1", json=body)
    reply = make_client().lock_order_lines("IO1", LINES)
    assert reply.data == body and reply.error_code is None and not reply.duplicate


@pytest.mark.parametrize("status, error", [(502, TransientError), (200, OutcomeUnknownError),
                                           (404, PermanentError)])
@responses.activate
def test_an_unreadable_body_is_quoted_briefly(status, error):
    body = "<html>\x00<h1>Bad Gateway</h1>" + "x" * 1000
    responses.add("PATCH", BASE + "inventory/1/stock-adjustment", status=status, body=body)
    with pytest.raises(error) as caught:
        make_client().adjust_stock("1", ADJUST)
    assert "<html>?<h1>Bad Gateway</h1>" in caught.value.detail
    assert "x" * 200 not in caught.value.detail and "x" * 150 in caught.value.detail
    assert caught.value.status == status


@responses.activate
def test_a_secret_cut_in_half_by_the_excerpt_is_still_redacted():
    body = "<html>" + "x" * (EXCERPT_LIMIT - 10) + SECRET + " trailing"  # the secret straddles the cut
    responses.add("PATCH", BASE + "inventory/1/stock-adjustment", status=500, body=body)
    with pytest.raises(TransientError) as caught:
        make_client().adjust_stock("1", ADJUST)
    assert SECRET[:4] not in caught.value.detail and "x[red" in caught.value.detail


@responses.activate
def test_redirects_are_not_followed():
    responses.add("POST", BASE + "dispatch", status=301,
                  headers={"Location": "https://trademax.test/api/dispatch"})
    with pytest.raises(PermanentError) as caught:
        make_client().create_dispatch(DISPATCH)
    assert caught.value.status == 301
    assert len(responses.calls) == 1


@responses.activate
def test_neither_secret_nor_signature_reaches_messages():
    def echo(request):
        params = sent_params(request)
        text = f"bad signature {params['signature']} for secret {SECRET}"
        return 401, {}, json.dumps(envelope(405, [text]))

    responses.add_callback("GET", BASE + "dispatch/5", callback=echo)
    with pytest.raises(PermanentError) as caught:
        make_client().get_dispatch(5)
    signature = sent_params(responses.calls[0].request)["signature"]
    rendered = "".join(traceback.format_exception(caught.value)) + repr(caught.value)
    assert signature not in rendered and SECRET not in rendered
    assert "[redacted]" in str(caught.value)
    assert SECRET not in repr(make_client())
