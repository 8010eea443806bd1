"""Issue 9's store-call rule holds for flow control's state-changing scripts: a call resent after a
timeout (the same request id, as inside ``replayable``) replays its first reply instead of running again —
a failure is counted once towards opening the circuit, a batch is taken once (the resend gets the same
batch, not "busy"), a settled batch's resent settle still reports its outcome, a resent resume still says
which pause it ended and is audited once."""
from __future__ import annotations

from tests.worker.flow.test_batches import item
from worker.flow.batches import Batches
from worker.flow.circuit import Circuit
from worker.flow.pause import Pauses
from worker.store.requests import replayable


def test_a_resent_failure_report_is_counted_once(store_client, clock):
    circuit = Circuit(store_client, "wms", failures=2, window_seconds=60, probe_seconds=30, clock=clock)
    for _ in range(2):  # the same call, resent
        with replayable("deliver:receipt.create:R-1"):
            assert circuit.report("failed", why="HTTP 503") == "closed"
    assert circuit.state()["failures"] == 1
    with replayable("deliver:receipt.create:R-2"):
        assert circuit.report("failed") == "opened"


def test_a_resent_take_and_settle_replay_their_first_reply(store_client, clock):
    batches = Batches(store_client, "wms:kaching", clock=clock)
    batches.add(item("kaching/stock:1", artno="A"))
    takes = []
    for _ in range(2):
        with replayable("flush:kaching:1"):
            takes.append(batches.take("flusher-1", max_items=500, lease_seconds=30, batch_seconds=1))
    assert takes[0].status == takes[1].status == "taken"
    assert takes[0].batch.batch_id == takes[1].batch.batch_id
    settled = []
    for _ in range(2):
        with replayable("settle:kaching:1"):
            settled.append(batches.settle(takes[0].batch, failures="reset"))
    assert settled[0] == settled[1] == (0, [])


def test_a_resent_resume_replays_and_is_audited_once(store_client, clock):
    pauses = Pauses(store_client, {"trademax": "wms"}, clock=clock)
    pauses.pause("trademax", by="alice", reason="maintenance window")
    ended = []
    for _ in range(2):
        with replayable("cli:resume:1"):
            ended.append(pauses.resume("trademax", by="bob", reason="done"))
    assert ended[0] is not None and ended[0] == ended[1] and ended[0].by == "alice"
    assert [entry.action for entry in pauses.history("trademax")].count("resume") == 1
