"""A store written by the code before the new layout is read and carried on by today's code, and today's
code writes the very same keys and values for the same story (no Redis key changed) — apart from two
additions made since, each checked here to be exactly that: the request-reply keys (``wms:request:<id>``,
ten minutes each) of the store-call rule (``worker.store.requests``), and what the support desk (issue
12) added: the dead letters' search indexes (``worker.store.dead_letter_search``) and ``destination``
field, each attempt's latency (``"l"``), and failures per minute (``"f<minute>"``) beside deliveries;
and issue 21's index of the settled records not compacted yet (``wms:ledger:to_compact:<operation>``,
``worker.store.settled_records``) and its dead letters in two keys (a hash of the short fields, a body of
the long ones: ``worker.store.dead_letter_scripts``).  The old letters are indexed for the desk's search on
first use, the old settled records found by one walk of the keys and compacted like today's.  The keys of
flow control (``<ns>:flow:...``, worker.flow) are new too, and left out of the comparison.

``old_store/appendonlydir`` is a real valkey AOF written by commit 08757d5 (see old_store/README.md); a
real valkey-server loads a copy of it here."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.fixtures.redis_server import RedisServer
from tests.worker.store.store_scenario import Clock, ScriptedTrademax, dump, example, relay_for, write_story
from worker.delivery.pipeline import deliver
from worker.encoding import event_ref
from worker.store.dead_letter_search import LetterQuery, search
from worker.store.records import read_attempt
from worker.support.actions import DONE, SupportTools, resolve_uncertain, retry_letter

OLD_STORE = Path(__file__).with_name("old_store") / "appendonlydir"


@pytest.fixture
def old_store(tmp_path):
    shutil.copytree(OLD_STORE, tmp_path / "appendonlydir")
    server = RedisServer(tmp_path).start()
    try:
        yield server.client(decode_responses=True)
    finally:
        server.kill()


# The dead letters' search indexes (issue 12; since issue 21 they hold ids only): keys the old code never
# wrote.
DESK_INDEX_KEYS = {"wms:dead:terms", "wms:dead:values:operation",
                   "wms:dead:values:reason", "wms:dead:values:destination",
                   "wms:dead:open:operation:receipt.create", "wms:dead:open:destination:trademax",
                   "wms:dead:open:reason:permanent", "wms:dead:open:reason:invalid",
                   "wms:dead:open:reason:conflict"}


def _without_latency(history: str) -> str:
    """A record's history without its attempts' latency (the scripted replies took 0.0 s)."""
    attempts = [entry for entry in json.loads(history) if isinstance(entry, dict)]
    assert all(entry["l"] == 0.0 for entry in attempts if "st" in entry and entry["st"] == 200)
    return re.sub(r',"l":[0-9.]+\}', "}", history)


def without_the_settled_index(written: dict[str, list]) -> dict[str, list]:
    """The dump without the index of settled records (issue 21: one list of keys per operation), checked to
    list exactly the records in a final state, each in its operation's list, in the order they settled."""
    final = ("delivered", "superseded", "discarded")
    settled = sorted((json.loads(value["h"])[-1][0], key.split(":", 2)[2])
                     for key, (_, value, _) in written.items()
                     if key.startswith("wms:event:") and value["s"] in final)
    listed = []
    for name in [key for key in written if key.startswith("wms:ledger:to_compact:")]:
        kind, keys, expires = written.pop(name)
        assert (kind, expires) == ("list", False)
        operation = name[len("wms:ledger:to_compact:"):]
        listed += [f"{operation}:{key}" for key in keys]
        by_time = [member for _, member in settled if member.startswith(operation + ":")]
        assert [f"{operation}:{key}" for key in keys] == by_time
    assert sorted(listed) == sorted(member for _, member in settled) and len(listed) >= 3
    return written


