"""The fake Trademax's state and routes, without HTTP: what each request applies and answers."""
from __future__ import annotations

import threading

import pytest

from worker.sandbox.trademax import routes
from worker.sandbox.trademax.state import SandboxState

TODAY = 1_700_000_000.0  # 2023-11-14


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(clock=lambda: TODAY, label_base="http://labels.test/")


def dispatch(**changes):
    fields = {
        "warehouse_id": "nw", "order_no": "FO1", "transaction_id": "T1", "order_type": "SO", "draft": True,
        "packages": [{"package_id": 1, "weight": 34, "volume": 2,
                      "products": [{"line_no": 1000, "artno": "A"}]}],
        "products": [{"line_no": 1000, "artno": "A", "quantity": 12}],
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not ...}


def call(state, method, path, fields=None):
    return routes.answer(state, method, path, fields or {})


def test_create_dispatch_fills_in_trademax_values(state):
    answer = call(state, "POST", "dispatch", dispatch())
    assert (answer.status, answer.error_code) == (200, 0)
    data = answer.data
    assert data["dispatch_id"] == 1 and data["draft"] is True and data["dispatch_date"] == "2023-11-14"
    assert data["tracking_code"] and data["labels_url_pdf"].startswith("http://labels.test/dispatch/1/")
    assert data["labels_url_web"] and data["packages"][0]["label_url"].endswith("/package/1.pdf")
    assert (data["total_weight"], data["total_volume"]) == (34, 2)
    assert call(state, "POST", "dispatch", dispatch(transaction_id="T2")).data["dispatch_id"] == 2


def test_repeated_transaction_id_answers_452_with_the_original(state):
    first = call(state, "POST", "dispatch", dispatch())
    again = call(state, "POST", "dispatch", dispatch(order_no="OTHER"))
    assert (again.status, again.error_code) == (400, 452)
    assert again.data["dispatch_id"] == first.data["dispatch_id"] and again.data["order_no"] == "FO1"
    assert len(state.snapshot()["dispatches"]) == 1


def test_update_adds_and_replaces_packages_then_publishing_is_one_way(state):
    call(state, "POST", "dispatch", dispatch())
    update = {"packages": [{"package_id": 2, "weight": 16, "volume": 0.4,
                            "products": [{"line_no": 2000, "artno": "B"}]},
                           {"package_id": 1, "weight": 30, "volume": 2,
                            "products": [{"line_no": 1000, "artno": "A"}]}],
              "products": [{"line_no": 2000, "artno": "B", "quantity": 1}], "order_no": "FO1b", "draft": True}
    answer = call(state, "PATCH", "dispatch/1", update)
    assert answer.status == 200
    assert [(p["package_id"], p["weight"]) for p in answer.data["packages"]] == [(1, 30), (2, 16)]
    assert [p["line_no"] for p in answer.data["products"]] == [1000, 2000]
    assert (answer.data["order_no"], answer.data["draft"], answer.data["total_weight"]) == ("FO1b", True, 46)

    published = call(state, "PATCH", "dispatch/1", {"draft": False})
    assert published.status == 200 and published.data["draft"] is False
    for method, fields in (("PATCH", {"draft": True}), ("PATCH", {"order_no": "X"}), ("DELETE", {})):
        refused = call(state, method, "dispatch/1", fields)
        assert (refused.status, refused.error_code) == (400, 1)
        assert "published" in refused.messages[0]
    assert state.snapshot()["dispatches"][0]["draft"] is False


@pytest.mark.parametrize("draft", [False, ...], ids=["draft false", "draft left out"])
def test_an_update_without_draft_true_publishes_and_the_next_change_is_refused(state, draft):
    """The document: "By sending draft = false or ignoring this property will make dispatch route work as
    previously" (published), and "This route will return an error for published dispatches"."""
    call(state, "POST", "dispatch", dispatch())
    change = {"order_no": "FO1b", "draft": draft} if draft is not ... else {"order_no": "FO1b"}
    answer = call(state, "PATCH", "dispatch/1", change)
    assert (answer.status, answer.data["draft"], answer.data["order_no"]) == (200, False, "FO1b")
    refused = call(state, "PATCH", "dispatch/1", {"order_no": "FO1c", "draft": True})
    assert (refused.status, refused.error_code) == (400, 1)
    assert refused.messages == ("dispatch is published: dispatch 1 cannot be changed",)
    assert state.snapshot()["dispatches"][0]["order_no"] == "FO1b"


