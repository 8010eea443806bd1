"""The ledger: accept, claim, transition and reopen, on fakeredis (fast) and on a real valkey-server
(atomicity under concurrency, memory per record, survival across a restart)."""
from __future__ import annotations

import datetime as dt
import json
import math
import threading
from decimal import Decimal

import pytest

from tests.fixtures.clock import Clock
from worker.store.ledger import Ledger, LedgerEvent, fingerprint
from worker.store.records import AttemptEntry

DAY = 86400.0


def dispatch_event(key: str = "TX-1", **fields) -> dict:
    return {
        "operation": "dispatch.create",
        "key": key,
        "fields": {"order_no": "FO1", "transaction_id": key, "products": [{"artno": "123-45", "quantity": 2}],
                   **fields},
        "occurred_at": "2024-05-01T10:00:00+02:00",
        "event_id": key,
    }


@pytest.fixture
def client(store_client):
    return store_client


@pytest.fixture
def ledger(client, clock):
    return Ledger(client, lease_seconds=120, delivered_retention_seconds=30 * DAY, clock=clock)


def accept_and_claim(ledger, event=None, owner="worker-a"):
    event = event or dispatch_event()
    accepted = ledger.accept(event)
    return accepted, ledger.claim(event["operation"], event["key"], accepted.fingerprint, owner)


# -- fingerprints ----------------------------------------------------------------------------------------

def test_fingerprint_ignores_key_order_and_sees_every_value():
    a = {"order_no": "FO1", "lines": [{"artno": "1", "qty": 2}]}
    b = {"lines": [{"qty": 2, "artno": "1"}], "order_no": "FO1"}
    assert fingerprint(a) == fingerprint(b)
    assert len(fingerprint(a)) == 64
    assert fingerprint(a) != fingerprint({**a, "lines": [{"artno": "1", "qty": 3}]})


def test_fingerprint_of_loaded_values_is_stable():
    fields = {"at": dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone.utc), "weight": Decimal("2.10")}
    assert fingerprint(fields) == fingerprint(dict(fields))
    assert fingerprint(fields) != fingerprint({**fields, "weight": Decimal("2.1")})


# -- accept --------------------------------------------------------------------------------------------

def test_accept_creates_the_record(ledger):
    result = ledger.accept(dispatch_event())
    assert (result.status, result.state, result.attempts) == ("accepted", "accepted", 0)
    record = ledger.get("dispatch.create", "TX-1")
    assert record.state == "accepted" and record.attempts == 0
    assert record.fingerprint == result.fingerprint == fingerprint(dispatch_event()["fields"])
    assert record.event == dispatch_event()
    assert [(h["from"], h["to"]) for h in record.history] == [(None, "accepted")]
    assert ledger.count_by_state()["accepted"] == 1


def test_accept_takes_an_event_object(ledger):
    event = LedgerEvent(operation="stock.adjust", key="adj-1", fields={"artno": "1", "quantity": -2},
                        occurred_at="2024-05-01T10:00:00Z", event_id="ev-9")
    assert ledger.accept(event).status == "accepted"
    assert ledger.get("stock.adjust", "adj-1").event["event_id"] == "ev-9"


def test_the_same_event_again_is_known_with_its_state(ledger):
    _, claim = accept_and_claim(ledger)
    again = ledger.accept(dispatch_event())
    assert (again.status, again.state, again.attempts) == ("known", "sending", 1)
    assert again.fingerprint == again.existing_fingerprint


def test_a_different_event_under_the_same_key_is_a_conflict_and_changes_nothing(ledger):
    first = ledger.accept(dispatch_event())
    before = ledger.get("dispatch.create", "TX-1")
    second = ledger.accept(dispatch_event(order_no="FO2"))
    assert second.status == "conflict" and second.conflict
    assert second.existing_fingerprint == first.fingerprint != second.fingerprint
    assert ledger.get("dispatch.create", "TX-1") == before


def test_secrets_are_never_stored(ledger, client):
    with pytest.raises(ValueError, match="secret"):
        ledger.accept(dispatch_event(signature="abc123"))
    assert ledger.get("dispatch.create", "TX-1") is None
    assert client.keys("*") == []


def test_operation_names_are_checked(ledger):
    with pytest.raises(ValueError):
        ledger.accept({**dispatch_event(), "operation": "Dispatch:Create"})


