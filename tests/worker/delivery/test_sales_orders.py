"""Final dispatches become StockTrim sales orders (worker.delivery.sales_orders): the real pipeline over
fakeredis, Trademax scripted at the seam, and the real StockTrim client against the strict sandbox
StockTrim over loopback HTTP (every line it is given is stored, a repeated externalReferenceId too).

- a dispatch.create without draft is one sales order: a line per product line, ``<transaction_id>:<line_no>``,
  the warehouse's location, ``occurred_at`` as the order date, the forecast's demand marked changed;
- a draft built by updates and then published carries the create's lines merged with the updates' (by
  line_no, newest wins), whichever event brought them; the draft's own events send nothing to StockTrim;
- a lost answer is read back first: every line there → delivered (duplicate) with nothing sent; some
  missing → only those are sent; the read failing → ``uncertain``;
- a dispatch published twice makes one sales order; a vendor dispatch (no lines) sends nothing and says
  why; a required catalog without the artno's row waits ``unmapped`` until an import; a publish whose
  create was not seen yet waits for it; STOCKTRIM_SALES_ORDERS=off sends none.
"""
from __future__ import annotations

import pytest

from tests.fixtures.every_destination import every_destination_relay, every_destination_settings
from tests.worker.sandbox.loopback import serving
from worker.delivery.pipeline import deliver
from worker.destinations.stocktrim.client import INVENTORY_CHANGED_KEY, StockTrimClient
from worker.destinations.stocktrim.forecast import ForecastRuns
from worker.sandbox.faults import FaultPlan
from worker.sandbox.stocktrim.api import StockTrimApi
from worker.store.audit_log import AuditLog
from worker.support.catalog import import_catalog

AUTH = {"stocktrim_auth_id": "tenant-1", "stocktrim_auth_signature": "sig-1"}
AT = "2024-05-14T09:12:45+02:00"
AT_UTC = "2024-05-14T07:12:45+00:00"  # occurred_at in UTC: the order's date


@pytest.fixture
def sandbox():
    api = StockTrimApi(auth_id="tenant-1", auth_signature="sig-1")
    with serving(api, FaultPlan(stall_seconds=1.5)) as (base_url, control):
        yield base_url, control


def make_relay(base_url, **overrides):
    settings = every_destination_settings(stocktrim_base_url=base_url, read_timeout=0.5, **AUTH, **overrides)
    relay = every_destination_relay(settings=settings)
    relay.clients["stocktrim"] = StockTrimClient(settings, redis=relay.redis, clock=relay.clock)
    return relay


@pytest.fixture
def relay(sandbox):
    return make_relay(sandbox[0])


def create(tx="TX-1", *, draft=False, products=((1000, "A-1", 12), (2000, "B-2", 3)), warehouse="se", at=AT):
    event = {"occurred_at": at, "warehouse_id": warehouse, "order_no": f"FO-{tx}", "transaction_id": tx,
             "order_type": "SO",
             "packages": [{"package_id": 1, "weight": 1, "volume": 1,
                           "products": [{"line_no": n, "artno": a} for n, a, _ in products]}],
             "products": [{"line_no": n, "artno": a, "quantity": q} for n, a, q in products]}
    if draft:
        event["draft"] = True
    return event


def update(tx, event_id, products, *, at="2024-05-14T09:40:00+02:00", **more):
    event = {"event_id": event_id, "occurred_at": at, "transaction_id": tx, **more}
    if products:
        event["products"] = [{"line_no": n, "artno": a, "quantity": q} for n, a, q in products]
    return event


def publish(tx, event_id, *, at="2024-05-14T10:02:17+02:00"):
    return {"event_id": event_id, "occurred_at": at, "transaction_id": tx}


def run(relay, operation, event):
    """The WMS's task (Trademax's delivery, which fans out), then every fanned-out StockTrim task; the
    StockTrim state of the last one (None when none was fanned out)."""
    deliver(relay, operation, event, owner="w-trademax")
    found = None
    while relay.published:
        message = relay.published.pop(0)
        destination, _, op = message["task"].partition(".")
        found = deliver(relay, op, message["event"], owner=f"w-{destination}", destination=destination)
    return found


