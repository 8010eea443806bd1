"""The real client against the real sandbox process over loopback: every operation, 452, bad credentials,
clock skew, read timeouts (latency and applied-then-stalled), 500 and 429 with Retry-After, and a sandbox
that fails "for a while" and recovers."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest

import signing
from tests.fixtures.sandbox import ROOT, start_sandbox
from worker.errors import ClockSkewError, OutcomeUnknownError, PermanentError, TransientError
from worker.destinations.trademax.client import TrademaxClient

pytestmark = pytest.mark.integration

DISPATCH = {
    "warehouse_id": "nw", "order_no": "FO123456", "transaction_id": "T-1", "order_type": "SO", "draft": True,
    "external_reference": None,
    "packages": [{"package_id": 1, "external_package_id": 123, "weight": 34, "volume": 2.1,
                  "picking_zones": ["A"],
                  "products": [{"line_no": 1000, "artno": "123-45", "label": "701203"}]}],
    "products": [{"line_no": 1000, "artno": "123-45", "quantity": 12}],
}
RECEIPT = {"order_no": "IO12345", "transaction_id": "R-1", "order_type": "PO", "warehouse_id": "NW",
           "received_date": "2015-07-26",
           "products": [{"line_no": 1000, "artno": "113-11", "quantity": 3, "vendor_shipment_no": "3443"},
                        {"line_no": 2000, "artno": "44572", "quantity": 2}]}


@pytest.fixture(scope="module")
def shared():
    """One sandbox for the fault-free tests of this module (reset before each test)."""
    running = start_sandbox()
    yield running
    running.stop()


@pytest.fixture
def sb(shared):
    shared.reset()
    return shared


@pytest.fixture
def client(sb):
    with TrademaxClient(sb.settings(connect_timeout=2.0, read_timeout=10.0)) as client:
        yield client


def test_dispatch_lifecycle(client, sb):
    created = client.create_dispatch(DISPATCH)
    dispatch_id = created.data["dispatch_id"]
    assert created.status == 200 and created.data["draft"] is True and created.data["labels_url_pdf"]

    update = {"packages": [{"package_id": 2, "weight": 16, "volume": 0.4,
                            "products": [{"line_no": 2000, "artno": "123-46"}]}],
              "products": [{"line_no": 2000, "artno": "123-46", "quantity": 12}]}
    updated = client.update_dispatch(dispatch_id, update)
    assert [p["package_id"] for p in updated.data["packages"]] == [1, 2]

    published = client.publish_dispatch(dispatch_id, {})
    assert published.data["draft"] is False
    assert client.get_dispatch(dispatch_id).data == published.data

    with pytest.raises(PermanentError) as caught:
        client.delete_dispatch(dispatch_id)
    assert (caught.value.status, caught.value.error_code) == (400, 1)

    draft = client.create_dispatch({**DISPATCH, "transaction_id": "T-2"})
    assert client.delete_dispatch(draft.data["dispatch_id"]).data["deleted"] is True
    with pytest.raises(PermanentError) as caught:
        client.get_dispatch(draft.data["dispatch_id"])
    assert caught.value.status == 404

    state = sb.state()
    assert [d["dispatch_id"] for d in state["dispatches"]] == [dispatch_id]
    assert [d["dispatch_id"] for d in state["deleted_dispatches"]] == [draft.data["dispatch_id"]]


def test_repeated_transaction_id_is_a_delivered_duplicate(client, sb):
    first = client.create_dispatch(DISPATCH)
    again = client.create_dispatch(DISPATCH)
    assert again.duplicate and again.error_code == 452
    assert again.data["dispatch_id"] == first.data["dispatch_id"]
    receipt = client.create_receipt(RECEIPT)
    repeated = client.create_receipt(RECEIPT)
    assert repeated.duplicate and repeated.data["receipt_id"] == receipt.data["receipt_id"]
    state = sb.state()
    assert len(state["dispatches"]) == 1 and len(state["receipts"]) == 1
    assert [r["error_code"] for r in sb.requests()] == [0, 452, 0, 452]


def test_vendor_dispatch_with_the_code_quirk(client):
    reply = client.create_vendor_dispatch({"order_no": "IO1036240", "labels_quantity": 2})
    assert reply.error_code == 0 and len(reply.data["packages"]) == 2


def test_receipt(client):
    created = client.create_receipt(RECEIPT)
    assert client.get_receipt(created.data["receipt_id"]).data == created.data


def test_stock_adjustments_and_quoted_artno(client, sb):
    artno = "12/3 ä"
    absolute = client.adjust_stock(artno, {"warehouse_id": "nw", "quantity": 77, "type": "absolute"})
    assert absolute.data == {"artno": artno, "old_quantity": 0, "new_quantity": 77}
    assert client.adjust_stock(artno, {"warehouse_id": "nw", "quantity": "-7", "type": "relative",
                                       "reason": 2}).data["new_quantity"] == 70
    assert client.get_stock(artno, "nw").data == {"artno": artno, "quantity": 70}
    assert len(sb.state()["stock_adjustments"]) == 2
    assert sb.requests()[0]["path"] == "/api/inventory/12%2F3%20%C3%A4/stock-adjustment"


def test_package_data(client):
    fields = {"warehouse_id": "nw", "packages": [{"number": 1, "quantity": 1, "volume": 35, "weight": 12.5}]}
    assert client.update_package_data("123", fields).data["packages"][0]["weight"] == 12.5
    assert client.get_package_data("123", "nw").data == {"artno": "123", "packages": fields["packages"]}


def test_order_lines_without_envelope(client, sb):
    fields = {"warehouse_id": "nw",
              "lines": [{"line_no": 1000, "processing": 1}, {"line_no": 2000, "processing": 0}]}
    assert client.lock_order_lines("IO12345", fields).data == fields
    assert client.get_order_lines("IO12345", "nw").data == fields
    assert len(sb.state()["line_locks"]) == 2


def test_validation_and_unknown_artno_are_permanent(client, sb):
    with pytest.raises(PermanentError) as caught:
        client.create_receipt({**RECEIPT, "order_no": None})
    assert (caught.value.status, caught.value.error_code) == (400, 450)
    assert "order_no" in caught.value.error_messages[0]
    with pytest.raises(PermanentError) as caught:
        client.get_stock("UNKNOWN-9", "nw")
    assert (caught.value.status, caught.value.error_code) == (404, 1)
    assert sb.state()["receipts"] == []


def test_bad_secret_unknown_key_and_clock_skew(sb):
    # A bad secret or key is permanent; our clock 1000 s off is a configuration error (issue 9): retried.
    cases = [
        (sb.settings(trademax_secret="not-the-secret"), None, (401, 405), PermanentError),
        (sb.settings(trademax_api_key="stranger"), None, (401, 404), PermanentError),
        (sb.settings(), lambda: time.time() - 1000, (401, 402), ClockSkewError),
    ]
    for settings, clock, expected, error in cases:
        kwargs = {"clock": clock} if clock else {}
        with TrademaxClient(settings, **kwargs) as client, pytest.raises(error) as caught:
            client.adjust_stock("1", {"warehouse_id": "nw", "quantity": 1, "type": "absolute"})
        assert (caught.value.status, caught.value.error_code) == expected
        if error is ClockSkewError:
            assert -1010 < caught.value.skew_seconds < -990
    assert sb.state()["stock_adjustments"] == []
    logged = sb.requests()
    assert [(r["status"], r["error_code"]) for r in logged] == [c[2] for c in cases]
    assert all("signature" not in r["params"] for r in logged)
    assert sb.secret not in str(logged)


def test_sandbox_fails_for_a_while_then_recovers(client, sb):
    sb.set_faults(fail_rate=1.0)
    with pytest.raises(TransientError) as caught:
        client.adjust_stock("1", {"warehouse_id": "nw", "quantity": 1, "type": "relative", "reason": 1})
    assert (caught.value.status, caught.value.error_code) == (500, 500)
    sb.set_faults(fail_rate=0)
    assert client.adjust_stock("1", {"warehouse_id": "nw", "quantity": 1, "type": "relative",
                                     "reason": 1}).data["new_quantity"] == 1
    assert [r["fault"] for r in sb.requests()] == ["server_error", None]
    assert len(sb.state()["stock_adjustments"]) == 1  # the 500 applied nothing


def test_429_carries_retry_after(sandbox):
    sb = sandbox(throttle_rate=1.0)
    with TrademaxClient(sb.settings()) as client, pytest.raises(TransientError) as caught:
        client.create_receipt(RECEIPT)
    assert caught.value.status == 429 and caught.value.retry_after == 1.0
    assert sb.state()["receipts"] == []


def test_latency_past_the_read_timeout_is_outcome_unknown(sandbox):
    sb = sandbox(latency_ms=600)
    with TrademaxClient(sb.settings(read_timeout=0.3)) as client:
        with pytest.raises(OutcomeUnknownError) as caught:
            client.get_stock("1", "nw")
    assert "ReadTimeout" in caught.value.detail and caught.value.status is None


def test_applied_then_stalled_is_outcome_unknown_and_was_applied(sandbox):
    sb = sandbox(timeout_after_apply_rate=1.0, stall_seconds=3)
    fields = {"warehouse_id": "nw", "quantity": 5, "type": "relative", "reason": 1}
    with TrademaxClient(sb.settings(read_timeout=0.3)) as client, pytest.raises(OutcomeUnknownError):
        client.adjust_stock("1", fields)
    # The ambiguous case: the client saw no answer, yet the sandbox applied the adjustment.  (Polled: on a
    # slow machine the client may give up before the sandbox's thread got to apply it.)
    applied = wait_for(lambda: sb.state()["stock_adjustments"])
    assert [a["new_quantity"] for a in applied] == [5]
    assert [r["fault"] for r in sb.requests()] == ["stall"]


def wait_for(predicate, timeout: float = 20.0):
    """Poll until ``predicate()`` is truthy (a guard against hanging, not a performance limit)."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)
    return result


