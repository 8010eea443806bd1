"""The store-call rule (worker.store.requests): a state-changing script resent with the same request id —
by redis-py after a timeout, or by the delivery once the store is back — replays its first reply and
changes nothing more: a claim resent is not a second claim, a transition resent is not refused, a dead
letter's id resent is the same id, an admission resent pushes its message once.  Runs on fakeredis and
on valkey (``store_client``)."""
from __future__ import annotations

from worker.destinations.table import delivery_ref
from worker.store.dead_letters import DeadLetters
from worker.store.ledger import Ledger
from worker.store.requests import replayable


def event(key: str = "S-1") -> dict:
    return {"operation": "stock.adjust", "key": key, "fields": {"artno": "1", "quantity": 1}}


def test_a_claim_and_a_transition_run_again_in_the_same_block_replay(store_client):
    ledger = Ledger(store_client, lease_seconds=30, delivered_retention_seconds=60)
    ledger.accept(event())
    fingerprint = ledger.get("stock.adjust", "S-1").fingerprint
    with replayable("run-1"):
        first = ledger.claim("stock.adjust", "S-1", fingerprint, "w1")
        moved = ledger.transition("stock.adjust", "S-1", "delivered", owner="w1", reason="delivered")
    with replayable("run-1"):  # the same calls again, e.g. after a timeout
        again = ledger.claim("stock.adjust", "S-1", fingerprint, "w1")
        moved_again = ledger.transition("stock.adjust", "S-1", "delivered", owner="w1", reason="delivered")
    seen = [(c.status, c.attempt, c.previous_state) for c in (first, again)]
    assert seen == [("claimed", 1, "accepted")] * 2
    assert not again.interrupted
    assert moved and moved_again
    record = ledger.get("stock.adjust", "S-1")
    assert record.attempts == 1 and [h["to"] for h in record.history] == ["accepted", "sending", "delivered"]


def test_without_a_shared_block_each_call_is_its_own(store_client):
    ledger = Ledger(store_client, lease_seconds=30, delivered_retention_seconds=60)
    ledger.accept(event("S-2"))
    fingerprint = ledger.get("stock.adjust", "S-2").fingerprint
    ledger.claim("stock.adjust", "S-2", fingerprint, "w1")
    assert ledger.claim("stock.adjust", "S-2", fingerprint, "w1").attempt == 2


def test_a_dead_letter_id_resent_is_the_same_id(store_client):
    letters = DeadLetters(store_client, delivery_ref=delivery_ref)
    with replayable("letter"):
        first = letters.add("stock.adjust", "S-3", {"a": 1}, "permanent", messages=["no"])
    with replayable("letter"):
        again = letters.add("stock.adjust", "S-3", {"a": 1}, "permanent", messages=["no"])
    assert first == again and letters.count() == 1


def test_an_admission_resent_replays_its_answer_and_pushes_once(store_client):
    """The door's admission (record + task message, one script): resent after a timeout, it answers what it
    did the first time and pushes nothing more; run after its "not after" (a stalled store waking), it
    does nothing at all — checked against the store's own clock (TIME) on valkey too."""
    store_client.delete("q:test")
    ledger = Ledger(store_client, lease_seconds=30, delivered_retention_seconds=60)
    for _ in range(2):
        with replayable("admit"):
            [(accepted, queued)] = ledger.admit_all([(event("S-4"), "q:test", "m", "r-s4")],
                                                    not_after=ledger.server_time() + 4)
        assert (accepted.status, queued) == ("accepted", True)
    assert store_client.llen("q:test") == 1 and ledger.get("stock.adjust", "S-4").state == "accepted"
    [late] = ledger.admit_all([(event("S-5"), "q:test", "m", "r-s5")], not_after=ledger.server_time() - 0.5)
    assert type(late).__name__ == "LateAdmission"
    assert ledger.get("stock.adjust", "S-5") is None and store_client.llen("q:test") == 1


def test_an_admission_to_a_store_that_forgot_the_script_loads_it_and_runs_once(store_client):
    """A restarted store has no scripts: the pipeline of EVALSHAs is answered NOSCRIPT, the script is
    loaded and the pipeline sent again — each admission runs once."""
    store_client.delete("q:flush")
    ledger = Ledger(store_client, lease_seconds=30, delivered_retention_seconds=60)
    store_client.script_flush()
    answers = ledger.admit_all([(event("S-6"), "q:flush", "m6", "r-s6"),
                                (event("S-7"), "q:flush", "m7", "r-s7")])
    assert [(accepted.status, queued) for accepted, queued in answers] == [("accepted", True)] * 2
    assert store_client.lrange("q:flush", 0, -1) in (["m7", "m6"], [b"m7", b"m6"])