def again(relay, operation, key_event):
    """StockTrim's delivery run again (its retry come due)."""
    return deliver(relay, operation, key_event, owner="w-retry", destination="stocktrim")


def lines(control):
    return [(line["externalReferenceId"], line["productId"], line["quantity"], line["locationCode"],
             line["orderDate"]) for line in control.state()["sales_lines"]]


def test_a_final_create_is_one_sales_order_with_a_line_per_product_line(relay, sandbox):
    _, control = sandbox
    assert run(relay, "dispatch.create", create()) == "delivered"
    assert lines(control) == [("TX-1:1000", "A-1", 12, "SE", AT_UTC), ("TX-1:2000", "B-2", 3, "SE", AT_UTC)]
    assert control.state()["sales_order_posts"] == 1
    record = relay.ledger_of("stocktrim").get("dispatch.create", "TX-1")
    assert record.result["sales_order"] == {"location": "SE", "lines": 2, "sent": 2,
                                            "references": ["TX-1:1000", "TX-1:2000"]}
    assert relay.redis.get(INVENTORY_CHANGED_KEY)  # demand changed: the forecast is due
    forecast = ForecastRuns(relay.redis, every_seconds=3600, clock=relay.clock,
                            client=relay.clients["stocktrim"])
    assert forecast.run_if_due() and control.state()["forecast_runs"]["count"] == 1
    # The WMS's message redelivered: settled, nothing sent again.
    assert run(relay, "dispatch.create", create()) is None
    assert again(relay, "dispatch.create", create()) == "delivered"
    assert control.state()["sales_order_posts"] == 1


def test_a_draft_built_by_updates_then_published_sends_its_merged_lines_once(relay, sandbox):
    _, control = sandbox
    assert run(relay, "dispatch.create", create("TX-2", draft=True, products=[(1000, "A-1", 5)])) is None
    assert run(relay, "dispatch.update", update("TX-2", "u-1", [(1000, "A-1", 7), (2000, "B-2", 1)])) is None
    assert run(relay, "dispatch.update", update("TX-2", "u-2", [(3000, "C-3", 4)],
                                                at="2024-05-14T09:50:00+02:00")) is None
    assert control.state()["sales_lines"] == []  # a draft is no sale
    assert run(relay, "dispatch.publish", publish("TX-2", "p-1")) == "delivered"
    published_at = "2024-05-14T08:02:17+00:00"  # the publish's occurred_at
    assert lines(control) == [("TX-2:1000", "A-1", 7, "SE", published_at),
                              ("TX-2:2000", "B-2", 1, "SE", published_at),
                              ("TX-2:3000", "C-3", 4, "SE", published_at)]


def test_an_older_update_redelivered_after_a_newer_one_does_not_undo_it(relay, sandbox):
    _, control = sandbox
    run(relay, "dispatch.create", create("TX-3", draft=True, products=[(1000, "A-1", 5)]))
    run(relay, "dispatch.update", update("TX-3", "u-2", [(1000, "A-1", 9)], at="2024-05-14T09:50:00+02:00"))
    run(relay, "dispatch.update", update("TX-3", "u-1", [(1000, "A-1", 7)], at="2024-05-14T09:40:00+02:00"))
    assert run(relay, "dispatch.update", update("TX-3", "u-3", [], at="2024-05-14T09:55:00+02:00",
                                                draft=False)) == "delivered"
    assert [(ref, quantity) for ref, _, quantity, _, _ in lines(control)] == [("TX-3:1000", 9)]


def test_a_lost_answer_is_read_back_and_nothing_is_sent_twice(relay, sandbox):
    _, control = sandbox
    control.set_faults(timeout_after_apply_rate=1.0)
    assert run(relay, "dispatch.create", create("TX-4")) == "retrying"
    control.set_faults(timeout_after_apply_rate=0.0)
    assert again(relay, "dispatch.create", create("TX-4")) == "delivered"
    state = control.state()
    assert (state["sales_order_posts"], state["duplicated_references"]) == (1, {})
    record = relay.ledger_of("stocktrim").get("dispatch.create", "TX-4")
    assert record.result["sales_order"]["read_back"] is True
    assert (record.result["sales_order"]["found"], record.result["sales_order"]["sent"]) == (2, 0)
    assert "already had it" in record.history[-1]["reason"]
    reads = [r for r in control.requests() if r["method"] == "GET"]
    assert sorted(r["params"]["productId"] for r in reads) == ["A-1", "B-2"]