def test_sandbox_without_credentials_names_the_variable():
    env = {k: v for k, v in os.environ.items() if k not in ("TRADEMAX_API_KEY", "TRADEMAX_SECRET")}
    done = subprocess.run([sys.executable, "-m", "worker.cli", "sandbox", "--port", "0"], cwd=ROOT, env=env,
                          capture_output=True, timeout=60)
    assert done.returncode == 2
    assert b"TRADEMAX_API_KEY" in done.stderr


def test_a_request_cut_off_mid_body_is_logged_as_interrupted_and_never_applied(client, sb):
    """A worker killed between writing the headers and the body: the sandbox must not take the missing
    body for an unsigned request (a 401 would read as "we sent something unauthentic")."""
    url = sb.base_url + "receipt"
    params = {**RECEIPT, "api_key": sb.api_key, "timestamp": str(int(time.time())), "method": "POST",
              "url": url}
    body = json.dumps({**params, "signature": signing.sign(params, sb.secret)}).encode()
    where = urlsplit(url)
    with socket.create_connection((where.hostname, where.port), timeout=5) as raw:
        raw.sendall(f"POST {where.path} HTTP/1.1\r\nHost: {where.netloc}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                    + body[: len(body) // 2])
        raw.shutdown(socket.SHUT_WR)
        assert raw.recv(1024) == b""  # no answer: the connection is closed
    [entry] = sb.requests()
    assert (entry["fault"], entry["status"], entry["path"]) == ("interrupted", 400, "/api/receipt")
    assert sb.state()["receipts"] == []
    client.create_receipt(RECEIPT)  # the same transaction_id goes through afterwards: nothing was kept
    assert len(sb.state()["receipts"]) == 1
