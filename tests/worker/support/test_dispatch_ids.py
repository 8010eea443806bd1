"""A dispatch.create answered 452 without a dispatch id (worker.delivery.unknown_dispatch_ids) and the
person who records it (worker.support.dispatch_ids): the create is delivered "dispatch id unknown", its
updates wait with reason ``dispatch_id_unknown`` — without a time limit and without growing their history
— and ``set_dispatch_id`` records the id once (two people: one wins), audited, and releases them, each then
sent once with that id.  Input it cannot use is refused and changes nothing.

The real pipeline (``deliver``) and stores over fakeredis (bytes and text) and a real valkey-server, with a
scripted Trademax."""
from __future__ import annotations

import pytest

from tests.worker.support.test_actions import Published, example
from worker.delivery.pipeline import deliver
from worker.delivery.relay import build_relay
from worker.delivery.unknown_dispatch_ids import RECHECK_SECONDS, waits_for_dispatch_id
from worker.destinations.trademax.client import TrademaxReply
from worker.settings import Settings
from worker.store.audit_log import AuditLog
from worker.support.actions import DONE, SupportTools, retry_letter
from worker.support.dispatch_ids import Refused, parse_dispatch_id, set_dispatch_id, unknown_id_of
from worker.support.event_view import describe

TX = "8723GYSFD52F32T"  # the examples' shipment


class DuplicateWithoutData:
    """Trademax that already has every dispatch: a create is answered 452 with an empty ``data``; every
    PATCH is applied and recorded with the dispatch id it was sent to."""

    def __init__(self) -> None:
        self.patches: list[tuple[object, dict]] = []

    def create_dispatch(self, fields):
        return TrademaxReply(operation="create_dispatch", status=400, error_code=452, data=[], duplicate=True)

    def update_dispatch(self, dispatch_id, fields):
        self.patches.append((dispatch_id, dict(fields)))
        return TrademaxReply(operation="update_dispatch", status=200, error_code=0,
                             data={"dispatch_id": dispatch_id, "draft": True})


@pytest.fixture
def trademax():
    return DuplicateWithoutData()


@pytest.fixture
def relay(store_client, clock, trademax):
    return build_relay(Settings(), redis_client=store_client, client=trademax, clock=clock, sends=False)


@pytest.fixture
def desk(relay, clock):
    return SupportTools(ledger=relay.ledger, dead_letters=relay.dead_letters, schedule=relay.schedule,
                        publish=Published(), dispatch_waiters=relay.dispatch_waiters, clock=clock,
                        audit=AuditLog(relay.redis, clock))


def updates(n: int = 2) -> list[dict]:
    return [example("dispatch.update", event_id=f"upd-{i}",
                    packages=[{**example("dispatch.update")["packages"][0], "package_id": 10 + i}])
            for i in range(n)]


def run_due(relay, clock, *, after: float = 0.0) -> list[str]:
    """The scheduler's part: publish (here: deliver) every due entry; the refs delivered."""
    clock.now += after
    ran = []
    for ref, message in relay.schedule.take_due():
        relay.schedule.confirm(ref)
        operation = message["task"].split(".", 1)[1]
        deliver(relay, operation, message["event"], owner=f"w-{ref}")
        ran.append(ref)
    return ran


def created_without_id(relay) -> None:
    assert deliver(relay, "dispatch.create", example("dispatch.create"), owner="w-0") == "delivered"


def test_a_452_without_data_is_delivered_with_dispatch_id_unknown_and_listed(relay, desk):
    created_without_id(relay)
    record = relay.ledger.get("dispatch.create", TX)
    assert record.result == {"duplicate": True, "status": 400}
    assert "dispatch id unknown" in record.history[-1]["reason"]
    assert f"wms-relay dispatch set-id {TX} DISPATCH_ID" in record.history[-1]["reason"]
    assert [(u.transaction_id, u.waiting) for u in relay.dispatch_waiters.unknown_ids()] == [(TX, 0)]
    assert unknown_id_of(describe(relay, "dispatch.create", TX)) == TX


def test_its_updates_wait_for_a_person_without_a_time_limit_or_a_growing_history(relay, clock, trademax):
    created_without_id(relay)
    first, second = updates()
    for update in (first, second):
        assert deliver(relay, "dispatch.update", update, owner="w-1") == "waiting"
    record = relay.ledger.get("dispatch.update", "upd-0")
    assert record.history[-1]["reason"].startswith("dispatch_id_unknown: ")
    assert unknown_id_of(describe(relay, "dispatch.update", "upd-0")) == TX
    length = len(record.history)
    # Far past DEPENDENCY_WAIT_MAX_CHECKS re-checks: still waiting, nothing new in its story, nothing sent.
    for _ in range(relay.settings.dependency_wait_max_checks + 5):
        ran = run_due(relay, clock, after=RECHECK_SECONDS)
        assert sorted(ran) == ["dispatch.update:upd-0", "dispatch.update:upd-1"]
    record = relay.ledger.get("dispatch.update", "upd-0")
    assert record.state == "waiting" and len(record.history) == length
    assert relay.dead_letters.list() == [] and trademax.patches == []
    assert [(u.transaction_id, u.waiting) for u in relay.dispatch_waiters.unknown_ids()] == [(TX, 2)]


def test_updates_that_waited_for_the_create_wait_for_the_id_once_it_is_delivered_without_one(relay, clock):
    (update,) = updates(1)
    assert deliver(relay, "dispatch.update", update, owner="w-1") == "waiting"
    assert "waiting for dispatch.create" in relay.ledger.get("dispatch.update", "upd-0").history[-1]["reason"]
    created_without_id(relay)  # wakes its waiters: due now
    assert run_due(relay, clock) == ["dispatch.update:upd-0"]
    assert waits_for_dispatch_id(relay.ledger.get("dispatch.update", "upd-0").history)