def test_after_a_lost_answer_only_the_missing_lines_are_sent(relay, sandbox):
    _, control = sandbox
    control.set_faults(timeout_after_apply_rate=1.0)
    assert run(relay, "dispatch.create", create("TX-5")) == "retrying"
    control.set_faults(timeout_after_apply_rate=0.0)
    # One line is gone from StockTrim (as if that part of the order had not been applied).
    import requests
    base_url = sandbox[0]
    gone = requests.delete(base_url + "api/SalesOrders/Range", params={
        "fromDate": "2024-01-01T00:00:00Z", "toDate": "2025-01-01T00:00:00Z", "productId": "B-2"},
        headers={"api-auth-id": "tenant-1", "api-auth-signature": "sig-1"}, timeout=5)
    assert gone.status_code == 200
    assert again(relay, "dispatch.create", create("TX-5")) == "delivered"
    assert sorted(ref for ref, *_ in lines(control)) == ["TX-5:1000", "TX-5:2000"]
    assert control.state()["duplicated_references"] == {}
    record = relay.ledger_of("stocktrim").get("dispatch.create", "TX-5")
    assert (record.result["sales_order"]["found"], record.result["sales_order"]["sent"]) == (1, 1)


def test_a_read_back_that_fails_parks_the_sales_order_uncertain(relay, sandbox):
    _, control = sandbox
    control.set_faults(timeout_after_apply_rate=1.0)
    assert run(relay, "dispatch.create", create("TX-6")) == "retrying"
    assert again(relay, "dispatch.create", create("TX-6")) == "uncertain"  # the read's answer is lost too
    record = relay.ledger_of("stocktrim").get("dispatch.create", "TX-6")
    assert "reading StockTrim's sales orders back failed" in record.history[-1]["reason"]
    assert control.state()["sales_order_posts"] == 1  # never resent on a guess


def test_an_outage_retries_a_sales_order_without_reading_back_and_trademax_is_not_held(relay, sandbox):
    _, control = sandbox
    control.set_faults(fail_rate=1.0)
    assert run(relay, "dispatch.create", create("TX-7")) == "retrying"
    assert relay.ledger.get("dispatch.create", "TX-7").state == "delivered"  # Trademax's own delivery
    control.set_faults(fail_rate=0.0)
    assert again(relay, "dispatch.create", create("TX-7")) == "delivered"
    assert [r["method"] for r in control.requests() if "SalesOrders" in r["path"]] == ["POST", "POST"]
    assert len(lines(control)) == 2


class _Killed(BaseException):
    """The worker process dies (SIGKILL) right after its request left: nothing of it reaches the ledger."""


class _DiesAfterSending(StockTrimClient):
    def create_sales_order(self, body):
        super().create_sales_order(body)
        raise _Killed()


def test_a_send_taken_over_from_a_dead_worker_is_read_back_on_every_later_try(relay, sandbox):
    """The chaos run's doubled line (seed 7, CHX-7-00177): attempt 2's worker was killed after StockTrim
    stored the order; attempt 3 took the claim over and its read back got a 500 (retried); attempts 4
    and 5 sent the order blind — the lost answer was in the history (the take-over), not in the attempt
    log."""
    _, control = sandbox
    control.set_faults(fail_rate=1.0)
    assert run(relay, "dispatch.create", create("TX-9")) == "retrying"  # attempt 1: a 500
    control.set_faults(fail_rate=0.0)
    live = relay.clients["stocktrim"]
    relay.clients["stocktrim"] = _DiesAfterSending(relay.settings, redis=relay.redis, clock=relay.clock)
    with pytest.raises(_Killed):
        again(relay, "dispatch.create", create("TX-9"))  # attempt 2: stored, its worker gone
    relay.clients["stocktrim"] = live
    assert len(lines(control)) == 2
    relay.clock.advance(relay.settings.claim_lease_seconds + 1)
    control.set_faults(fail_rate=1.0)
    assert again(relay, "dispatch.create", create("TX-9")) == "retrying"  # attempt 3: the read back fails
    control.set_faults(fail_rate=0.0)
    assert again(relay, "dispatch.create", create("TX-9")) == "delivered"  # attempt 4
    assert control.state()["duplicated_references"] == {}
    assert sorted(ref for ref, *_ in lines(control)) == ["TX-9:1000", "TX-9:2000"]
    record = relay.ledger_of("stocktrim").get("dispatch.create", "TX-9")
    assert record.result["sales_order"]["read_back"] is True
    assert (record.result["sales_order"]["found"], record.result["sales_order"]["sent"]) == (2, 0)