def test_an_update_with_draft_true_keeps_the_draft_and_the_next_update_is_applied(state):
    call(state, "POST", "dispatch", dispatch())
    for order_no in ("FO1b", "FO1c"):
        answer = call(state, "PATCH", "dispatch/1", {"order_no": order_no, "draft": True})
        assert (answer.status, answer.data["draft"], answer.data["order_no"]) == (200, True, order_no)


def test_an_update_left_without_draft_that_cannot_publish_is_refused_and_stays_a_draft(state):
    call(state, "POST", "dispatch", dispatch(packages=..., products=...))
    refused = call(state, "PATCH", "dispatch/1", {"order_no": "FO1b"})
    assert (refused.status, refused.error_code) == (400, 450)
    assert state.snapshot()["dispatches"][0]["draft"] is True


def test_publishing_an_incomplete_draft_names_the_missing_field(state):
    call(state, "POST", "dispatch", dispatch(packages=..., products=...))
    refused = call(state, "PATCH", "dispatch/1", {"draft": False})
    assert (refused.status, refused.error_code) == (400, 450)
    assert "packages" in refused.messages[0]
    assert state.snapshot()["dispatches"][0]["draft"] is True  # nothing applied


def test_create_validation(state):
    missing = call(state, "POST", "dispatch", dispatch(order_no=...))
    assert (missing.status, missing.error_code) == (400, 450) and "order_no" in missing.messages[0]
    bad_type = call(state, "POST", "dispatch", dispatch(order_type="XX"))
    assert (bad_type.status, bad_type.error_code) == (400, 451) and "order_type" in bad_type.messages[0]
    no_weight = [{"package_id": 1, "volume": 1, "products": [{"line_no": 1, "artno": "A"}]}]
    bad_package = call(state, "POST", "dispatch", dispatch(draft=False, packages=no_weight))
    assert bad_package.error_code == 450 and "packages[0].weight" in bad_package.messages[0]
    assert state.snapshot()["dispatches"] == []


def test_delete_draft_frees_the_transaction_id(state):
    call(state, "POST", "dispatch", dispatch())
    deleted = call(state, "DELETE", "dispatch/1")
    assert deleted.status == 200 and deleted.data == {"dispatch_id": 1, "deleted": True}
    assert call(state, "GET", "dispatch/1").status == 404
    assert call(state, "POST", "dispatch", dispatch()).data["dispatch_id"] == 2
    snapshot = state.snapshot()
    assert [d["dispatch_id"] for d in snapshot["deleted_dispatches"]] == [1]


def test_vendor_dispatch_answers_code_not_error_code(state):
    answer = call(state, "POST", "vendor/dispatch", {"order_no": "IO1", "labels_quantity": 2})
    assert answer.body()["error"] == {"code": 0, "error_messages": []}
    assert [p["package_id"] for p in answer.data["packages"]] == [1, 2]
    assert all(p["label_url"] and p["label_sscc"] for p in answer.data["packages"])
    assert call(state, "POST", "vendor/dispatch", {"order_no": "IO1", "labels_quantity": 0}).error_code == 451


def test_receipts(state):
    fields = {"order_no": "IO1", "transaction_id": "R1", "order_type": "PO", "warehouse_id": "NW",
              "received_date": "2015-07-26",
              "products": [{"line_no": 1000, "artno": "113-11", "quantity": 3}]}
    created = call(state, "POST", "receipt", fields)
    assert created.status == 200 and created.data["receipt_id"] == 1
    assert call(state, "GET", "receipt/1").data == created.data
    duplicate = call(state, "POST", "receipt", fields)
    assert duplicate.error_code == 452 and duplicate.data["receipt_id"] == 1
    bad_date = {**fields, "transaction_id": "R2", "received_date": "26/07/2015"}
    assert call(state, "POST", "receipt", bad_date).error_code == 451
    assert call(state, "GET", "receipt/99").status == 404
    assert len(state.snapshot()["receipts"]) == 1


