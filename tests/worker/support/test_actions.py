"""Support actions on parked events (worker.support.actions): atomic, audited, and plain about what they did.

The parked events are made by the real delivery pipeline (``worker.delivery.pipeline.deliver``) with a
scripted
Trademax stub, over fakeredis (bytes and text) and a real valkey-server (``store_client``)."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from worker.encoding import split_event_ref
from tasks.events import validate_event
from worker.delivery.pipeline import deliver
from worker.errors import OutcomeUnknownError, PermanentError, TransientError
from worker.delivery.relay import build_relay
from worker.settings import Settings
from worker.support.actions import (
    DONE, FAILED, SKIPPED, SupportTools, discard_letter, discard_retry, find_letter, resolve_uncertain,
    retry_letter, run_retry_now, tally,
)
from worker.store.audit_log import AuditFilter, AuditLog
from worker.destinations.trademax.client import TrademaxReply

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def example(name: str, **changes) -> dict:
    return {**json.loads((EXAMPLES / f"{name}.json").read_text()), **changes}


class ScriptedTrademax:
    """A stand-in for TrademaxClient: each call takes the next scripted answer (an error to raise, or
    None for a delivered reply) and is recorded in ``calls``."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    def _answer(self, name: str, operation: str) -> TrademaxReply:
        self.calls.append(name)
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        return TrademaxReply(operation=operation, status=200, error_code=0, data={"receipt_id": 7})

    def create_receipt(self, fields):
        return self._answer("create_receipt", "create_receipt")

    def adjust_stock(self, artno, fields):
        return self._answer("adjust_stock", "adjust_stock")

    def create_dispatch(self, fields):
        return self._answer("create_dispatch", "create_dispatch")


def refused() -> PermanentError:
    return PermanentError("", operation="create_receipt", status=400, error_code=451,
                          error_messages=["param order_type is invalid"])


class Published(list):
    """The publisher the support tools use in these tests: records every task message."""

    def __call__(self, message: dict) -> None:
        self.append(message)


@pytest.fixture
def relay(store_client, clock):
    return build_relay(Settings(), redis_client=store_client, client=ScriptedTrademax(), clock=clock,
                       sends=False)


@pytest.fixture
def published():
    return Published()


@pytest.fixture
def tools(relay, published, clock):
    return SupportTools(ledger=relay.ledger, dead_letters=relay.dead_letters, schedule=relay.schedule,
                        publish=published, dispatch_waiters=relay.dispatch_waiters, clock=clock,
                        audit=AuditLog(relay.redis, clock))


def run(relay, operation: str, event: dict, *answers) -> str:
    """Deliver ``event`` once through the real pipeline, Trademax answering ``answers`` in turn."""
    relay.client = ScriptedTrademax(*answers)
    return deliver(relay, operation, event, owner="worker-1")


def refused_receipt(relay, key: str = "R-1") -> str:
    assert run(relay, "receipt.create", example("receipt.create", transaction_id=key), refused()) == "dead"
    return relay.dead_letters.latest_for("receipt.create", key).letter_id


def test_retrying_a_dead_letter_takes_it_reopens_the_event_and_publishes_it_once(relay, tools, published,
                                                                                 clock):
    letter_id = refused_receipt(relay)
    clock.now += 60

    report = retry_letter(tools, letter_id, actor="alice", reason="order type fixed in Trademax")

    assert (report.status, report.operation, report.key) == (DONE, "receipt.create", "R-1")
    assert report.next_step == "wms-relay event receipt.create R-1"
    assert [m["task"] for m in published] == ["trademax.receipt.create"]
    assert published[0]["event"] == validate_event("receipt.create", published[0]["event"]).to_message()
    record = relay.ledger.get("receipt.create", "R-1")
    assert record.state == "accepted" and record.round_attempts == 0
    last = record.history[-1]
    assert (last["from"], last["to"], last["actor"]) == ("dead", "accepted", "alice")
    assert "order type fixed in Trademax" in last["reason"] and letter_id in last["reason"]
    letter = relay.dead_letters.get(letter_id)
    assert (letter.status, letter.closed_by, letter.close_reason, letter.closed_at) == (
        "retried", "alice", "order type fixed in Trademax", clock.now)

    # The published message goes through the pipeline again and is delivered.
    assert run(relay, "receipt.create", published[0]["event"], None) == "delivered"
    assert relay.ledger.get("receipt.create", "R-1").attempts == 2