# -- claim --------------------------------------------------------------------------------------------

def test_claim_takes_the_event_under_a_lease(ledger, clock):
    _, claim = accept_and_claim(ledger)
    assert claim.claimed and not claim.interrupted
    assert (claim.state, claim.previous_state) == ("sending", "accepted")
    assert (claim.attempt, claim.round_attempt) == (1, 1)
    assert claim.lease_expires_at == pytest.approx(clock.now + 120)
    record = ledger.get("dispatch.create", "TX-1")
    assert record.state == "sending" and record.attempts == 1
    assert record.lease_owner == "worker-a"
    assert record.history[-1]["reason"] == "claimed" and record.history[-1]["attempt"] == 1


def test_claim_of_an_unknown_event(ledger):
    assert ledger.claim("dispatch.create", "nope", "0" * 64, "w").status == "unknown"


def test_claim_with_another_fingerprint_is_a_conflict(ledger):
    accepted = ledger.accept(dispatch_event())
    claim = ledger.claim("dispatch.create", "TX-1", fingerprint({"other": 1}), "w")
    assert claim.status == "conflict" and claim.existing_fingerprint == accepted.fingerprint
    assert ledger.get("dispatch.create", "TX-1").state == "accepted"


def test_a_live_claim_makes_others_busy(ledger, clock):
    accepted, _ = accept_and_claim(ledger, owner="worker-a")
    clock.advance(119)
    busy = ledger.claim("dispatch.create", "TX-1", accepted.fingerprint, "worker-b")
    assert busy.status == "busy" and busy.previous_owner == "worker-a"
    assert ledger.get("dispatch.create", "TX-1").attempts == 1


def test_a_crashed_workers_claim_expires_with_its_lease(ledger, clock):
    accepted, _ = accept_and_claim(ledger, owner="worker-a")
    clock.advance(121)
    claim = ledger.claim("dispatch.create", "TX-1", accepted.fingerprint, "worker-b")
    assert claim.claimed and claim.interrupted  # the first attempt may have reached Trademax
    assert claim.previous_owner == "worker-a" and claim.attempt == 2
    # The crashed worker, back from the dead, cannot overwrite the new owner's work.
    assert not ledger.transition("dispatch.create", "TX-1", "delivered", reason="late", owner="worker-a")
    assert ledger.transition("dispatch.create", "TX-1", "delivered", reason="ok", owner="worker-b")


def test_delivered_is_done_with_its_result(ledger, client):
    accepted, _ = accept_and_claim(ledger)
    assert ledger.transition("dispatch.create", "TX-1", "delivered", reason="delivered", owner="worker-a",
                             result={"dispatch_id": 123, "labels_url_pdf": "http://x/l.pdf"}, attempt=1)
    claim = ledger.claim("dispatch.create", "TX-1", accepted.fingerprint, "worker-b")
    assert claim.status == "done" and claim.state == "delivered"
    assert claim.result == {"dispatch_id": 123, "labels_url_pdf": "http://x/l.pdf"}
    record = ledger.get("dispatch.create", "TX-1")
    assert record.lease_owner is None and record.attempts == 1


@pytest.mark.parametrize("parked", ["dead", "uncertain"])
def test_parked_events_are_not_sent(ledger, parked):
    accepted, _ = accept_and_claim(ledger)
    ledger.transition("dispatch.create", "TX-1", parked, reason="x", owner="worker-a")
    claim = ledger.claim("dispatch.create", "TX-1", accepted.fingerprint, "worker-b")
    assert (claim.status, claim.state) == ("parked", parked)


@pytest.mark.parametrize("state", ["retrying", "waiting"])
def test_retrying_and_waiting_events_can_be_claimed_again(ledger, state):
    accepted, _ = accept_and_claim(ledger)
    ledger.transition("dispatch.create", "TX-1", state, reason="later", owner="worker-a")
    claim = ledger.claim("dispatch.create", "TX-1", accepted.fingerprint, "worker-b")
    assert claim.claimed and claim.previous_state == state and claim.attempt == 2


# -- transitions -------------------------------------------------------------------------------------------

def test_transition_is_compare_and_set_on_states(ledger):
    ledger.accept(dispatch_event())
    assert not ledger.transition("dispatch.create", "TX-1", "waiting", reason="x",
                                 expected_states=["retrying"])
    assert ledger.transition("dispatch.create", "TX-1", "waiting", reason="x",
                             expected_states=["accepted", "retrying"])
    assert ledger.get("dispatch.create", "TX-1").state == "waiting"
    assert not ledger.transition("dispatch.create", "missing", "dead", reason="x")


