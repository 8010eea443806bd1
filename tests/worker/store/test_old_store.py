"""A store written by the code before the new layout is read and carried on by today's code, and today's
code writes the very same keys and values for the same story (no Redis key changed) — apart from the
request-reply keys (``wms:request:<id>``, ten minutes each) that the store-call rule added since
(``worker.store.requests``), which are left out of the comparison.

``old_store/appendonlydir`` is a real valkey AOF written by commit 08757d5 (see old_store/README.md); a
real valkey-server loads a copy of it here."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fixtures.redis_server import RedisServer
from tests.worker.store.store_scenario import Clock, ScriptedTrademax, dump, example, relay_for, write_story
from worker.delivery.pipeline import deliver
from worker.encoding import event_ref
from worker.support.actions import DONE, SupportDesk, resolve_uncertain, retry_letter

OLD_STORE = Path(__file__).with_name("old_store") / "appendonlydir"


@pytest.fixture
def old_store(tmp_path):
    shutil.copytree(OLD_STORE, tmp_path / "appendonlydir")
    server = RedisServer(tmp_path).start()
    try:
        yield server.client(decode_responses=True)
    finally:
        server.kill()


def test_the_fixture_is_a_store(old_store):
    assert old_store.dbsize() > 20


def test_todays_code_writes_the_same_keys_and_values(old_store, shared_redis_server):
    fresh = shared_redis_server.client(decode_responses=True)
    fresh.flushdb()
    states = write_story(relay_for(fresh, Clock()))
    assert states["receipt delivered"] == "delivered"
    assert states["relative adjustment uncertain"] == "uncertain"
    written = dump(fresh)
    replies = [key for key in written if key.startswith("wms:request:")]
    assert all(written[key][2] for key in replies)  # they expire
    assert {k: v for k, v in written.items() if k not in replies} == dump(old_store)


def test_todays_code_reads_the_old_records(old_store):
    relay = relay_for(old_store, Clock())
    receipt = relay.ledger.get("receipt.create", "R-1")
    assert (receipt.state, receipt.result["receipt_id"], receipt.attempts) == ("delivered", 7, 1)
    assert [entry["outcome"] for entry in receipt.attempts_log] == ["delivered"]
    create = relay.ledger.get("dispatch.create", "TX-1")
    assert create.result["dispatch_id"] == 4711 and create.result["package_labels"] == ["http://labels/1.pdf"]
    assert relay.dispatch_waiters.dispatch_id_for("TX-1") == 4711
    assert relay.ledger.count_by_state() == {"accepted": 0, "sending": 0, "retrying": 1, "waiting": 1,
                                             "uncertain": 1, "dead": 1}
    assert relay.ledger.final_totals()["delivered"] == 3
    assert relay.schedule.get(event_ref("receipt.create", "R-3")) is not None
    letters = {relay.dead_letters.latest_for("receipt.create", key).reason for key in ("R-1", "R-2", "R-4")}
    assert letters == {"conflict", "permanent", "invalid"}


def test_todays_code_carries_the_old_events_on(old_store):
    relay = relay_for(old_store, Clock())
    # A delivered event met again is recognised: not sent a second time.
    relay.client = ScriptedTrademax()
    assert deliver(relay, "receipt.create", example("receipt.create", transaction_id="R-1"), owner="w2") == \
        "delivered"
    assert relay.client.calls == []
    # The waiting update goes out now that its create is delivered; the retrying receipt too.
    relay.client = ScriptedTrademax()
    update = example("dispatch.update", transaction_id="TX-1")
    assert deliver(relay, "dispatch.update", update, owner="w2") == "delivered"
    assert relay.client.calls == ["update_dispatch"]
    # Support staff act on the old dead letter and the old uncertain event.
    published = []
    desk = SupportDesk(ledger=relay.ledger, dead_letters=relay.dead_letters, schedule=relay.schedule,
                       publish=published.append, dispatch_waiters=relay.dispatch_waiters, clock=relay.clock)
    letter = relay.dead_letters.latest_for("receipt.create", "R-2")
    assert retry_letter(desk, letter.letter_id, actor="ann").status == DONE
    assert resolve_uncertain(desk, "stock.adjust", "adj-2", delivered=True, actor="ann",
                             reason="seen in Trademax").status == DONE
    assert [message["task"] for message in published] == ["trademax.receipt.create"]