def test_a_second_retry_of_the_same_letter_is_skipped_and_says_who_acted(relay, tools, published):
    letter_id = refused_receipt(relay)
    assert retry_letter(tools, letter_id, actor="alice").status == DONE
    again = retry_letter(tools, letter_id, actor="bob")
    assert again.status == SKIPPED
    assert "already retried by alice" in again.message
    assert len(published) == 1


def test_dead_letters_are_found_by_id_or_by_operation_and_key(relay, tools):
    letter_id = refused_receipt(relay, "R-9")
    assert find_letter(tools, letter_id).letter_id == letter_id
    assert find_letter(tools, "receipt.create:R-9").letter_id == letter_id
    assert find_letter(tools, "receipt.create:R-404") is None
    assert split_event_ref("stock.adjust:a:b") == ("stock.adjust", "a:b")
    assert split_event_ref("dl-3") is None
    report = retry_letter(tools, "dl-999", actor="alice")
    assert report.status == FAILED and "no such dead letter" in report.message


def test_a_dry_run_changes_nothing(relay, tools, published):
    letter_id = refused_receipt(relay)
    report = retry_letter(tools, letter_id, actor="alice", dry_run=True)
    assert (report.status, report.dry_run) == (DONE, True)
    assert "would be retried" in report.message
    assert published == []
    assert relay.dead_letters.get(letter_id).status == "open"
    assert relay.ledger.get("receipt.create", "R-1").state == "dead"


def test_a_still_invalid_event_stays_a_dead_letter_and_the_person_is_told_why(relay, tools, published):
    invalid = json.loads((EXAMPLES / "invalid-receipt.json").read_text())
    assert run(relay, "receipt.create", invalid) == "dead"
    letter = relay.dead_letters.list()[0]

    report = retry_letter(tools, letter.letter_id, actor="alice")

    assert report.status == SKIPPED
    assert report.message.startswith("still invalid, kept as a dead letter")
    assert "received_date" in report.message
    assert "dead discard" in report.next_step
    assert relay.dead_letters.get(letter.letter_id).status == "open"
    assert published == []


def test_an_invalid_letter_that_now_validates_enters_the_ledger_with_who_retried_it(relay, tools, published):
    # As after a schema fix was deployed: the letter's event is valid today.
    event = example("receipt.create", transaction_id="R-LATE")
    letter_id = relay.dead_letters.add("receipt.create", "R-LATE", event, "invalid",
                                       messages={"order_type": ["Must be one of: PO."]})
    report = retry_letter(tools, letter_id, actor="carol", reason="schema fixed")
    assert report.status == DONE
    record = relay.ledger.get("receipt.create", "R-LATE")
    assert record.state == "accepted"
    assert record.history[-1]["actor"] == "carol"
    assert len(published) == 1


def test_a_conflict_is_never_retried(relay, tools, published):
    run(relay, "receipt.create", example("receipt.create", transaction_id="R-C"), None)
    clash = example("receipt.create", transaction_id="R-C", order_no="OTHER-ORDER")
    assert run(relay, "receipt.create", clash) == "dead"
    letter = relay.dead_letters.latest_for("receipt.create", "R-C")
    report = retry_letter(tools, letter.letter_id, actor="alice")
    assert report.status == SKIPPED and "different" in report.message
    assert published == []
    assert relay.ledger.get("receipt.create", "R-C").state == "delivered"


def test_an_update_that_gave_up_waiting_is_not_retried_while_its_create_is_missing(relay, tools, published):
    update = example("dispatch.update")
    relay.settings = relay.settings.replace(dependency_wait_max_checks=1)
    assert run(relay, "dispatch.update", update) == "waiting"
    assert run(relay, "dispatch.update", update) == "dead"
    letter = relay.dead_letters.latest_for("dispatch.update", update["event_id"])
    assert letter.reason == "dependency_timeout"
    report = retry_letter(tools, letter.letter_id, actor="alice")
    assert report.status == SKIPPED
    assert update["transaction_id"] in report.message and "dispatch.create" in report.next_step
    assert published == []