def with_letters_in_one_hash(written: dict[str, list]) -> dict[str, list]:
    """The dump with each letter's body (issue 21) put back into its hash as the old code kept it: its id,
    the event, messages, attempts (long names) and fingerprints as JSON texts (fingerprints "" when none),
    the detail as text."""
    for key in [k for k in written if k.startswith("wms:dead:body:")]:
        kind, body, expires = written.pop(key)
        assert (kind, expires) == ("string", False)
        body = json.loads(body)
        hash_kind, letter, _ = written["wms:dead:letter:" + key[len("wms:dead:body:"):]]
        assert hash_kind == "hash" and not {"id", "event", "messages", "attempts", "detail"} & set(letter)
        body["attempts"] = [read_attempt(entry) for entry in body["attempts"]]  # the ledger's short names
        letter.update({name: json.dumps(body.pop(name), separators=(",", ":"), ensure_ascii=False)
                       for name in ("event", "messages", "attempts")})
        letter["id"] = key[len("wms:dead:body:"):]
        fingerprints = body.pop("fingerprints", None)
        letter["fingerprints"] = json.dumps(fingerprints, separators=(",", ":")) if fingerprints else ""
        letter["detail"] = body.pop("detail", "")
        assert body == {}
    return written


def as_before_the_desk(written: dict[str, list]) -> dict[str, list]:
    """The dump without the desk's additions, each checked to be what the desk writes."""
    assert DESK_INDEX_KEYS <= set(written)
    kept = {}
    for key, (kind, value, expires) in written.items():
        if key in DESK_INDEX_KEYS:
            continue
        if key.startswith("wms:dead:letter:"):
            assert value.pop("destination") == "trademax"
        elif key.startswith("wms:event:"):
            value["h"] = _without_latency(value["h"])
        elif key == "wms:ledger:delivered:per_minute":
            failures = {minute: n for minute, n in value.items() if minute.startswith("f")}
            assert sum(int(n) for n in failures.values()) == 3  # R-2 dead, R-3 retrying, adj-2 uncertain
            value = {minute: n for minute, n in value.items() if minute not in failures}
        kept[key] = [kind, value, expires]
    return kept


def test_the_fixture_is_a_store(old_store):
    assert old_store.dbsize() > 20


def test_todays_code_writes_the_same_keys_and_values(old_store, shared_redis_server):
    fresh = shared_redis_server.client(decode_responses=True)
    fresh.flushdb()
    states = write_story(relay_for(fresh, Clock()))
    assert states["receipt delivered"] == "delivered"
    assert states["relative adjustment uncertain"] == "uncertain"
    written = {key: value for key, value in dump(fresh).items() if ":flow:" not in key}
    replies = [key for key in written if key.startswith("wms:request:")]
    assert all(written[key][2] for key in replies)  # they expire
    today = without_the_settled_index({k: v for k, v in written.items() if k not in replies})
    assert as_before_the_desk(with_letters_in_one_hash(today)) == dump(old_store)


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
    # The desk's search indexes the old letters on first use and finds them by identifier and by facet.
    assert [letter.key for letter in search(relay.dead_letters, LetterQuery(text="IO12345")).letters] == \
        ["R-2"]
    assert relay.dead_letters.facet_counts("reason") == {"conflict": 1, "invalid": 1, "permanent": 1}


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
    tools = SupportTools(ledger=relay.ledger, dead_letters=relay.dead_letters, schedule=relay.schedule,
                         publish=published.append, dispatch_waiters=relay.dispatch_waiters, clock=relay.clock)
    letter = relay.dead_letters.latest_for("receipt.create", "R-2")
    assert retry_letter(tools, letter.letter_id, actor="ann").status == DONE
    assert resolve_uncertain(tools, "stock.adjust", "adj-2", delivered=True, actor="ann",
                             reason="seen in Trademax").status == DONE
    assert [message["task"] for message in published] == ["trademax.receipt.create"]


