"""The two store calls around a send (worker.flow.send_steps) and this process's look at the flow
(worker.flow.look), against the store-call rule and the staleness docs/flow-control.md promises:

* a resent *take* replays its first reply (one claim, one attempt, one rate slot);
* a resent *delivered* step (no request id) finds its own attempt entry and changes nothing;
* a pause set by another process stops this one's sends within ``LOOK_SECONDS`` — not at once, not later;
* what this process reports (a failure) or does (a pause through its own flow controls) is obeyed by its
  very next send;
* a record delivered through the two steps enters the settled index (worker.store.settled_records) and is
  compacted later; the take step then still recognises the event by its fingerprint's prefix."""
from __future__ import annotations

import json

import pytest

from worker.encoding import text
from worker.errors import TransientError
from worker.flow.controls import FlowControls
from worker.flow.gate import SEND, Gate
from worker.flow.look import LOOK_SECONDS
from worker.flow.pause import Pauses
from worker.flow.send_steps import SendSteps, SkuTurn
from worker.settings import FlowLimits, Settings
from worker.store.ledger import Ledger
from worker.store.records import AttemptEntry
from worker.store.requests import replayable
from worker.store.retry_schedule import RetrySchedule
from worker.store.settled_records import SettledRecords
from worker.store.stock_order import TURN_WAIT_REASON, StockOrder, StockTurn

NS = "wms"  # Trademax's namespace


def receipt(key: str) -> dict:
    return {"operation": "receipt.create", "key": key, "event_id": key,
            "occurred_at": "2024-05-01T10:00:00+02:00",
            "fields": {"receipt_no": key, "products": [{"artno": "123-45", "quantity": 1}]}}


def steps_for(store_client, clock, gate: Gate | None = None, **limits) -> SendSteps:
    gate = gate or Gate(store_client, "trademax", NS, FlowLimits(**limits), title="Trademax", clock=clock,
                        sleep=clock.sleep)
    ledger = Ledger(store_client, lease_seconds=120, delivered_retention_seconds=86400, clock=clock)
    return SendSteps(store_client, ledger, gate, StockOrder(store_client, lock_seconds=30), clock=clock)


def deliver(steps: SendSteps, event: dict, owner: str, clock) -> None:
    """Take, then record a delivery (what the pipeline does around a send that the destination took)."""
    taken = steps.take(event, owner)
    assert taken.verdict.action == SEND and taken.claim.status == "claimed"
    done = steps.delivered(event["operation"], event["key"], owner=owner, result={"ok": True},
                           log=AttemptEntry(taken.claim.attempt, "delivered", 200, None, at=clock()),
                           reason="delivered", ticket=taken.verdict.ticket)
    assert done.moved


def record(store_client, key: str) -> dict:
    found = store_client.hgetall(f"{NS}:event:receipt.create:{key}")
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in found.items()}


def test_a_resent_take_replays_its_first_claim(store_client, clock):
    steps = steps_for(store_client, clock)
    event = receipt("R-1")
    taken = []
    for _ in range(2):  # the same call, resent after a timeout
        with replayable("deliver:receipt.create:R-1"):
            taken.append(steps.take(event, "worker-a"))
    assert [t.claim.status for t in taken] == ["claimed", "claimed"]
    assert taken[0].claim.attempt == taken[1].claim.attempt == 1
    assert taken[0].verdict.ticket == taken[1].verdict.ticket
    assert record(store_client, "R-1")["n"] == "1"
    # a new call (another request id) by the same owner is a claim again: attempt 2
    assert steps.take(event, "worker-a").claim.attempt == 2


def count_at(key: str, at: str) -> dict:
    return {"operation": "stock.adjust", "key": key, "event_id": key, "occurred_at": at,
            "fields": {"warehouse_id": "nw", "artno": "A-1", "quantity": 3, "type": "absolute"}}


def test_a_count_finding_its_sku_turn_busy_is_not_claimed_and_a_resend_replays_that(store_client, clock):
    """Waiting for a turn is no attempt: neither the take nor the later claim (a count taken unclaimed)
    claims a count whose SKU's turn another count holds; its record waits, its story says so once."""
    steps = steps_for(store_client, clock)
    at = "2024-05-14T10:00:00Z"
    held = steps.stock_order.acquire("nw", "A-1", "2024-05-14T09:00:00Z", "worker-other")
    assert held.verdict == "acquired"
    turn, event = SkuTurn("nw", "A-1", at), count_at("c-1", at)
    taken = steps.take(event, "worker-a", turn=turn)
    assert (taken.claim, taken.turn) == (None, StockTurn("busy", "worker-other"))

    clock.advance(1)
    print_ = steps.take(event, "worker-b", claim=False).accepted.fingerprint
    found = []
    for free in (False, True):  # the same call, resent after a timeout — after the turn came free
        if free:
            steps.stock_order.release("nw", "A-1", "worker-other")
        with replayable("claim:stock.adjust:c-1"):
            found.append(steps.claim("stock.adjust", "c-1", print_, "worker-b", turn))
    assert found == [(None, StockTurn("busy", "worker-other"))] * 2  # replayed: not claimed by the resend
    stored = store_client.hgetall(f"{NS}:event:stock.adjust:c-1")
    stored = {text(k): text(v) for k, v in stored.items()}
    assert (stored["s"], stored["n"], "l" in stored) == ("waiting", "0", False)
    story = json.loads(stored["h"])
    assert [step[2] for step in story if isinstance(step, list)] == ["accepted", "waiting"]  # told once
    assert story[-1][3].startswith(TURN_WAIT_REASON) and len(story[-1]) == 4  # no attempt number

    claim, turned = steps.claim("stock.adjust", "c-1", print_, "worker-c", turn)  # a new call: it is free
    assert (claim.status, claim.attempt, claim.previous_state, turned.verdict) == (
        "claimed", 1, "waiting", "acquired")