def test_when_publishing_fails_the_event_is_left_in_the_durable_retry_schedule(relay, tools, clock):
    letter_id = refused_receipt(relay)

    def broker_down(message):
        raise ConnectionError("broker refused")

    tools.publish = broker_down
    report = retry_letter(tools, letter_id, actor="alice")
    assert report.status == DONE and "scheduler" in report.message
    entry = relay.schedule.get("receipt.create:R-1")
    assert entry is not None and entry.due_at == clock.now
    assert entry.message["task"] == "trademax.receipt.create"


def test_discarding_needs_a_reason_closes_the_letter_and_the_ledger_record_with_who(relay, tools, published):
    letter_id = refused_receipt(relay)
    with pytest.raises(ValueError):
        discard_letter(tools, letter_id, actor="alice", reason=" ")
    report = discard_letter(tools, letter_id, actor="alice", reason="order cancelled in the WMS")
    assert report.status == DONE
    letter = relay.dead_letters.get(letter_id)
    assert (letter.status, letter.closed_by) == ("discarded", "alice")
    assert letter.close_reason == "order cancelled in the WMS"
    record = relay.ledger.get("receipt.create", "R-1")
    assert record.state == "discarded"
    assert record.history[-1]["actor"] == "alice"
    assert "order cancelled in the WMS" in record.history[-1]["reason"]
    assert discard_letter(tools, letter_id, actor="bob", reason="again").status == SKIPPED
    assert retry_letter(tools, letter_id, actor="bob").status == SKIPPED
    assert published == []


def relative_adjustment_left_uncertain(relay, key: str = "rel-1") -> None:
    event = example("stock.adjust", event_id=key, type="relative", quantity=-2, reason=2)
    timeout = OutcomeUnknownError("read timeout", operation="adjust_stock")
    assert run(relay, "stock.adjust", event, timeout) == "uncertain"


def test_resolving_uncertain_as_delivered_records_the_person_and_sends_nothing(relay, tools, published):
    relative_adjustment_left_uncertain(relay)
    report = resolve_uncertain(tools, "stock.adjust", "rel-1", delivered=True, actor="dana",
                               reason="adjustment visible in Trademax stock log")
    assert report.status == DONE
    record = relay.ledger.get("stock.adjust", "rel-1")
    assert record.state == "delivered" and record.result == {"confirmed_manually": True}
    assert record.history[-1]["actor"] == "dana"
    assert published == []
    second = resolve_uncertain(tools, "stock.adjust", "rel-1", delivered=False, actor="erik", reason="x")
    assert second.status == SKIPPED and "delivered" in second.message


def test_resolving_uncertain_by_resending_publishes_it_once_and_delivers_it(relay, tools, published):
    relative_adjustment_left_uncertain(relay)
    report = resolve_uncertain(tools, "stock.adjust", "rel-1", delivered=False, actor="dana",
                               reason="not in Trademax's stock log")
    assert report.status == DONE
    assert len(published) == 1
    assert run(relay, "stock.adjust", published[0]["event"], None) == "delivered"
    with pytest.raises(ValueError):
        resolve_uncertain(tools, "stock.adjust", "rel-1", delivered=True, actor="dana", reason="")
    unknown = resolve_uncertain(tools, "stock.adjust", "nope", delivered=True, actor="d", reason="x")
    assert unknown.status == FAILED


def test_run_now_makes_a_scheduled_retry_due_and_skips_what_is_not_scheduled(relay, tools, clock):
    transient = TransientError("", operation="create_receipt", status=503)
    receipt = example("receipt.create", transaction_id="R-T")
    assert run(relay, "receipt.create", receipt, transient) == "retrying"
    assert relay.schedule.get("receipt.create:R-T").due_at > clock.now
    assert run_retry_now(tools, "receipt.create:R-T", actor="erin").status == DONE
    assert relay.schedule.get("receipt.create:R-T").due_at == clock.now
    missing = run_retry_now(tools, "receipt.create:R-NONE", actor="erin")
    assert missing.status == SKIPPED and "not in the retry schedule" in missing.message
    assert tally([missing, run_retry_now(tools, "receipt.create:R-T", actor="erin")]) == \
        {DONE: 1, SKIPPED: 1, FAILED: 0}


