"""tasks.raw_messages.screen, the door before kombu and Celery: a good message passes rebuilt on our terms
(our queue in delivery_info, no eta/expires/links, a fresh delivery tag); each malformed shape is turned
away with one sentence naming the problem; secrets in the evidence are kept only where the store blanks
them (decoded JSON), never hidden in base64; nothing raises."""
from __future__ import annotations

import base64
import json
import time

import pytest

from benchmarks.poison import POISON, celery_message
from tasks.raw_messages import KEPT_CHARS, Malformed, Passed, screen

NOW = time.time()
EVENT = {"transaction_id": "T-1"}


def body_of(envelope: dict) -> list:
    return json.loads(base64.b64decode(envelope["body"]))


def test_a_good_message_passes_rebuilt_on_our_terms():
    raw = celery_message("trademax.receipt.create", EVENT, "trademax.stock",
                         eta="2000-01-01T00:00:00Z", expires="2999-01-01T00:00:00Z", shadow="evil",
                         timelimit=[0.1, 0.1])
    raw_dict = json.loads(raw)
    raw_dict["properties"]["delivery_info"]["routing_key"] = "nowhere"
    verdict = screen(json.dumps(raw_dict).encode(), "trademax.receipt", now=NOW)
    assert isinstance(verdict, Passed)
    headers, properties = verdict.envelope["headers"], verdict.envelope["properties"]
    assert headers["task"] == "trademax.receipt.create" and headers["id"] == raw_dict["headers"]["id"]
    assert (headers["eta"], headers["expires"], headers["shadow"]) == (None, None, None)
    assert headers["timelimit"] == [None, None]
    assert properties["delivery_info"] == {"exchange": "", "routing_key": "trademax.receipt"}
    assert properties["delivery_tag"] != raw_dict["properties"]["delivery_tag"]
    assert body_of(verdict.envelope)[0] == [EVENT]


