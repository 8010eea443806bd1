"""Trademax's drafts as its document reads them, through the real worker, scheduler and the sandbox
Trademax (which publishes a draft updated without ``draft`` and refuses every change to a published
dispatch): a dispatch.update the WMS sends without ``draft`` keeps the dispatch a draft, so the next
update is applied too."""
from __future__ import annotations

import pytest

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
