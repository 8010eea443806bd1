"""The ingest door answers each status its contract names: 202 admitted (and queued), 422 invalid (kept as a
dead letter with the same field messages), 409 a key reused for another payload, 207 mixed, 413 too large,
415/400 unreadable, 404 unknown operation or event, 503 + Retry-After when the store does not answer —
with a batch answered per event and nothing half-admitted — and GET shows an event less its payload."""
from __future__ import annotations

import json

from tests.worker.web.conftest import EXAMPLES, example


def test_one_valid_event_is_admitted_and_queued(door):
    answer = door.post("stock.adjust", example("stock.adjust"))
    assert answer.status_code == 202
    assert answer.get_json() == {"operation": "stock.adjust", "events": [
        {"index": 0, "key": "nw-stock-count-123-20240514-0600", "state": "accepted", "status": 202,
         "note": "queued"}]}
    assert [m["task"] for m in door.queued] == ["trademax.stock.adjust"]
    assert door.relay.ledger.get("stock.adjust", "nw-stock-count-123-20240514-0600").state == "accepted"


def test_an_invalid_event_gets_422_with_the_dead_letters_field_messages(door):
    body = json.loads((EXAMPLES / "invalid-receipt.json").read_text())
    answer = door.post("receipt.create", body)
    assert answer.status_code == 422
    event = answer.get_json()["events"][0]
    assert (event["state"], event["status"], event["key"]) == ("dead", 422, "(no key)")
    [letter] = door.relay.dead_letters.list()
    assert letter.reason == "invalid" and letter.event == body  # a WMS ignoring answers loses nothing
    assert event["errors"] == letter.messages
    assert event["errors"]["products.1.colour"] == ["Unknown field."]
    assert door.queued == []


def test_a_key_reused_for_another_payload_gets_409_and_is_not_queued(door):
    assert door.post("stock.adjust", example("stock.adjust")).status_code == 202
    answer = door.post("stock.adjust", example("stock.adjust", quantity=78))
    assert answer.status_code == 409
    assert answer.get_json()["events"][0]["state"] == "dead"
    assert len(door.queued) == 1
    assert [letter.reason for letter in door.relay.dead_letters.list()] == ["conflict"]


def test_the_same_event_again_is_202_and_recognised(door):
    door.post("stock.adjust", example("stock.adjust"))
    answer = door.post("stock.adjust", example("stock.adjust"))
    assert answer.status_code == 202
    assert answer.get_json()["events"][0]["note"].startswith("already accepted")


def test_a_batch_is_answered_per_event_and_mixed_answers_are_207(door):
    events = [example("stock.adjust", event_id="a"), {"occurred_at": "yesterday"},
              example("stock.adjust", event_id="b")]
    answer = door.post("stock.adjust", events)
    assert answer.status_code == 207
    assert [(e["index"], e["status"]) for e in answer.get_json()["events"]] == [(0, 202), (1, 422), (2, 202)]
    assert [m["event"]["event_id"] for m in door.queued] == ["a", "b"]


def test_json_lines_are_one_event_per_line(door):
    lines = "\n".join(json.dumps(example("stock.adjust", event_id=f"l{n}")) for n in range(3))
    answer = door.post("stock.adjust", lines, content_type="application/x-ndjson")
    assert answer.status_code == 202
    assert [e["key"] for e in answer.get_json()["events"]] == ["l0", "l1", "l2"]


def test_a_store_failure_in_the_middle_of_a_batch_is_503_and_says_which_were_admitted(door):
    from worker.delivery.admission import CHUNK

    assert door.post("stock.adjust", example("stock.adjust", event_id="warm-up")).status_code == 202
    door.store.fail_after_pipelines = 1  # the store goes away once the first chunk is admitted
    events = [example("stock.adjust", event_id=f"e{n}") for n in range(2 * CHUNK + 50)]
    answer = door.post("stock.adjust", events)
    door.server.connected, door.store.fail_after_pipelines = True, None
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    body = answer.get_json()
    assert [(e["status"], e["state"]) for e in body["events"]] == (
        [(202, "accepted")] * CHUNK + [(503, None)] * (CHUNK + 50))
    assert {e["note"][:14] for e in body["events"][CHUNK:2 * CHUNK]} == {"not admitted: "}
    assert {e["note"][:10] for e in body["events"][2 * CHUNK:]} == {"not tried:"}
    assert [door.relay.ledger.get("stock.adjust", e["event_id"]) is not None for e in events] == (
        [True] * CHUNK + [False] * (CHUNK + 50))
    assert [m["event"]["event_id"] for m in door.queued] == ["warm-up"] + [f"e{n}" for n in range(CHUNK)]
    # The whole batch again: the first chunk is recognised, the rest admitted.
    again = door.post("stock.adjust", events)
    assert again.status_code == 202
    notes = [e["note"] for e in again.get_json()["events"]]
    assert notes[CHUNK - 1].startswith("already accepted; queued again") and set(notes[CHUNK:]) == {"queued"}


def test_an_unreachable_store_is_503_with_retry_after(door):
    door.server.connected = False
    answer = door.post("stock.adjust", example("stock.adjust"))
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    health = door.client.get("/healthz")
    assert health.status_code == 503 and health.get_json()["store"] == "unreachable"
    assert door.client.get("/v1/events/stock.adjust/x").status_code == 503