def test_a_resent_delivered_step_finds_its_own_entry_and_changes_nothing(store_client, clock):
    steps = steps_for(store_client, clock)
    event = receipt("R-2")
    taken = steps.take(event, "worker-a")
    entry = AttemptEntry(taken.claim.attempt, "delivered", 200, None, at=clock())
    answers = [steps.delivered("receipt.create", "R-2", owner="worker-a", result={"id": 7}, log=entry,
                               reason="delivered", ticket=taken.verdict.ticket) for _ in range(2)]
    assert [a.moved for a in answers] == [True, True]
    found = record(store_client, "R-2")
    assert found["s"] == "delivered"
    story = json.loads(found["h"])
    assert len([part for part in story if isinstance(part, list) and part[2] == "delivered"]) == 1
    assert len([part for part in story if isinstance(part, dict)]) == 1  # one attempt entry
    totals = store_client.hget(f"{NS}:ledger:totals", "delivered")
    assert int(totals) == 1


def test_a_delivered_step_by_a_worker_whose_claim_passed_moves_nothing(store_client, clock):
    steps = steps_for(store_client, clock)
    event = receipt("R-3")
    first = steps.take(event, "worker-a")
    clock.advance(121)  # worker-a's lease expires; worker-b claims
    assert steps.take(event, "worker-b").claim.status == "claimed"
    late = steps.delivered("receipt.create", "R-3", owner="worker-a", result={},
                           log=AttemptEntry(first.claim.attempt, "delivered", 200, None, at=clock()),
                           reason="delivered", ticket=first.verdict.ticket)
    assert not late.moved and record(store_client, "R-3")["s"] == "sending"


def test_a_record_delivered_through_the_steps_is_indexed_settled_and_compacted_later(store_client, clock):
    steps = steps_for(store_client, clock)
    event = receipt("R-4")
    deliver(steps, event, "worker-a", clock)
    queue = f"{NS}:ledger:to_compact:receipt.create"
    assert [text(key) for key in store_client.lrange(queue, 0, -1)] == ["R-4"]
    settled = SettledRecords(store_client, NS, operations=["receipt.create"], detail_seconds=24 * 3600,
                             clock=clock)
    assert settled.compact_due() == 0  # not due yet: it keeps its details
    clock.advance(24 * 3600 + 1)
    assert settled.compact_due() == 1
    compact = record(store_client, "R-4")
    assert compact["s"] == "delivered" and "h" not in compact and len(compact["e"]) == 32
    assert store_client.exists(queue) == 0
    # published again: recognised by the fingerprint's prefix, settled, nothing to send and no slot asked
    again = steps.take(event, "worker-b")
    assert (again.accepted.status, again.accepted.conflict) == ("known", False)
    assert (again.verdict, again.claim.status) == (None, "done")
    # another payload under the key is still a conflict
    changed = receipt("R-4")
    changed["fields"]["products"][0]["quantity"] = 2
    assert steps.take(changed, "worker-b").accepted.conflict


def known_up(steps: SendSteps, clock) -> None:
    """One delivery, then a second: the circuit knows the destination is up, and this process's look (read
    afresh) says so — the next sends skip the gate's script."""
    deliver(steps, receipt("UP-1"), "worker-a", clock)
    clock.advance(LOOK_SECONDS + 0.01)
    deliver(steps, receipt("UP-2"), "worker-a", clock)
    assert steps.gate.clear()


def test_a_pause_by_another_process_stops_sends_within_the_look(store_client, clock):
    steps = steps_for(store_client, clock)
    known_up(steps, clock)
    Pauses(store_client, {"trademax": NS}, clock=clock).pause("trademax", by="alice", reason="stocktake")
    # this process has not looked since: a send within the look's second still goes (documented)...
    clock.advance(LOOK_SECONDS / 2)
    assert steps.take(receipt("P-1"), "worker-a").verdict.action == SEND
    # ...and none after it
    clock.advance(LOOK_SECONDS / 2 + 0.01)
    held = steps.take(receipt("P-2"), "worker-a")
    assert held.verdict.action != SEND and held.claim is None
    assert record(store_client, "P-2")["s"] == "accepted"


