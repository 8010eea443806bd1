"""``POST /v1/events/OP?dry_run=true``: judged as the door judges, with nothing written — no ledger record,
no queue message, no dead letter — and a key already used for another payload shows as the conflict it
would be; and every request at the door is one log line with its X-Request-ID."""
from __future__ import annotations

import json
import logging

from tests.worker.web.conftest import EXAMPLES, example


def _nothing_written(door) -> bool:
    return door.queued == [] and door.relay.dead_letters.count() == 0 and door.store.dbsize() == 0


def test_a_valid_event_is_200_and_nothing_is_recorded_or_queued(door):
    answer = door.client.post("/v1/events/stock.adjust?dry_run=true", json=example("stock.adjust"))
    assert answer.status_code == 200
    assert answer.get_json() == {"operation": "stock.adjust", "dry_run": True, "events": [
        {"index": 0, "key": "nw-stock-count-123-20240514-0600", "state": None, "status": 200,
         "note": "valid: would be admitted (dry run: nothing recorded, nothing queued)"}]}
    assert _nothing_written(door)


def test_an_invalid_event_is_the_same_422_as_the_real_door_without_a_dead_letter(door):
    body = json.loads((EXAMPLES / "invalid-receipt.json").read_text())
    dry = door.client.post("/v1/events/receipt.create?dry_run=true", json=body)
    assert dry.status_code == 422 and _nothing_written(door)
    real = door.post("receipt.create", body)
    assert real.status_code == 422 and door.relay.dead_letters.count() == 1
    [tried], [admitted] = dry.get_json()["events"], real.get_json()["events"]
    assert tried["note"] == admitted["note"] and tried["errors"] == admitted["errors"]
    assert (tried["state"], admitted["state"]) == (None, "dead")


def test_a_key_used_for_another_payload_is_409_without_a_dead_letter(door):
    assert door.post("stock.adjust", example("stock.adjust")).status_code == 202
    written = door.store.dbsize()
    answer = door.client.post("/v1/events/stock.adjust?dry_run=1", json=example("stock.adjust", quantity=78))
    assert answer.status_code == 409
    entry = answer.get_json()["events"][0]
    assert (entry["status"], entry["state"]) == (409, "accepted") and entry["note"].startswith("conflict:")
    assert door.relay.dead_letters.count() == 0 and len(door.queued) == 1 and door.store.dbsize() == written


def test_the_same_event_again_is_known_with_its_state(door):
    door.post("stock.adjust", example("stock.adjust"))
    answer = door.client.post("/v1/events/stock.adjust?dry_run=true", json=example("stock.adjust"))
    entry = answer.get_json()["events"][0]
    assert (answer.status_code, entry["state"]) == (200, "accepted")
    assert entry["note"] == "known: already accepted; it would be queued again (and sent once)"
    assert len(door.queued) == 1


def test_a_batch_is_judged_per_event(door):
    events = [example("stock.adjust", event_id="a"), {"occurred_at": "yesterday"}]
    answer = door.client.post("/v1/events/stock.adjust?dry_run=true", json=events)
    assert answer.status_code == 207
    assert [e["status"] for e in answer.get_json()["events"]] == [200, 422]
    assert _nothing_written(door)


def test_dry_run_takes_true_or_false_only(door):
    answer = door.client.post("/v1/events/stock.adjust?dry_run=maybe", json=example("stock.adjust"))
    assert (answer.status_code, answer.get_json()["error"]) == (400, "bad_query")
    assert _nothing_written(door)
    assert door.client.post("/v1/events/stock.adjust?dry_run=false", json=example("stock.adjust")) \
        .status_code == 202


def test_a_store_that_does_not_answer_is_503(door):
    door.server.connected = False
    events = [example("stock.adjust", event_id="a"), example("stock.adjust", event_id="b")]
    answer = door.client.post("/v1/events/stock.adjust?dry_run=true", json=events)
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert [e["status"] for e in answer.get_json()["events"]] == [503, 503]


def test_a_dry_run_still_needs_credentials(guarded):
    door, tokens = guarded
    answer = door.client.post("/v1/events/stock.adjust?dry_run=true", json=example("stock.adjust"))
    assert answer.status_code == 401
    allowed = door.client.post("/v1/events/stock.adjust?dry_run=true", json=example("stock.adjust"),
                               headers={"Authorization": f"Bearer {tokens['stock-only']}"})
    assert allowed.status_code == 200
    refused = door.client.post("/v1/events/receipt.create?dry_run=true", json=example("receipt.create"),
                               headers={"Authorization": f"Bearer {tokens['stock-only']}"})
    assert refused.status_code == 403


def test_every_request_is_one_line_with_its_request_id(door, caplog):
    with caplog.at_level(logging.INFO, logger="wms_relay.ingest"):
        mine = door.post("stock.adjust", example("stock.adjust"), headers={"X-Request-ID": "wms-7f3a:1"})
        insane = door.post("stock.adjust", example("stock.adjust"), headers={"X-Request-ID": "a b\u00e9"})
        form = door.post("stock.adjust", "a=b", content_type="application/x-www-form-urlencoded")
        door.client.get("/v1/events/stock.adjust/nw-stock-count-123-20240514-0600")
    assert mine.headers["X-Request-ID"] == "wms-7f3a:1"
    made = insane.headers["X-Request-ID"]
    assert len(made) == 32 and made != form.headers["X-Request-ID"]
    lines = [record.fields for record in caplog.records if record.getMessage() == "request"]
    assert [(line["method"], line["status"], line["request_id"]) for line in lines] == [
        ("POST", 202, "wms-7f3a:1"), ("POST", 202, made), ("POST", 415, form.headers["X-Request-ID"]),
        ("GET", 200, lines[3]["request_id"])]
    first = lines[0]
    assert (first["path"], first["client"], first["count"], first["first_key"], first["operation"]) == (
        "/v1/events/stock.adjust", "anonymous", 1, "nw-stock-count-123-20240514-0600", "stock.adjust")
    assert first["n_queued"] == 1 and first["dry_run"] is False and isinstance(first["latency_ms"], float)
    assert "count" not in lines[2]  # a 415 has no events to count