def test_a_body_over_the_cap_is_413(tmp_path):
    from tests.worker.web.conftest import Door

    small = Door(tmp_path, ingest_max_body_bytes=2048)
    events = [example("stock.adjust", event_id=f"big-{n}") for n in range(20)]
    answer = small.post("stock.adjust", events)
    assert answer.status_code == 413
    assert answer.get_json()["error"] == "too_large"
    assert "INGEST_MAX_BODY_BYTES" in answer.get_json()["message"]
    assert small.queued == [] and small.relay.ledger.count_by_state().get("accepted", 0) == 0


def test_more_events_than_ingest_max_events_is_413_naming_the_limit(tmp_path, door):
    """A 20 kB body of 10,000 `[0,0,...]` items made 10,000 dead letters (issue 23.7): a request holds at
    most INGEST_MAX_EVENTS events (default 1,000); beyond, 413 says the limit and nothing is kept."""
    from tests.worker.web.conftest import Door

    assert door.settings.ingest_max_events == 1000
    answer = door.post("stock.adjust", "[" + ",".join(["0"] * 10_000) + "]")
    assert answer.status_code == 413, answer.get_data()[:200]
    assert answer.get_json()["error"] == "too_many_events" and answer.get_json()["max_events"] == 1000
    assert "10000 events; at most 1000 per request (INGEST_MAX_EVENTS)" in answer.get_json()["message"]
    assert door.relay.dead_letters.count() == 0 and door.queued == []
    small = Door(tmp_path, ingest_max_events=3)
    lines = "\n".join(json.dumps(example("stock.adjust", event_id=f"n-{n}")) for n in range(4))
    assert small.post("stock.adjust", lines, content_type="application/x-ndjson").status_code == 413
    three = [example("stock.adjust", event_id=f"n-{n}") for n in range(3)]
    assert small.post("stock.adjust", three).status_code == 202 and len(small.queued) == 3


def test_the_default_cap_is_five_mebibytes(door):
    assert door.app.config["MAX_CONTENT_LENGTH"] == 5 * 1024 * 1024


def test_unreadable_bodies_are_refused_naming_the_problem(door):
    assert door.post("stock.adjust", "{not json").get_json()["error"] == "not_json"
    assert door.post("stock.adjust", b"\xff\xfe{}").get_json()["error"] == "not_utf8"
    assert door.post("stock.adjust", "[]").get_json()["error"] == "no_events"
    twice = door.post("stock.adjust", '{"event_id": "e", "quantity": 1, "quantity": 2}')
    assert twice.status_code == 400 and "duplicate key 'quantity'" in twice.get_json()["message"]
    form = door.post("stock.adjust", "a=1", content_type="application/x-www-form-urlencoded")
    assert form.status_code == 415 and "application/json" in form.get_json()["message"]
    assert door.queued == []


def test_json_nested_deeper_than_the_parser_takes_is_400_not_500(door):
    """Nesting past json.loads' own limit was a RecursionError answered 500 "send again" (issue 23.8): it is
    400 now, in an array, an object, a field of an event and JSON lines alike; nothing is kept."""
    for depth in (990, 5_000, 100_000):
        bodies = ["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth,
                  '{"event_id": "deep", "a": ' + "[" * depth + "]" * depth + "}",
                  json.dumps(example("stock.adjust")) + "\n" + "[" * depth + "]" * depth]
        for body in bodies:
            answer = door.post("stock.adjust", body)
            assert answer.status_code == 400, (depth, body[:40], answer.get_data()[:200])
            assert "nested more deeply than the JSON parser reads" in answer.get_json()["message"]
    assert door.queued == [] and door.relay.dead_letters.count() == 0
    # An event nested deeply but within what the parser reads is judged by its schema (422, a dead letter).
    judged = door.post("stock.adjust", {**example("stock.adjust"), "a": json.loads("[" * 500 + "]" * 500)})
    assert judged.status_code == 422, judged.get_data()[:200]
    # (the schema's own rule: "Nested too deeply (more than 16 levels)")
    assert "Nested too deeply" in json.dumps(judged.get_json()["events"][0]["errors"])


def test_an_unknown_operation_is_404_listing_the_operations(door):
    answer = door.post("stock.adjst", example("stock.adjust"))
    assert answer.status_code == 404
    assert "stock.adjust" in answer.get_json()["operations"]


def test_get_shows_the_event_less_its_payload(door):
    door.post("stock.adjust", example("stock.adjust"))
    answer = door.client.get("/v1/events/stock.adjust/nw-stock-count-123-20240514-0600")
    assert answer.status_code == 200
    view = answer.get_json()
    assert (view["operation"], view["state"], view["attempts"]) == ("stock.adjust", "accepted", 0)
    assert [h["to"] for h in view["history"]] == ["accepted"]
    assert "event" not in view and "artno" not in json.dumps(view)
    assert door.client.get("/v1/events/stock.adjust/nope").status_code == 404


def test_get_of_an_invalid_event_shows_its_dead_letter_without_the_event(door):
    door.post("stock.adjust", example("stock.adjust", event_id="bad-1", quantity=-1))
    view = door.client.get("/v1/events/stock.adjust/bad-1").get_json()
    assert (view["state"], view["in_ledger"]) == ("dead", False)
    assert view["dead_letter"]["reason"] == "invalid" and "event" not in view["dead_letter"]


def test_healthz_answers_without_credentials(guarded):
    door, _ = guarded
    answer = door.client.get("/healthz")
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ok", "store": "ok", "refused_credentials": {}}