def test_links_in_the_embed_are_dropped():
    raw = json.loads(celery_message("trademax.receipt.create", EVENT, "trademax.receipt"))
    links = {"callbacks": [{"task": "x"}]}
    raw["body"] = base64.b64encode(json.dumps([[EVENT], {}, links]).encode()).decode()
    verdict = screen(json.dumps(raw).encode(), "trademax.receipt", now=NOW)
    assert body_of(verdict.envelope)[2] == {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


@pytest.mark.parametrize("shape", sorted(POISON))
def test_each_malformed_shape_is_turned_away_naming_the_problem(shape):
    verdict = screen(POISON[shape]("trademax.receipt", NOW), "trademax.receipt", now=NOW)
    assert isinstance(verdict, Malformed), shape
    assert verdict.problem and "\n" not in verdict.problem
    assert verdict.evidence["queue"] == "trademax.receipt" and verdict.key.startswith("(raw message ")


def test_duplicate_keys_are_named():
    verdict = screen(POISON["duplicate_keys"]("trademax.receipt", NOW), "trademax.receipt", now=NOW)
    assert "duplicate key 'transaction_id'" in verdict.problem


def test_evidence_decodes_the_body_and_is_capped():
    secret_body = base64.b64encode(json.dumps([[{"api_key": "k"}], {}, None, 4]).encode()).decode()
    raw = json.loads(celery_message("trademax.receipt.create", EVENT, "trademax.receipt"))
    raw["body"] = secret_body
    verdict = screen(json.dumps(raw).encode(), "trademax.receipt", now=NOW)
    assert secret_body not in json.dumps(verdict.evidence)
    assert verdict.evidence["body_decoded"][0] == [{"api_key": "k"}]  # the store blanks the key's value
    huge = screen(b"x" * (10 * KEPT_CHARS), "trademax.receipt", now=NOW)
    assert len(huge.evidence["raw_text"]) < KEPT_CHARS + 100
    assert huge.evidence["size_bytes"] == 10 * KEPT_CHARS


def test_an_event_holding_a_lone_surrogate_passes_for_its_schema_to_judge():
    """JSON can carry "\\ud800"; UTF-8 cannot: the rebuilt body keeps it as its escape (the fuzz run
    found such events dead-lettered as malformed instead of invalid)."""
    raw = celery_message("trademax.receipt.create", {"transaction_id": "\ud800"}, "trademax.receipt")
    verdict = screen(raw, "trademax.receipt", now=NOW)
    assert isinstance(verdict, Passed)
    assert body_of(verdict.envelope)[0] == [{"transaction_id": "\ud800"}]


def test_every_destinations_queue_and_task_are_known():
    """The fan-out publishes ``<destination>.stock.adjust`` on ``<destination>.stock``: it passes; a
    malformed message there is that destination's (its dead letter is listed under it)."""
    from worker.destinations.table import QUEUES

    assert {"kaching.stock", "stocktrim.stock", "stock2shop.stock"} <= set(QUEUES)
    for destination in ("kaching", "stocktrim", "stock2shop"):
        queue = f"{destination}.stock"
        raw = celery_message(f"{destination}.stock.adjust", {"event_id": "E-1"}, queue)
        passed = screen(raw, queue, now=NOW)
        assert isinstance(passed, Passed)
        assert passed.envelope["headers"]["task"] == f"{destination}.stock.adjust"
        malformed = screen(POISON["eta_in_2099"](queue, NOW), queue, now=NOW)
        assert isinstance(malformed, Malformed)
        assert (malformed.destination, malformed.operation) == (destination, "stock.adjust")
    assert screen(b"[1]", "trademax.stock", now=NOW).destination == "trademax"


def test_a_task_on_a_queue_not_its_own_is_malformed_naming_both():
    """A ka-ching task pushed onto a Trademax queue would run there, outside the fan-out and ka-ching's
    flow control: the screen turns it away (issue 23.8), and a Trademax task on ka-ching's queue too."""
    raw = celery_message("kaching.stock.adjust", {"event_id": "E-1"}, "trademax.stock")
    verdict = screen(raw, "trademax.stock", now=NOW)
    assert isinstance(verdict, Malformed)
    assert verdict.problem.startswith("task kaching.stock.adjust on queue trademax.stock: it runs on "
                                      "kaching.stock only"), verdict.problem
    assert (verdict.destination, verdict.operation) == ("trademax", "stock.adjust")
    other = screen(celery_message("trademax.receipt.create", EVENT, "kaching.stock"), "kaching.stock",
                   now=NOW)
    assert isinstance(other, Malformed)
    assert "task trademax.receipt.create on queue kaching.stock" in other.problem
    assert other.destination == "kaching"
    from worker.destinations.table import TASKS

    for task, row in TASKS.items():  # every task still passes on its own queue
        assert isinstance(screen(celery_message(task, EVENT, row.queue), row.queue, now=NOW), Passed), task


@pytest.mark.parametrize("body_text", [
    '[[{"transaction_id": "T-1", "x": {"__type__": "nope", "__value__": 1}}], {}, null]',
    # the same object, its key spelled with a JSON escape: the door still asks kombu
    '[[{"transaction_id": "T-1", "x": {"__type__": "nope", "\\u005f_value__": 1}}], {}, null]',
    '[[{"transaction_id": "T-1", "x": {"__type__": "datetime", "__value__": "not a time"}}], {}, null]',
])
def test_a_typed_value_kombu_cannot_decode_is_turned_away(body_text):
    """kombu decodes ``{"__type__": ..., "__value__": ...}`` objects itself (and raises for an unknown
    type or a bad value): such a body would fail in the worker, so the door refuses it — whichever way
    the key is spelled (the door skips kombu's decoding only for text that cannot hold one)."""
    raw = json.loads(celery_message("trademax.receipt.create", EVENT, "trademax.receipt"))
    raw["body"] = base64.b64encode(body_text.encode()).decode()
    verdict = screen(json.dumps(raw).encode(), "trademax.receipt", now=NOW)
    assert isinstance(verdict, Malformed) and verdict.problem.startswith("body is not JSON")


def test_a_key_named_like_kombus_alone_passes():
    event = {"transaction_id": "T-1", "note": {"__type__": "x"}, "other": "__value__ in text"}
    verdict = screen(celery_message("trademax.receipt.create", event, "trademax.receipt"), "trademax.receipt",
                     now=NOW)
    assert isinstance(verdict, Passed) and body_of(verdict.envelope)[0] == [event]


def test_a_key_given_twice_deep_inside_the_body_is_named():
    raw = json.loads(celery_message("trademax.receipt.create", EVENT, "trademax.receipt"))
    body = b'[[{"transaction_id": "T-1", "products": [{"a": 1, "b": 2, "a": 3}]}], {}, null]'
    raw["body"] = base64.b64encode(body).decode()
    verdict = screen(json.dumps(raw).encode(), "trademax.receipt", now=NOW)
    assert isinstance(verdict, Malformed) and "duplicate key 'a'" in verdict.problem


def test_a_body_already_on_our_terms_is_handed_on_as_it_came():
    """No links, chain or chord (what our publishers and Celery's apply_async write): the base64 body is
    not rebuilt (issue 21); kombu reads the same values from it."""
    raw = json.loads(celery_message("trademax.receipt.create", EVENT, "trademax.receipt"))
    compact = json.dumps([[EVENT], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}],
                         separators=(",", ":"))  # not as json.dumps would rebuild it
    raw["body"] = base64.b64encode(compact.encode()).decode()
    verdict = screen(json.dumps(raw).encode(), "trademax.receipt", now=NOW)
    assert isinstance(verdict, Passed)
    assert verdict.envelope["body"] == raw["body"]
    assert body_of(verdict.envelope) == [[EVENT], {}, {"callbacks": None, "errbacks": None, "chain": None,
                                                       "chord": None}]