def test_transition_refuses_nonsense(ledger):
    ledger.accept(dispatch_event())
    with pytest.raises(ValueError):
        ledger.transition("dispatch.create", "TX-1", "sending", reason="only claim() may")
    with pytest.raises(ValueError):
        ledger.transition("dispatch.create", "TX-1", "lost", reason="no such state")
    with pytest.raises(ValueError):
        ledger.transition("dispatch.create", "TX-1", "dead", reason="x", expected_states=["nowhere"])


def test_history_records_every_step_with_time_reason_actor_and_attempt(ledger, clock):
    accept_and_claim(ledger)
    clock.advance(2.5)
    ledger.transition("dispatch.create", "TX-1", "dead", reason="permanent: 422", owner="worker-a", attempt=1)
    ledger.reopen("dispatch.create", "TX-1", actor="alice", reason="fixed the SKU", from_states=["dead"])
    history = ledger.get("dispatch.create", "TX-1").history
    assert [(h["from"], h["to"]) for h in history] == [
        (None, "accepted"), ("accepted", "sending"), ("sending", "dead"), ("dead", "accepted")]
    assert history[2]["reason"] == "permanent: 422" and history[2]["attempt"] == 1
    assert history[2]["at"] == pytest.approx(clock.now)
    assert history[3]["actor"] == "alice" and history[3]["reason"] == "fixed the SKU"


def test_attempts_are_logged_by_the_lease_owner_only(ledger, clock):
    accept_and_claim(ledger)
    assert ledger.record_attempt("dispatch.create", "TX-1", attempt=1, outcome="transient", status=503,
                                 error_code=None, messages=["Service Unavailable"], latency=0.25,
                                 owner="worker-a")
    assert not ledger.record_attempt("dispatch.create", "TX-1", attempt=1, outcome="delivered",
                                     owner="worker-b")
    log = ledger.get("dispatch.create", "TX-1").attempts_log
    assert log == ({"attempt": 1, "at": clock.now, "outcome": "transient", "status": 503, "error_code": None,
                    "messages": ["Service Unavailable"], "latency": 0.25},)


def test_a_transition_can_log_its_attempt_in_the_same_step(ledger):
    accept_and_claim(ledger)
    ledger.transition("dispatch.create", "TX-1", "delivered", reason="delivered", owner="worker-a",
                      log=AttemptEntry(attempt=1, outcome="delivered", status=200, error_code=0, latency=0.1))
    record = ledger.get("dispatch.create", "TX-1")
    assert [a["outcome"] for a in record.attempts_log] == ["delivered"]
    assert record.state == "delivered"


# -- expiry -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("final", ["delivered", "superseded", "discarded"])
def test_final_states_expire_after_the_retention(ledger, client, final):
    accept_and_claim(ledger)
    ledger.transition("dispatch.create", "TX-1", final, reason="x", owner="worker-a")
    assert 30 * DAY - 5 <= client.ttl(ledger.record_key("dispatch.create", "TX-1")) <= 30 * DAY


@pytest.mark.parametrize("state", ["retrying", "waiting", "uncertain", "dead"])
def test_other_states_never_expire(ledger, client, state):
    accept_and_claim(ledger)
    ledger.transition("dispatch.create", "TX-1", "discarded", reason="oops", owner="worker-a")
    ledger.reopen("dispatch.create", "TX-1", actor="bob", reason="not junk after all",
                  from_states=["discarded"])
    assert client.ttl(ledger.record_key("dispatch.create", "TX-1")) == -1
    ledger.transition("dispatch.create", "TX-1", state, reason="x")
    assert client.ttl(ledger.record_key("dispatch.create", "TX-1")) == -1


def test_zero_retention_keeps_final_records_forever(client, clock):
    ledger = Ledger(client, lease_seconds=60, delivered_retention_seconds=0, clock=clock)
    accept_and_claim(ledger)
    ledger.transition("dispatch.create", "TX-1", "delivered", reason="x", owner="worker-a")
    assert client.ttl(ledger.record_key("dispatch.create", "TX-1")) == -1


# -- reopen ----------------------------------------------------------------------------------------------