def test_a_dispatch_published_twice_makes_one_sales_order(relay, sandbox):
    _, control = sandbox
    run(relay, "dispatch.create", create("TX-8", draft=True))
    assert run(relay, "dispatch.publish", publish("TX-8", "p-1")) == "delivered"
    assert run(relay, "dispatch.publish", publish("TX-8", "p-2")) == "delivered"
    assert control.state()["sales_order_posts"] == 1
    second = relay.ledger_of("stocktrim").get("dispatch.publish", "p-2")
    assert second.result["sales_order"] is None
    assert "sales order is stocktrim/dispatch.publish:p-1's" in second.history[-1]["reason"]


def test_a_vendor_dispatch_sends_nothing_and_says_why(relay, sandbox):
    _, control = sandbox
    event = {"event_id": "v-1", "occurred_at": AT, "order_no": "FO-1", "labels_quantity": 2}
    assert run(relay, "vendor_dispatch.create", event) == "delivered"
    record = relay.ledger_of("stocktrim").get("vendor_dispatch.create", "v-1")
    assert "names no product lines" in record.history[-1]["reason"] and record.attempts_log == ()
    assert control.state()["sales_order_posts"] == 0


def test_a_publish_whose_create_was_not_seen_waits_for_it(relay, sandbox, ):
    _, control = sandbox
    assert run(relay, "dispatch.publish", publish("TX-9", "p-9")) == "waiting"
    record = relay.ledger_of("stocktrim").get("dispatch.publish", "p-9")
    assert "waiting for its dispatch.create TX-9" in record.history[-1]["reason"]
    assert relay.schedule.get("stocktrim/dispatch.publish:p-9") is not None
    run(relay, "dispatch.create", create("TX-9", draft=True, products=[(1, "A-1", 2)]))
    assert again(relay, "dispatch.publish", publish("TX-9", "p-9")) == "delivered"
    assert [ref for ref, *_ in lines(control)] == ["TX-9:1"]


def test_a_required_catalog_without_a_row_waits_unmapped_until_an_import(sandbox):
    base_url, control = sandbox
    relay = make_relay(base_url, stocktrim_catalog="required")
    relay.catalog_of("stocktrim").load([])
    assert run(relay, "dispatch.create", create("TX-10")) == "waiting"
    record = relay.ledger_of("stocktrim").get("dispatch.create", "TX-10")
    assert record.history[-1]["reason"].startswith("unmapped: artno A-1")
    header = "artno,product_code,variant_code,title,active\n"
    import_catalog(relay, AuditLog(relay.redis, relay.clock), "stocktrim",
                   (header + "A-1,P-1,P-1-M,Shirt,\nB-2,P-2,,Chair,\n").encode(), source="c.csv",
                   replace=False, actor="ann")
    assert again(relay, "dispatch.create", create("TX-10")) == "delivered"
    assert [(ref, product) for ref, product, *_ in lines(control)] == [
        ("TX-10:1000", "P-1-M"), ("TX-10:2000", "P-2")]


def test_sales_orders_off_sends_none(sandbox):
    base_url, control = sandbox
    relay = make_relay(base_url, stocktrim_sales_orders="off")
    assert run(relay, "dispatch.create", create("TX-11")) is None
    assert relay.ledger_of("stocktrim").get("dispatch.create", "TX-11") is None
    assert control.state()["sales_order_posts"] == 0


def test_a_draft_pushed_onto_stocktrims_queue_by_hand_sends_nothing(relay, sandbox):
    _, control = sandbox
    assert again(relay, "dispatch.create", create("TX-12", draft=True)) == "delivered"
    record = relay.ledger_of("stocktrim").get("dispatch.create", "TX-12")
    assert "leaves the dispatch a draft" in record.history[-1]["reason"]
    assert control.state()["sales_order_posts"] == 0
