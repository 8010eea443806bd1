"""One WMS event, one delivery per destination (the real pipeline over fakeredis, scripted clients):

- an absolute count reaches Trademax and every destination that is on and lists its warehouse; a relative
  adjustment reaches Trademax and ka-ching only; a receipt reaches Trademax only; an unlisted warehouse
  is not sent to that destination;
- each delivery has its own ledger record, attempts and state: ka-ching failing leaves Trademax delivered
  and sends it once, ka-ching's retry runs on its own and never re-sends to Trademax;
- the uncertain rule holds per destination: a ka-ching adjustment whose answer was lost is ``uncertain``
  while its Trademax delivery is delivered, and a lost ka-ching count is simply resent;
- superseded ordering per destination: an older count arriving after a newer one is superseded at each
  destination that already has the newer one;
- fanning out twice (a redelivered message) queues nothing twice once a delivery has moved on.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.events import validate_event
from tests.fixtures.every_destination import NAMES, count, every_destination_relay, run_published, states
from worker.delivery.fan_out import fan_out
from worker.delivery.pipeline import deliver
from worker.errors import OutcomeUnknownError, TransientError

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.fixture
def relay():
    return every_destination_relay()


def test_an_absolute_count_reaches_every_destination_listing_its_warehouse(relay):
    assert deliver(relay, "stock.adjust", count(), owner="w1") == "delivered"
    assert [m["task"] for m in relay.published] == ["kaching.stock.adjust", "stocktrim.stock.adjust",
                                                    "stock2shop.stock.adjust"]
    assert set(run_published(relay).values()) == {"delivered"}
    assert states(relay, "c-1") == dict.fromkeys(NAMES, "delivered")
    assert relay.clients["kaching"].sent == [("import_stock", "A-1", 7, False)]
    # "se" is listed by StockTrim only.
    deliver(relay, "stock.adjust", count("c-2", warehouse="se"), owner="w1")
    assert [m["task"] for m in relay.published] == ["stocktrim.stock.adjust"]


def test_a_relative_adjustment_goes_to_trademax_and_kaching_only(relay):
    deliver(relay, "stock.adjust", count("r-1", -2, kind="relative"), owner="w1")
    run_published(relay)
    assert states(relay, "r-1") == {"trademax": "delivered", "kaching": "delivered", "stocktrim": None,
                                    "stock2shop": None}
    assert relay.clients["kaching"].sent == [("import_stock", "A-1", -2, True)]


def test_a_receipt_goes_to_trademax_only(relay):
    receipt = {**json.loads((EXAMPLES / "receipt.create.json").read_text()), "transaction_id": "R-1"}
    assert deliver(relay, "receipt.create", receipt, owner="w1") == "delivered"
    assert relay.published == []


def test_a_failing_destination_retries_on_its_own_and_never_resends_to_trademax(relay):
    relay.clients["kaching"].answers = [TransientError("down", destination="kaching", status=503)]
    deliver(relay, "stock.adjust", count(), owner="w1")
    assert run_published(relay)["kaching"] == "retrying"
    assert states(relay, "c-1")["trademax"] == "delivered" and states(relay, "c-1")["kaching"] == "retrying"
    (entry,) = relay.schedule.list()
    assert entry.ref == "kaching/stock.adjust:c-1" and entry.message["task"] == "kaching.stock.adjust"
    # The retry runs ka-ching's delivery only.
    destination, _, operation = entry.message["task"].partition(".")
    state = deliver(relay, operation, entry.message["event"], owner="w2", destination=destination)
    assert state == "delivered"
    assert len(relay.clients["trademax"].sent) == 1 and len(relay.clients["kaching"].sent) == 2
    record = relay.ledger_of("kaching").get("stock.adjust", "c-1")
    assert [a["outcome"] for a in record.attempts_log] == ["transient", "delivered"]


def test_a_lost_answer_is_uncertain_for_a_kaching_adjustment_and_resent_for_a_count(relay):
    lost = OutcomeUnknownError("read timeout", destination="kaching")
    relay.clients["kaching"].answers = [lost, lost]
    deliver(relay, "stock.adjust", count("r-1", -2, kind="relative"), owner="w1")
    deliver(relay, "stock.adjust", count("c-1"), owner="w1")
    assert run_published(relay)["kaching"] == "retrying"  # the last of the two: the count
    assert states(relay, "r-1")["kaching"] == "uncertain" and states(relay, "r-1")["trademax"] == "delivered"
    assert "ka-ching" in relay.ledger_of("kaching").get("stock.adjust", "r-1").history[-1]["reason"]
    letters = relay.dead_letters.list()
    assert letters == []


def test_an_older_count_is_superseded_per_destination(relay):
    deliver(relay, "stock.adjust", count("new", 5, at="2024-05-14T12:00:00Z"), owner="w1")
    run_published(relay)
    deliver(relay, "stock.adjust", count("old", 9, at="2024-05-14T08:00:00Z"), owner="w1")
    run_published(relay)
    assert states(relay, "old") == dict.fromkeys(NAMES, "superseded")
    assert all(9 not in call for name in NAMES for call in relay.clients[name].sent)


def test_fanning_out_again_queues_only_deliveries_still_waiting(relay):
    event = validate_event("stock.adjust", count())
    assert fan_out(relay, event) == ["kaching", "stocktrim", "stock2shop"]
    assert fan_out(relay, event) == ["kaching", "stocktrim", "stock2shop"]  # still accepted: a spare copy
    run_published(relay)
    assert fan_out(relay, event) == [] and relay.published == []


def test_a_dead_letter_names_its_destination_and_is_found_by_its_ref(relay):
    from worker.errors import PermanentError

    relay.clients["stock2shop"].answers = [PermanentError("no", destination="stock2shop", status=400)]
    deliver(relay, "stock.adjust", count(), owner="w1")
    run_published(relay)
    (letter,) = relay.dead_letters.list()
    assert (letter.destination, letter.ref) == ("stock2shop", "stock2shop/stock.adjust:c-1")
    assert relay.dead_letters.latest_for("stock.adjust", "c-1", "stock2shop").letter_id == letter.letter_id
    assert relay.dead_letters.latest_for("stock.adjust", "c-1") is None


def test_an_event_taken_in_at_the_door_fans_out_as_one_the_wms_published(relay):
    """``enqueue`` and the HTTP ingest (worker.delivery.admission) queue the WMS's own task; its run fans
    out, so the door routes exactly as a message the WMS published itself — and a door that could not
    admit the event (the store down: nothing recorded, nothing queued) has left nothing at any other
    destination."""
    from tests.fixtures.queues import queued_messages
    from worker.delivery.admission import take_in

    intake = take_in(relay, "stock.adjust", count("door-1"))
    queued = queued_messages(relay.redis)
    assert intake.verdict == "queued" and [m["task"] for m in queued] == ["trademax.stock.adjust"]
    assert all(relay.ledger_of(name).get("stock.adjust", "door-1") is None for name in NAMES[1:])
    (message,) = queued
    assert deliver(relay, "stock.adjust", message["event"], owner="w1") == "delivered"
    assert set(run_published(relay).values()) == {"delivered"}
    assert states(relay, "door-1") == dict.fromkeys(NAMES, "delivered")

    import fakeredis

    server = fakeredis.FakeServer()
    down = every_destination_relay(fakeredis.FakeRedis(server=server, decode_responses=True))
    server.connected = False
    failed = take_in(down, "stock.adjust", count("door-2"))
    server.connected = True
    assert failed.verdict == "store_down"
    assert all(down.ledger_of(name).get("stock.adjust", "door-2") is None for name in NAMES)
    assert queued_messages(down.redis) == []