def test_reopen_only_from_the_given_states_and_a_new_round_starts(ledger):
    accepted, _ = accept_and_claim(ledger)
    ledger.transition("dispatch.create", "TX-1", "dead", reason="exhausted", owner="worker-a")
    assert not ledger.reopen("dispatch.create", "TX-1", actor="alice", reason="x", from_states=["uncertain"])
    assert ledger.reopen("dispatch.create", "TX-1", actor="alice", reason="retry", from_states=["dead"])
    assert not ledger.reopen("dispatch.create", "TX-1", actor="bob", reason="retry", from_states=["dead"])
    record = ledger.get("dispatch.create", "TX-1")
    assert (record.state, record.attempts, record.round_attempts) == ("accepted", 1, 0)
    claim = ledger.claim("dispatch.create", "TX-1", accepted.fingerprint, "worker-c")
    assert (claim.attempt, claim.round_attempt) == (2, 1)


def test_reopen_needs_states(ledger):
    with pytest.raises(ValueError):
        ledger.reopen("dispatch.create", "TX-1", actor="a", reason="r", from_states=[])


# -- indexes and reading -----------------------------------------------------------------------------------

def test_counts_lists_and_ages_follow_the_states(ledger, clock):
    for n in range(5):
        accept_and_claim(ledger, dispatch_event(f"TX-{n}"))
        clock.advance(10)
    ledger.transition("dispatch.create", "TX-0", "dead", reason="x", owner="worker-a")
    clock.advance(10)
    ledger.transition("dispatch.create", "TX-1", "dead", reason="x", owner="worker-a")
    ledger.transition("dispatch.create", "TX-2", "delivered", reason="x", owner="worker-a")
    ledger.transition("dispatch.create", "TX-3", "uncertain", reason="x", owner="worker-a")
    assert ledger.count_by_state() == {"accepted": 0, "sending": 1, "retrying": 0, "waiting": 0,
                                       "uncertain": 1, "dead": 2}
    assert [r.key for r in ledger.list_in_state("dead")] == ["TX-0", "TX-1"]
    assert [r.key for r in ledger.list_in_state("dead", oldest_first=False, limit=1)] == ["TX-1"]
    assert ledger.oldest_in_state("dead") == ("dispatch.create", "TX-0", pytest.approx(clock.now - 10))
    assert ledger.oldest_in_state("retrying") is None
    assert ledger.final_totals() == {"delivered": 1, "superseded": 0, "discarded": 0}
    assert ledger.delivered_since(clock.now - 60) == 1
    for final in ("delivered", "superseded"):  # final states keep no per-event index
        with pytest.raises(ValueError):
            ledger.list_in_state(final)


def test_recently_delivered_is_trimmed_to_its_window(ledger, clock):
    accept_and_claim(ledger, dispatch_event("TX-old"))
    ledger.transition("dispatch.create", "TX-old", "delivered", reason="x", owner="worker-a")
    clock.advance(3601 + 60)
    accept_and_claim(ledger, dispatch_event("TX-new"))
    ledger.transition("dispatch.create", "TX-new", "delivered", reason="x", owner="worker-a")
    assert ledger.delivered_since(0) == 1
    assert ledger.final_totals()["delivered"] == 2
    assert len(ledger._redis.hkeys("wms:ledger:delivered:per_minute")) == 1  # the old minute is gone


def test_deliveries_are_counted_per_minute_not_per_event(ledger, clock):
    clock.now = 60 * 28_000_000 + 5  # 5 s into a minute
    for n in range(30):
        accept_and_claim(ledger, dispatch_event(f"TX-{n}"))
        ledger.transition("dispatch.create", f"TX-{n}", "delivered", reason="x", owner="worker-a")
        clock.advance(3)  # 30 deliveries over 90 s: minutes m (19), m+1 (11)
    assert ledger.delivered_since(clock.now - 3600) == 30
    assert ledger.delivered_since(60 * 28_000_001) == 11  # from the start of the second minute
    assert ledger.delivered_since(60 * 28_000_001 + 59) == 11  # to the minute: that minute counts whole
    assert ledger.delivered_since(60 * 28_000_002) == 0
    assert len(ledger._redis.hkeys("wms:ledger:delivered:per_minute")) == 2