def test_discarding_a_scheduled_retry_settles_the_event_once_and_says_who(relay, tools, clock, published):
    transient = TransientError("", operation="create_receipt", status=503)
    assert run(relay, "receipt.create", example("receipt.create", transaction_id="R-D"), transient) == \
        "retrying"
    with pytest.raises(ValueError):
        discard_retry(tools, "receipt.create:R-D", actor="erin", reason=" ")
    first = discard_retry(tools, "receipt.create:R-D", actor="erin", reason="order cancelled")
    assert first.status == DONE
    record = relay.ledger.get("receipt.create", "R-D")
    assert record.state == "discarded" and record.history[-1]["actor"] == "erin"
    assert "order cancelled" in record.history[-1]["reason"]
    assert relay.schedule.get("receipt.create:R-D") is None
    second = discard_retry(tools, "receipt.create:R-D", actor="frank", reason="me too")
    assert second.status == SKIPPED and "not in the retry schedule" in second.message
    # A copy already published meets a settled event: nothing is sent.
    assert run(relay, "receipt.create", example("receipt.create", transaction_id="R-D")) == "discarded"
    assert published == []


def test_a_scheduled_retry_already_being_sent_is_not_discarded(relay, tools):
    transient = TransientError("", operation="create_receipt", status=503)
    run(relay, "receipt.create", example("receipt.create", transaction_id="R-S"), transient)
    relay.ledger.reopen("receipt.create", "R-S", actor="gina", reason="by hand", from_states=("retrying",))
    raced = discard_retry(tools, "receipt.create:R-S", actor="erin", reason="late")
    assert raced.status == SKIPPED and "accepted by gina" in raced.message
    assert relay.schedule.get("receipt.create:R-S") is not None


def test_every_action_but_a_dry_run_is_in_the_audit_log(relay, tools, clock):
    letter_id = refused_receipt(relay, "R-A")
    retry_letter(tools, letter_id, actor="alice", reason="dry", dry_run=True)
    retry_letter(tools, letter_id, actor="alice", reason="fixed the order type")
    retry_letter(tools, letter_id, actor="bob", reason="me too")
    entries, more = tools.audit.page()
    assert more is None
    assert [(e.actor, e.action, e.target, e.status, e.via) for e in entries] == [
        ("bob", "retry", letter_id, SKIPPED, "cli"), ("alice", "retry", letter_id, DONE, "cli")]
    assert entries[0].message.startswith("already retried by alice")
    assert entries[1].reason == "fixed the order type" and entries[1].key == "R-A"
    assert [e.actor for e in tools.audit.page(AuditFilter(actor="alice"))[0]] == ["alice"]
    assert [e.actor for e in tools.audit.page(AuditFilter(text="ME TOO"))[0]] == ["bob"]
    older, cursor = tools.audit.page(limit=1)
    assert [e.actor for e in older] == ["bob"] and cursor == older[0].entry_id
    assert [e.actor for e in tools.audit.page(before=cursor, limit=1)[0]] == ["alice"]


def test_twenty_people_retrying_one_letter_at_once_queue_it_once(shared_redis_server, clock):
    client = shared_redis_server.client()
    client.flushdb()
    relay = build_relay(Settings(), redis_client=client, client=ScriptedTrademax(), clock=clock, sends=False)
    published = Published()
    letter_id = refused_receipt(relay, "R-RACE")
    start = threading.Barrier(20)
    outcomes = []

    def person(n: int) -> None:
        tools = SupportTools(relay.ledger, relay.dead_letters, relay.schedule, published,
                             relay.dispatch_waiters, clock)
        start.wait()
        outcomes.append(retry_letter(tools, letter_id, actor=f"person-{n}"))

    threads = [threading.Thread(target=person, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tally(outcomes) == {DONE: 1, SKIPPED: 19, FAILED: 0}
    assert len(published) == 1
    assert relay.ledger.get("receipt.create", "R-RACE").state == "accepted"
