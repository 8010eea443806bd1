"""The desk's form for a dispatch id Trademax did not give: on the event page of a create delivered without
one and of an update waiting for it, for operators only, by POST with the CSRF token; it calls the same
support action as ``wms-relay dispatch set-id`` as the signed-in person (audited via the desk), and input
the action cannot use is refused with its sentence and changes nothing."""
from __future__ import annotations

from tests.worker.web.desk.conftest import csrf_of
from tests.worker.support.test_dispatch_ids import TX, DuplicateWithoutData, example
from worker.delivery.pipeline import deliver

CREATE_PAGE = f"/events/dispatch.create/{TX}"


def shipment_without_id(services) -> None:
    relay = services.relay
    relay.client = DuplicateWithoutData()
    assert deliver(relay, "dispatch.create", example("dispatch.create"), owner="w-0") == "delivered"
    assert deliver(relay, "dispatch.update", example("dispatch.update"), owner="w-1") == "waiting"


def record(client, dispatch_id: str = "390333", why: str = "Trademax's dashboard", page: str = CREATE_PAGE):
    token = csrf_of(client.get(page).get_data(as_text=True))
    return client.post("/dispatch-id", data={"csrf_token": token, "transaction_id": TX,
                                             "dispatch_id": dispatch_id, "why": why})


def test_the_pages_offer_the_form_and_an_operator_records_the_id_as_themselves(operator, desk_services):
    shipment_without_id(desk_services)
    update_page = "/events/dispatch.update/" + example("dispatch.update")["event_id"]
    for page in (CREATE_PAGE, update_page):
        html = operator.get(page).get_data(as_text=True)
        assert 'id="record-dispatch-id"' in html and "dispatch id is unknown" in html
        assert "wms-relay dispatch set-id" in html  # the next step says it in words too
        assert 'http-equiv="refresh"' not in html  # a person types the id here: the page stays put
    overview = operator.get("/").get_data(as_text=True)
    assert "wait for a dispatch id Trademax did not" in overview and CREATE_PAGE in overview

    done = record(operator, page=update_page)
    text = done.get_data(as_text=True)
    assert done.status_code == 200 and "1 done, 0 skipped, 0 failed" in text and "dispatch id 390333" in text
    relay = desk_services.relay
    create = relay.ledger.get("dispatch.create", TX)
    assert create.result["dispatch_id"] == 390333 and create.history[-1]["actor"] == "olga"
    ref = "dispatch.update:" + example("dispatch.update")["event_id"]
    assert relay.schedule.get(ref).due_at <= desk_services.now()  # released: due now
    entries, _ = desk_services.tools.audit.page()
    assert [(e.actor, e.action, e.via, e.status) for e in entries][0] == ("olga", "dispatch-set-id", "desk",
                                                                          "done")
    assert 'id="record-dispatch-id"' not in operator.get(CREATE_PAGE).get_data(as_text=True)


def test_a_viewer_sees_no_form_and_may_not_post_it(viewer, desk_services):
    shipment_without_id(desk_services)
    html = viewer.get(CREATE_PAGE).get_data(as_text=True)
    assert "dispatch id is unknown" in html and 'id="record-dispatch-id"' not in html
    token = csrf_of(html)
    refused = viewer.post("/dispatch-id", data={"csrf_token": token, "transaction_id": TX,
                                                "dispatch_id": "390333", "why": "x"})
    assert refused.status_code == 403
    assert "dispatch_id" not in desk_services.relay.ledger.get("dispatch.create", TX).result


def test_without_the_csrf_token_nothing_happens(operator, desk_services):
    shipment_without_id(desk_services)
    refused = operator.post("/dispatch-id", data={"transaction_id": TX, "dispatch_id": "390333", "why": "x"})
    assert refused.status_code == 400 and "security token" in refused.get_data(as_text=True)
    assert "dispatch_id" not in desk_services.relay.ledger.get("dispatch.create", TX).result
    assert all(e.action != "dispatch-set-id" for e in desk_services.tools.audit.page()[0])


def test_input_the_action_cannot_use_is_refused_with_its_sentence(operator, desk_services):
    shipment_without_id(desk_services)
    for dispatch_id, why, says in (("12ab", "x", "is not a Trademax dispatch id"),
                                   ("390333", " ", "must say where the dispatch id comes from"),
                                   ("<script>1</script>", "x", "&lt;script&gt;")):
        refused = record(operator, dispatch_id, why)
        assert refused.status_code == 400 and says in refused.get_data(as_text=True)
    assert "dispatch_id" not in desk_services.relay.ledger.get("dispatch.create", TX).result
    record(operator)
    again = record(operator, "390334", page=f"/events/dispatch.create/{TX}")
    assert again.status_code == 400 and "already has dispatch id 390333" in again.get_data(as_text=True)