def test_recording_the_id_releases_the_waiting_updates_each_sent_once_with_it(relay, desk, clock, trademax):
    created_without_id(relay)
    for update in updates():
        deliver(relay, "dispatch.update", update, owner="w-1")
    report = set_dispatch_id(desk, TX, " 390333 ", actor="alice", reason="read in Trademax's dashboard")
    assert report.status == DONE and "2 waiting" in report.message
    record = relay.ledger.get("dispatch.create", TX)
    assert record.state == "delivered" and record.result["dispatch_id"] == 390333
    step = record.history[-1]
    assert (step["from"], step["to"], step["actor"]) == ("delivered", "delivered", "alice")
    assert "read in Trademax's dashboard" in step["reason"]
    assert relay.dispatch_waiters.unknown_ids() == []

    assert sorted(run_due(relay, clock)) == ["dispatch.update:upd-0", "dispatch.update:upd-1"]
    assert sorted((dispatch_id, fields["packages"][0]["package_id"]) for dispatch_id, fields in
                  trademax.patches) == [(390333, 10), (390333, 11)]
    assert all(relay.ledger.get("dispatch.update", f"upd-{i}").state == "delivered" for i in range(2))
    assert run_due(relay, clock, after=RECHECK_SECONDS) == [] and len(trademax.patches) == 2  # once each
    (entry,), _ = desk.audit.page()
    assert (entry.actor, entry.action, entry.target, entry.status) == (
        "alice", "dispatch-set-id", f"dispatch.create:{TX}", "done")
    assert entry.reason == "read in Trademax's dashboard"


def test_of_two_people_recording_an_id_the_second_is_refused_and_nothing_changes(relay, desk):
    created_without_id(relay)
    set_dispatch_id(desk, TX, "390333", actor="alice", reason="dashboard")
    with pytest.raises(Refused, match="already has dispatch id 390333"):
        set_dispatch_id(desk, TX, "390334", actor="bob", reason="a colleague said so")
    assert relay.ledger.get("dispatch.create", TX).result["dispatch_id"] == 390333
    assert [e.actor for e in desk.audit.page()[0]] == ["alice"]


def test_a_create_answered_with_its_id_cannot_be_given_another(relay, desk):
    relay.client = type("Answering", (), {"create_dispatch": lambda self, fields: TrademaxReply(
        operation="create_dispatch", status=200, error_code=0, data={"dispatch_id": 123})})()
    created_without_id(relay)
    with pytest.raises(Refused, match="already has dispatch id 123"):
        set_dispatch_id(desk, TX, "390333", actor="alice", reason="typo")
    assert relay.ledger.get("dispatch.create", TX).result["dispatch_id"] == 123


@pytest.mark.parametrize("transaction_id, dispatch_id, reason, says", [
    ("NO-SUCH-TX", "390333", "x", "knows no dispatch.create with transaction_id 'NO-SUCH-TX'"),
    (TX, "", "x", "DISPATCH_ID is empty"),
    (TX, "39O333", "x", "'39O333' is not a Trademax dispatch id"),
    (TX, "-5", "x", "is not a Trademax dispatch id"),
    (TX, "0", "x", "is not a Trademax dispatch id"),
    (TX, "1" * 19, "x", "is not a Trademax dispatch id"),
    (TX, "12\n3", "x", r"'12\\n3' is not"),
    (TX, "390333", "  ", "--reason must say"),
    ("", "390333", "x", "cannot be a shipment's transaction_id"),
    ("T\x1bX", "390333", "x", "cannot be a shipment's transaction_id"),
])
def test_input_it_cannot_use_is_refused_in_a_sentence_and_changes_nothing(relay, desk, transaction_id,
                                                                          dispatch_id, reason, says):
    created_without_id(relay)
    before = relay.ledger.get("dispatch.create", TX)
    with pytest.raises(Refused, match=says.replace("(", r"\(")) as refused:
        set_dispatch_id(desk, transaction_id, dispatch_id, actor="alice", reason=reason)
    assert str(refused.value).endswith((".", ")", "changed."))
    assert relay.ledger.get("dispatch.create", TX) == before
    assert desk.audit.page()[0] == []


def test_a_create_that_is_not_delivered_is_refused(relay, desk):
    relay.ledger.accept({"operation": "dispatch.create", "key": "T-OPEN",
                         "fields": {"transaction_id": "T-OPEN"}})
    with pytest.raises(Refused, match="is accepted, not delivered"):
        set_dispatch_id(desk, "T-OPEN", "390333", actor="alice", reason="x")


@pytest.mark.parametrize("typed, number", [("123", 123), (" 390333\t", 390333), ("9" * 18, 10**18 - 1)])
def test_dispatch_ids_have_trademax_shape(typed, number):
    assert parse_dispatch_id(typed) == number


def test_a_dependency_timeout_letter_of_such_a_shipment_can_be_retried_and_then_waits(relay, desk, clock):
    (update,) = updates(1)
    relay.settings = relay.settings.replace(dependency_wait_max_checks=1)
    assert deliver(relay, "dispatch.update", update, owner="w-1") == "waiting"
    assert run_due(relay, clock, after=relay.settings.dependency_wait_seconds) == ["dispatch.update:upd-0"]
    (letter,) = relay.dead_letters.list()
    assert letter.reason == "dependency_timeout"
    created_without_id(relay)
    report = retry_letter(desk, letter.letter_id, actor="alice", reason="create is there now")
    assert report.status == DONE, report.message
    (message,) = desk.publish
    assert deliver(relay, "dispatch.update", message["event"], owner="w-2") == "waiting"
    assert waits_for_dispatch_id(relay.ledger.get("dispatch.update", "upd-0").history)