def test_a_failure_this_process_reports_is_obeyed_by_its_next_send(store_client, clock):
    steps = steps_for(store_client, clock, circuit_failures=1)
    known_up(steps, clock)
    taken = steps.take(receipt("F-1"), "worker-a")
    steps.gate.report(TransientError("down", status=503), ticket=taken.verdict.ticket)  # the circuit opens
    refused = steps.take(receipt("F-2"), "worker-a")
    assert refused.verdict.action != SEND and "circuit" in refused.verdict.reason.lower()


def test_a_pause_through_this_process_is_obeyed_by_its_next_send(store_client, clock):
    controls = FlowControls(store_client, Settings(), RetrySchedule(store_client, clock=clock), clock=clock,
                            sleep=clock.sleep)
    steps = steps_for(store_client, clock, gate=controls.gate("trademax"))
    known_up(steps, clock)
    controls.pauses.pause("trademax", by="alice", reason="stocktake")
    assert steps.take(receipt("P-3"), "worker-a").verdict.action != SEND


def test_with_a_rate_limit_every_send_asks_the_gate(store_client, clock):
    steps = steps_for(store_client, clock, max_rps=2)
    deliver(steps, receipt("UP-1"), "worker-a", clock)
    clock.advance(LOOK_SECONDS + 0.01)
    assert not steps.gate.clear()
    before = list(clock.slept)
    steps.take(receipt("L-1"), "worker-a")
    steps.take(receipt("L-2"), "worker-a")
    assert clock.slept[len(before):] == [pytest.approx(0.5, abs=0.02)]  # the second waited for its slot


def test_both_steps_run_again_in_a_store_that_lost_its_scripts(store_client, clock):
    """The steps call EVALSHA themselves (send_steps._run): a store restarted or flushed answers NOSCRIPT
    without running anything, and the step loads its script and runs once — one claim, one delivery."""
    steps = steps_for(store_client, clock)
    event = receipt("R-noscript")
    store_client.script_flush()
    taken = steps.take(event, "worker-a")
    assert taken.claim.status == "claimed" and taken.claim.attempt == 1
    store_client.script_flush()
    done = steps.delivered(event["operation"], event["key"], owner="worker-a", result={"ok": True},
                           log=AttemptEntry(1, "delivered", 200, None, at=clock()), reason="delivered",
                           ticket=taken.verdict.ticket)
    assert done.moved
    assert record(store_client, "R-noscript")["s"] == "delivered"
    assert record(store_client, "R-noscript")["n"] == "1"


def test_the_steps_refuse_a_pipeline(store_client, clock):
    with pytest.raises(TypeError, match="pipeline"):
        SendSteps(store_client.pipeline(), None, None, None)


TRICKY = 'quote " backslash \\ nul \x00 unit \x1f newline \n tab \t del \x7f Åäö ß 漢字 🙂 \u2028 </script>'


def test_text_of_every_kind_reaches_the_store_as_the_ledger_spelled_it(store_client, clock):
    """Both steps' arguments travel packed in one JSON argument (send_steps._packed) that the scripts
    unpack with cjson: the event, the owner, the answer and the attempt's entry must be stored byte for
    byte as the ledger's Python spelled them — quotes, backslashes, control characters, non-ASCII."""
    from worker.encoding import stored_json
    from worker.store.ledger import fingerprint
    from worker.store.records import event_json

    steps = steps_for(store_client, clock)
    event = receipt("R-text")
    event["fields"]["receipt_no"] = TRICKY
    owner = f"worker {TRICKY}"
    taken = steps.take(event, owner)
    assert taken.claim.status == "claimed"
    stored = record(store_client, "R-text")
    print_ = fingerprint(event["fields"])
    assert stored["e"] == event_json(print_, "R-text", event["fields"], event["occurred_at"],
                                     event["event_id"])
    assert stored["l"].endswith(" " + owner)
    result = {"receipt_id": TRICKY, "status": 200}
    entry = AttemptEntry(taken.claim.attempt, "delivered", 200, None, (TRICKY,), at=clock())
    done = steps.delivered("receipt.create", "R-text", owner=owner, result=result, log=entry,
                           reason=f"delivered {TRICKY}", ticket=taken.verdict.ticket)
    assert done.moved
    stored = record(store_client, "R-text")
    assert stored["s"] == "delivered"
    assert stored_json(result, where="a ledger result") in stored.values()
    assert entry.to_json(default_at=clock()) in stored["h"]


@pytest.mark.parametrize("value", ["text", "", TRICKY, 0, -7, 2 ** 70, 0.1, 1e-05, 1.5e300, 120.0])
def test_a_packed_argument_is_what_redis_py_would_have_sent(value):
    from redis._parsers.encoders import Encoder

    from worker.flow.send_steps import _packed

    assert json.loads(_packed([value]))[0].encode("utf-8") == Encoder("utf-8", "strict", False).encode(value)


@pytest.mark.parametrize("value", [True, None, b"bytes", 1j])
def test_a_script_argument_redis_py_would_refuse_is_refused(value):
    from worker.flow.send_steps import _packed

    with pytest.raises(TypeError, match="text or a number"):
        _packed(["fine", value])