def test_a_result_filled_in_by_a_person_carries_a_request_id_and_keeps_its_reply(store_client):
    """``fill_in_result`` (a dispatch id Trademax's answer lacked) is one compare-and-set script under the
    rule: its reply is kept under the request id, so redis-py resending it replays "ok"."""
    ledger = Ledger(store_client, lease_seconds=30, delivered_retention_seconds=60)
    ledger.accept(event("T-1"))
    ledger.transition("stock.adjust", "T-1", "delivered", reason="delivered", result={"status": 400})
    with replayable("fill"):
        assert ledger.fill_in_result("stock.adjust", "T-1", "dispatch_id", 390333, state="delivered",
                                     actor="alice", reason="from the dashboard") == ("added", 390333)
    assert store_client.get("wms:request:fill:1") is not None
    record = ledger.get("stock.adjust", "T-1")
    assert record.state == "delivered" and record.result == {"status": 400, "dispatch_id": 390333}
    last = record.history[-1]
    assert (last["from"], last["to"], last["actor"]) == ("delivered", "delivered", "alice")
    assert ledger.fill_in_result("stock.adjust", "T-1", "dispatch_id", 7, state="delivered", actor="bob",
                                 reason="x") == ("present", 390333)
    assert ledger.fill_in_result("stock.adjust", "NONE", "dispatch_id", 7, state="delivered", actor="bob",
                                 reason="x") == ("missing", None)
    ledger.accept(event("T-2"))
    assert ledger.fill_in_result("stock.adjust", "T-2", "dispatch_id", 7, state="delivered", actor="bob",
                                 reason="x") == ("wrong_state", "accepted")
    assert ledger.get("stock.adjust", "T-2").result is None
    assert ledger.count_by_state()["accepted"] == 1 and ledger.final_totals()["delivered"] == 1


def test_fresh_ids_are_unique_across_threads_and_shaped_like_uuid4_hex():
    from concurrent.futures import ThreadPoolExecutor

    from worker.store.requests import fresh_id, request_id

    def draw(_):
        return [fresh_id() for _ in range(5_000)] + [request_id() for _ in range(1_000)]

    with ThreadPoolExecutor(16) as pool:
        ids = [i for batch in pool.map(draw, range(16)) for i in batch]
    assert len(set(ids)) == len(ids) == 16 * 6_000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_a_forked_child_draws_its_own_prefix_and_never_repeats_its_parents_ids():
    import os

    from worker.store.requests import fresh_id

    before = fresh_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, and a grandchild's
        try:
            mine = [fresh_id() for _ in range(3)]
            grandchild = os.fork()
            if grandchild == 0:
                os.write(write, (fresh_id() + "\n").encode())
                os._exit(0)
            os.waitpid(grandchild, 0)
            os.write(write, ("\n".join(mine) + "\n").encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        children = pipe.read().split()
    parents = [before] + [fresh_id() for _ in range(3)]
    assert len(children) == 4 and not set(children) & set(parents)
    prefixes = {i[:16] for i in children} | {before[:16]}
    assert len(prefixes) == 3  # the parent's, the child's, the grandchild's


def test_a_tag_is_the_process_prefix_and_the_counter():
    from worker.store.requests import fresh_id, fresh_tag

    long, short = fresh_id(), fresh_tag(8)
    prefix, counter = short.split(".")
    assert prefix == long[:8] and int(counter) == int(long[16:], 16) + 1


def test_a_new_process_tags_its_runs_with_another_prefix():
    """A restart may reuse the pid and the thread's ident, and a redelivered message its task id: the owner
    tag's random part keeps the dead run's owner name from coming back (the counter alone would)."""
    import os
    import subprocess
    import sys

    from worker.store.requests import fresh_tag

    mine = fresh_tag(8).split(".")[0]
    code = "from worker.store.requests import fresh_tag; print(fresh_tag(8))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}).stdout.strip()
    assert other.split(".")[0] != mine and other.endswith(".0")