def test_to_dict_is_the_json_support_scripts_rely_on(ledger):
    accept_and_claim(ledger)
    ledger.transition("dispatch.create", "TX-1", "delivered", reason="delivered", owner="worker-a",
                      result={"dispatch_id": 7}, attempt=1)
    shown = json.loads(json.dumps(ledger.get("dispatch.create", "TX-1").to_dict()))
    for name in ("operation", "key", "state", "attempts", "result", "history", "attempts_log", "fingerprint",
                 "event"):
        assert name in shown
    assert shown["result"] == {"dispatch_id": 7}
    assert shown["history"][0]["at"].endswith("Z")
    assert shown["event"]["fields"]["order_no"] == "FO1"


# -- on a real server ------------------------------------------------------------------------------------

def test_concurrent_claims_send_each_event_once(redis_server):
    """Two workers race for the same 150 events on a real valkey-server: each is claimed exactly once."""
    clock = Clock()
    setup = Ledger(redis_server.client(), lease_seconds=120, delivered_retention_seconds=DAY, clock=clock)
    prints = {}
    for n in range(150):
        prints[f"TX-{n}"] = setup.accept(dispatch_event(f"TX-{n}")).fingerprint
    wins: dict[str, list[str]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def race(owner: str) -> None:
        ledger = Ledger(redis_server.client(), lease_seconds=120, delivered_retention_seconds=DAY,
                        clock=clock)
        start.wait()
        for key, print_ in prints.items():
            if ledger.claim("dispatch.create", key, print_, owner).claimed:
                wins[owner].append(key)

    threads = [threading.Thread(target=race, args=(owner,)) for owner in wins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins["a"] + wins["b"]) == sorted(prints)
    assert not set(wins["a"]) & set(wins["b"])
    assert setup.count_by_state()["sending"] == 150


def test_two_people_reopening_one_event_exactly_one_wins(redis_server):
    clock = Clock()
    ledger = Ledger(redis_server.client(), lease_seconds=120, delivered_retention_seconds=DAY, clock=clock)
    for n in range(50):
        accept_and_claim(ledger, dispatch_event(f"TX-{n}"))
        ledger.transition("dispatch.create", f"TX-{n}", "dead", reason="x", owner="worker-a")
    results: dict[str, list[bool]] = {"alice": [], "bob": []}
    start = threading.Barrier(2)

    def retry_all(actor: str) -> None:
        mine = Ledger(redis_server.client(), lease_seconds=120, delivered_retention_seconds=DAY, clock=clock)
        start.wait()
        for n in range(50):
            results[actor].append(mine.reopen("dispatch.create", f"TX-{n}", actor=actor, reason="retry",
                                              from_states=["dead"]))

    threads = [threading.Thread(target=retry_all, args=(actor,)) for actor in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(a != b for a, b in zip(results["alice"], results["bob"]))
    assert ledger.count_by_state()["accepted"] == 50 and ledger.count_by_state()["dead"] == 0


def test_records_survive_a_redis_restart(redis_server):
    """AOF on: states, results, TTLs and indexes come back; the scripts are reloaded transparently."""
    clock = Clock()
    ledger = Ledger(redis_server.client(), lease_seconds=120, delivered_retention_seconds=DAY, clock=clock)
    accepted, _ = accept_and_claim(ledger, dispatch_event("TX-1"))
    ledger.transition("dispatch.create", "TX-1", "delivered", reason="ok", owner="worker-a",
                      result={"dispatch_id": 1})
    accept_and_claim(ledger, dispatch_event("TX-2"))
    ledger.transition("dispatch.create", "TX-2", "dead", reason="permanent", owner="worker-a")
    before = (ledger.get("dispatch.create", "TX-1"), ledger.get("dispatch.create", "TX-2"))
    redis_server.restart()
    again = Ledger(redis_server.client(), lease_seconds=120, delivered_retention_seconds=DAY, clock=clock)
    assert (again.get("dispatch.create", "TX-1"), again.get("dispatch.create", "TX-2")) == before
    assert redis_server.client().ttl(ledger.record_key("dispatch.create", "TX-1")) > DAY - 60
    assert again.count_by_state()["dead"] == 1
    # The same Ledger object keeps working: redis-py reloads a script the restarted server forgot.
    assert ledger.claim("dispatch.create", "TX-1", accepted.fingerprint, "w").status == "done"


def test_memory_of_a_delivered_event(redis_server):
    """MEMORY USAGE of one delivered record on valkey 8.1 (hash, 5 fields), measured by this test:

    - a relative stock adjustment (4 fields, old/new quantity kept): ~0.8 KiB (792 bytes);
    - the API document's dispatch create (one package, one line, label URLs kept): ~1.3 KiB
      (1,312 bytes), of which ~735 bytes are the WMS payload and the kept Trademax result.
    """
    client = redis_server.client()
    ledger = Ledger(client, lease_seconds=120, delivered_retention_seconds=30 * DAY)
    owner = "celery@worker-1:4242:6f1c2a9e-4d5b-4c1e-9b2a-0a1b2c3d4e5f"
    stock = {"operation": "stock.adjust", "key": "adj-000123", "occurred_at": "2024-05-01T10:11:12Z",
             "event_id": "adj-000123",
             "fields": {"warehouse_id": "nw", "artno": "123-45", "quantity": -2, "reason": "damaged"}}
    dispatch = {
        "operation": "dispatch.create", "key": "8723GYSFD52F32T", "event_id": "8723GYSFD52F32T",
        "occurred_at": "2024-05-01T10:11:12.123+02:00",
        "fields": {"warehouse_id": "nw", "order_no": "FO123456", "transaction_id": "8723GYSFD52F32T",
                   "order_type": "SO", "external_reference": None,
                   "packages": [{"package_id": 1, "external_package_id": 123, "weight": 34, "volume": 2,
                                 "picking_zones": ["A"],
                                 "products": [{"line_no": 1000, "artno": "123-45", "label": "701203"}]}],
                   "products": [{"line_no": 1000, "artno": "123-45", "quantity": 12}]},
    }
    results = {
        "stock.adjust": {"old_quantity": 10, "new_quantity": 8, "status": 200},
        "dispatch.create": {"dispatch_id": 123, "tracking_code": 1234567780, "shipping_agent_code": "DHL",
                            "dispatch_date": "2014-11-06", "labels_url_pdf": "http://logtrade/all-labels.pdf",
                            "labels_url_web": "http://logtrade/web-version-path",
                            "package_labels": ["http://trademax.se/label_url.pdf"], "status": 200},
    }
    usage = {}
    for event in (stock, dispatch):
        accept_and_claim(ledger, event, owner=owner)
        ledger.transition(event["operation"], event["key"], "delivered", reason="delivered", owner=owner,
                          result=results[event["operation"]], attempt=1,
                          log=AttemptEntry(attempt=1, outcome="delivered", status=200, error_code=0,
                                           latency=0.2345))
        usage[event["operation"]] = client.memory_usage(ledger.record_key(event["operation"], event["key"]))
    print(f"MEMORY USAGE of a delivered record: {usage}")
    assert usage["stock.adjust"] <= 1024
    assert usage["dispatch.create"] <= 1536


def test_the_legacy_delivered_index_is_dropped_once(ledger):
    ledger._redis.zadd("wms:ledger:delivered:recent", {"dispatch.create:TX-old": 1.0})
    assert ledger.drop_legacy_keys() == ["wms:ledger:delivered:recent"]
    assert not ledger._redis.exists("wms:ledger:delivered:recent")
    assert ledger.drop_legacy_keys() == []


def test_failures_are_counted_per_minute_beside_deliveries(ledger, clock):
    """The desk's chart: per minute, deliveries and failures (moves to retrying, uncertain or dead)."""
    clock.now = 60 * 28_000_000 + 5
    minute = 28_000_000
    for n, to in enumerate(["retrying", "dead", "uncertain", "delivered", "waiting"]):
        accept_and_claim(ledger, dispatch_event(f"TX-{n}"))
        ledger.transition("dispatch.create", f"TX-{n}", to, reason="x", owner="worker-a")
    clock.advance(60)
    accept_and_claim(ledger, dispatch_event("TX-late"))
    ledger.transition("dispatch.create", "TX-late", "retrying", reason="x", owner="worker-a")
    assert ledger.per_minute() == {minute: (1, 3), minute + 1: (0, 1)}
    assert ledger.delivered_since(0) == 1
    clock.advance(3600 + 120)  # past the window: a new minute drops the old ones, failures too
    accept_and_claim(ledger, dispatch_event("TX-new"))
    ledger.transition("dispatch.create", "TX-new", "retrying", reason="x", owner="worker-a")
    assert list(ledger.per_minute()) == [math.floor(clock.now / 60)]