def test_with_every_destination_on_the_old_events_are_trademax_deliveries(old_store):
    """The store written before there were several destinations, read by a relay with ka-ching, StockTrim
    and Stock2Shop on: its records are Trademax's deliveries, its dead letter names Trademax and retries
    there only, its scheduled retry runs — and a new count beside them fans out to every destination."""
    from worker.destinations.table import split_delivery_ref
    from worker.settings import Locations

    relay = relay_for(old_store, Clock())
    relay.settings = relay.settings.replace(
        kaching_base_url="http://k/", kaching_locations=Locations.parse("L", "nw=shop-1"),
        stocktrim_base_url="http://st/", stocktrim_locations=Locations.parse("L", "nw=NW"),
        stock2shop_base_url="http://s/", stock2shop_locations=Locations.parse("L", "nw=Main"))
    assert relay.ledger_of("trademax").get("receipt.create", "R-1").state == "delivered"
    assert relay.ledger_of("kaching").get("stock.adjust", "adj-2") is None
    letter = relay.dead_letters.latest_for("receipt.create", "R-2")
    assert (letter.destination, letter.ref) == ("trademax", "receipt.create:R-2")
    (entry,) = [e for e in relay.schedule.list() if e.ref == "receipt.create:R-3"]
    destination, operation, key = split_delivery_ref(entry.ref)
    assert (destination.name, entry.message["task"]) == ("trademax", "trademax.receipt.create")
    relay.client = ScriptedTrademax()
    assert deliver(relay, operation, entry.message["event"], owner="w3", destination=destination.name) == \
        "delivered"
    published = []
    tools = SupportTools(ledger=relay.ledger, dead_letters=relay.dead_letters, schedule=relay.schedule,
                         publish=published.append, dispatch_waiters=relay.dispatch_waiters, clock=relay.clock)
    assert retry_letter(tools, "receipt.create:R-2", actor="ann").status == DONE
    assert [message["task"] for message in published] == ["trademax.receipt.create"]
    relay.publish = published.append
    relay.client = ScriptedTrademax()
    count = example("stock.adjust", event_id="new-1")
    assert deliver(relay, "stock.adjust", count, owner="w3") == "delivered"
    assert published[1:] == []  # the bulk destinations take their counts in batches (worker.flow.batches)
    assert [relay.flow.batches(name).pending_count() for name in ("kaching", "stocktrim", "stock2shop")] == \
        [1, 1, 0]
    # Stock2Shop's catalog is required and this store has none: its delivery waits for the artno's row.
    waiting = relay.ledger_of("stock2shop").get("stock.adjust", "new-1")
    assert waiting.state == "waiting" and "unmapped" in waiting.history[-1]["reason"]


def test_the_old_settled_records_are_found_and_compacted(old_store):
    """Written before the settled index existed: the scheduler's compaction walks the keys once, finds the
    old delivered records and compacts them; they are still recognised and the create's dispatch id still
    found, and `wms-relay event`'s view says their details are gone."""
    from worker.scheduling.compaction import Compaction
    from worker.support.event_view import describe

    clock = Clock()
    relay = relay_for(old_store, clock)
    clock.now += 25 * 3600
    compacted = Compaction(old_store, detail_hours=24, clock=clock)()
    assert compacted == relay.ledger.final_totals()["delivered"] == 3
    receipt = relay.ledger.get("receipt.create", "R-1")
    assert (receipt.state, receipt.compacted, receipt.attempts) == ("delivered", True, 1)
    assert relay.dispatch_waiters.dispatch_id_for("TX-1") == 4711
    assert not relay.ledger.get("stock.adjust", "adj-2").compacted  # uncertain: never compacted
    assert relay.ledger.count_by_state() == {"accepted": 0, "sending": 0, "retrying": 1, "waiting": 1,
                                             "uncertain": 1, "dead": 1}
    assert describe(relay, "receipt.create", "R-1")["details"].startswith("details kept 24 h")
    relay.client = ScriptedTrademax()
    assert deliver(relay, "receipt.create", example("receipt.create", transaction_id="R-1"), owner="w2") == \
        "delivered"
    assert relay.client.calls == []
    update = example("dispatch.update", transaction_id="TX-1")
    assert deliver(relay, "dispatch.update", update, owner="w2") == "delivered"
    assert relay.client.calls == ["update_dispatch"]