def test_stock_absolute_sets_relative_adds_and_every_change_is_logged(state):
    path = "inventory/123/stock-adjustment"
    assert call(state, "GET", path, {"warehouse_id": "nw"}).data == {"artno": "123", "quantity": 0}
    first = call(state, "PATCH", path, {"warehouse_id": "nw", "quantity": 77, "type": "absolute"})
    assert first.data == {"artno": "123", "old_quantity": 0, "new_quantity": 77}
    second = call(state, "PATCH", "inventory/123/stock-adjustment",
                  {"warehouse_id": "nw", "quantity": "-7", "type": "relative", "reason": 2})
    assert second.data == {"artno": "123", "old_quantity": 77, "new_quantity": 70}
    other_warehouse = call(state, "GET", "inventory/123/stock-adjustment", {"warehouse_id": "se"})
    assert other_warehouse.data["quantity"] == 0
    no_reason = call(state, "PATCH", path, {"warehouse_id": "nw", "quantity": 1, "type": "relative"})
    assert no_reason.error_code == 450 and "reason" in no_reason.messages[0]
    snapshot = state.snapshot()
    assert snapshot["stock"] == [{"warehouse_id": "nw", "artno": "123", "quantity": 70}]
    logged = [(a["type"], a["quantity"], a["old_quantity"], a["new_quantity"])
              for a in snapshot["stock_adjustments"]]
    assert logged == [("absolute", 77, 0, 77), ("relative", -7, 77, 70)]


def test_unknown_artno_is_404(state):
    for method, path in (("GET", "inventory/UNKNOWN-1/stock-adjustment"), ("PATCH", "inventory/unknown9"),
                         ("GET", "inventory/UNKNOWN-1")):
        answer = call(state, method, path, {"warehouse_id": "nw", "quantity": 1, "type": "absolute"})
        assert (answer.status, answer.error_code) == (404, 1)


def test_quoted_path_segments_are_one_artno(state):
    answer = call(state, "PATCH", "inventory/12%2F3%20%C3%A4/stock-adjustment",
                  {"warehouse_id": "nw", "quantity": 5, "type": "absolute"})
    assert answer.data["artno"] == "12/3 ä"


def test_package_data(state):
    fields = {"warehouse_id": "nw",
              "packages": [{"number": 2, "quantity": 1, "weight": 12, "height": 1, "width": 2, "length": 3},
                           {"number": 1, "quantity": 1, "weight": 10, "volume": 35}]}
    assert call(state, "PATCH", "inventory/123", fields).data["packages"][0]["number"] == 1
    got = call(state, "GET", "inventory/123", {"warehouse_id": "nw"})
    assert [p["number"] for p in got.data["packages"]] == [1, 2]
    no_volume = {"warehouse_id": "nw", "packages": [{"number": 3, "quantity": 1, "weight": 1, "height": 1}]}
    answer = call(state, "PATCH", "inventory/123", no_volume)
    assert answer.error_code == 450 and "packages[0].width" in answer.messages[0]


def test_order_lines_answer_without_envelope(state):
    fields = {"warehouse_id": "nw",
              "lines": [{"line_no": 2000, "processing": 0}, {"line_no": 1000, "processing": 1}]}
    answer = call(state, "PATCH", "order/outgoing/IO12345", fields)
    assert answer.body() == fields
    got = call(state, "GET", "order/outgoing/IO12345", {"warehouse_id": "nw"})
    assert got.body() == {"warehouse_id": "nw", "lines": [{"line_no": 1000, "processing": 1},
                                                          {"line_no": 2000, "processing": 0}]}
    bad = call(state, "PATCH", "order/outgoing/IO12345",
               {"warehouse_id": "nw", "lines": [{"line_no": 1, "processing": 2}]})
    assert bad.body()["error"]["error_code"] == 451
    assert len(state.snapshot()["line_locks"]) == 2


def test_unknown_route(state):
    answer = call(state, "PUT", "dispatch")
    assert (answer.status, answer.error_code) == (404, 1)


def test_concurrent_relative_adjustments_all_count(state):
    def adjust():
        for _ in range(200):
            call(state, "PATCH", "inventory/1/stock-adjustment",
                 {"warehouse_id": "nw", "quantity": 1, "type": "relative", "reason": 1})

    threads = [threading.Thread(target=adjust) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshot = state.snapshot()
    assert snapshot["stock"][0]["quantity"] == 1600
    assert len(snapshot["stock_adjustments"]) == 1600


def test_reset_forgets_everything(state):
    call(state, "POST", "dispatch", dispatch())
    state.reset()
    assert all(not value for value in state.snapshot().values())
    assert call(state, "POST", "dispatch", dispatch()).data["dispatch_id"] == 1
