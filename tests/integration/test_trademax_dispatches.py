"""Trademax's dispatches as its document reads them, through the real worker, scheduler and the sandbox
Trademax (which publishes a draft updated without ``draft`` and refuses every change to a published
dispatch): a dispatch.update the WMS sends without ``draft`` keeps the dispatch a draft, so the next
update is applied too; and a create answered 452 without the dispatch's id waits for a person's
``wms-relay dispatch set-id``, after which its updates are each sent once."""
from __future__ import annotations

import pytest

from tests.fixtures.pipeline import wait_until
from tests.integration.test_delivery_pipeline import api_requests, example

pytestmark = pytest.mark.integration


def test_an_update_without_draft_leaves_the_dispatch_a_draft_and_the_next_update_succeeds(pipeline):
    pipeline.start_worker()
    create = example("dispatch.create", transaction_id="DRAFT-KEPT", draft=True)
    pipeline.enqueue("dispatch.create", create)
    pipeline.wait_for_state("dispatch.create", "DRAFT-KEPT", "delivered")
    first = example("dispatch.update", transaction_id="DRAFT-KEPT", event_id="upd-1")
    del first["draft"]
    second = {**first, "event_id": "upd-2", "order_no": "FO-CHANGED",
              "packages": [{**first["packages"][0], "package_id": 3}]}
    for update in (first, second):
        assert "draft" not in update
        pipeline.enqueue("dispatch.update", update)
        pipeline.wait_for_state("dispatch.update", update["event_id"], "delivered")

    (dispatch,) = [d for d in pipeline.sandbox.state()["dispatches"] if d["transaction_id"] == "DRAFT-KEPT"]
    assert dispatch["draft"] is True and dispatch["order_no"] == "FO-CHANGED"
    assert sorted(p["package_id"] for p in dispatch["packages"]) == [1, 2, 3]
    patches = api_requests(pipeline, "PATCH", "dispatch")
    assert [(p["status"], p["params"]["draft"]) for p in patches] == [(200, True), (200, True)]


def test_a_452_without_data_then_dispatch_set_id_releases_the_followers_each_sent_once(pipeline):
    """Trademax already has the shipment (created before, its answer lost to the relay) and its 452 carries
    no data (the sandbox's duplicate_without_data switch): the create is delivered "dispatch id unknown",
    both updates wait (dispatch_id_unknown, an attention item), ``wms-relay dispatch set-id`` refuses what
    it cannot use and then records the id, and each update is sent once, to that dispatch."""
    from tests.integration.test_support_cli import wms_relay, wms_relay_json
    from worker.destinations.trademax.client import TrademaxClient

    pipeline.start_worker()
    create = example("dispatch.create", transaction_id="LOST-ID", draft=True)
    existing = TrademaxClient(pipeline.sandbox.settings()).create_dispatch(
        {k: v for k, v in create.items() if k != "occurred_at"})
    dispatch_id = existing.data["dispatch_id"]
    pipeline.sandbox.set_faults(duplicate_without_data=1)
    pipeline.enqueue("dispatch.create", create)
    pipeline.wait_for_state("dispatch.create", "LOST-ID", "delivered")
    assert "dispatch id unknown" in pipeline.record("dispatch.create", "LOST-ID").history[-1]["reason"]
    followers = [example("dispatch.update", transaction_id="LOST-ID", event_id=f"upd-{n}",
                         packages=[{**example("dispatch.update")["packages"][0], "package_id": 10 + n}])
                 for n in range(2)]
    for update in followers:
        pipeline.enqueue("dispatch.update", update)
    for update in followers:
        pipeline.wait_for_state("dispatch.update", update["event_id"], "waiting")
    wait_until(lambda: wms_relay_json(pipeline, "status")["dispatch_id_unknown"]["waiting"] == 2, 30,
               "both updates to be listed as waiting for the dispatch id")

    status = wms_relay(pipeline, "status", "--fail-on-attention")
    assert status.returncode == 1 and "dispatch set-id LOST-ID DISPATCH_ID" in status.stdout, status.stdout
    view = wms_relay_json(pipeline, "event", "dispatch.update", "upd-0")
    assert view["state"] == "waiting" and view["history"][-1]["reason"].startswith("dispatch_id_unknown")
    shown = wms_relay(pipeline, "event", "dispatch.update", "upd-0")
    assert "wms-relay dispatch set-id LOST-ID DISPATCH_ID" in shown.stdout
    assert api_requests(pipeline, "PATCH", "dispatch") == []

    for argv, says in ((["NO-SUCH-TX", str(dispatch_id)], "knows no dispatch.create"),
                       (["LOST-ID", "12ab"], "is not a Trademax dispatch id")):
        refused = wms_relay(pipeline, "dispatch", "set-id", *argv, "--reason", "x")
        assert refused.returncode == 2 and says in refused.stderr and refused.stdout == "", refused.stderr
    recorded = wms_relay(pipeline, "dispatch", "set-id", "LOST-ID", str(dispatch_id), "--reason",
                         "read in Trademax's dashboard", "--actor", "dana")
    assert recorded.returncode == 0 and "Summary: 1 recorded" in recorded.stdout, recorded.stdout
    again = wms_relay(pipeline, "dispatch", "set-id", "LOST-ID", "999", "--reason", "x")
    assert again.returncode == 2 and f"already has dispatch id {dispatch_id}" in again.stderr

    for update in followers:
        pipeline.wait_for_state("dispatch.update", update["event_id"], "delivered")
    wait_until(lambda: pipeline.redis().llen("trademax.dispatch") == 0, 30, "the dispatch queue to drain")
    patches = api_requests(pipeline, "PATCH", "dispatch")
    assert sorted((p["path"], p["status"], p["params"]["packages"][0]["package_id"]) for p in patches) == [
        (f"/api/dispatch/{dispatch_id}", 200, 10), (f"/api/dispatch/{dispatch_id}", 200, 11)]
    (dispatch,) = [d for d in pipeline.sandbox.state()["dispatches"] if d["transaction_id"] == "LOST-ID"]
    assert {10, 11} <= {p["package_id"] for p in dispatch["packages"]} and dispatch["draft"] is True
    after = wms_relay_json(pipeline, "status")
    assert after["dispatch_id_unknown"]["shipments"] == 0
    assert "dispatch_id_unknown" not in [a["flag"] for a in after["attention"]]
    (entry,) = [e for e in wms_relay_json(pipeline, "audit")["entries"] if e["action"] == "dispatch-set-id"]
    assert (entry["actor"], entry["reason"], entry["status"]) == (
        "dana", "read in Trademax's dashboard", "done")
