"""What ``deliver`` promises, as a table: one row per way a run of ``worker.delivery.pipeline.deliver`` ends,
each a case through the real pipeline (fakeredis, every destination on, a scripted client at the seam:
tests/fixtures/every_destination.py).  A row says what happened before (through the same relay), what the
destination answers, the state ``deliver`` returns and the ledger keeps, how many requests the run sent,
and the one thing that makes that state — a retry entry, a parked delivery, a dead letter and its reason,
a batch, another worker's lease.

Every state a delivery can be in has a row (the last test holds the table to the ledger's states), so each
is a place a person can see: delivered, retrying, waiting, superseded, uncertain, dead, discarded, and the
two a worker moves on by itself — accepted (in a batch), sending (another worker's).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tasks.events import InvalidEvent, validate_event
from tests.fixtures.clock import T0
from tests.fixtures.every_destination import count, every_destination_relay, every_destination_settings
from worker.delivery import stock_turn
from worker.delivery.pipeline import deliver
from worker.delivery.relay import Relay
from worker.destinations.trademax.client import TrademaxReply
from worker.errors import OutcomeUnknownError, PermanentError, TransientError
from worker.settings import Settings
from worker.store.ledger import STATES
from worker.support.actions import DONE, SupportTools, discard_letter

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
OWNER = "w-table"


def example(operation: str, **changes) -> dict:
    return {**json.loads((EXAMPLES / f"{operation}.json").read_text()), **changes}


RECEIPT = example("receipt.create", transaction_id="R-1")
UPDATE = example("dispatch.update")  # its dispatch.create never came
ADJUSTMENT = count("r-1", -2, kind="relative")  # adding twice is double: never resent blindly


class WorkerDied(BaseException):
    """Stands for SIGKILL mid-send: nothing after the request runs (no answer, no ledger write)."""


AS_RETURNED = "as returned"


def same(settings: Settings) -> Settings:
    return settings


def nothing(relay) -> None:
    pass


@dataclass(frozen=True)
class Row:
    ends: str  # what deliver returns
    how: str  # what made it end so (the case's id)
    operation: str
    event: dict
    before: Callable[[Relay], None]  # what happened before, through the same relay
    answers: tuple  # the destination's scripted answers, in turn (None: delivered)
    sends: int  # requests this run sent
    shows: Callable[[Relay], None]  # the one thing that makes the state
    ledger: str | None = AS_RETURNED  # the record's state afterwards (None: no record)
    destination: str = "trademax"
    settings: Callable[[Settings], Settings] = same

    @property
    def key(self) -> str | None:
        try:
            return validate_event(self.operation, self.event).key
        except InvalidEvent:
            return None


# -- what happened before a row's run ---------------------------------------------------------------

def delivered_once(event: dict, operation: str):
    def before(relay) -> None:
        assert deliver(relay, operation, event, owner="w-before") == "delivered"
    return before


def died_sending(event: dict, operation: str):
    """A worker took the event, sent it and was killed before the answer; its lease has run out since."""
    def before(relay) -> None:
        relay.clients["trademax"].answers = [WorkerDied()]
        with pytest.raises(WorkerDied):
            deliver(relay, operation, event, owner="w-dead")
        relay.clock.advance(relay.settings.claim_lease_seconds + 1)
    return before


def paused(relay) -> None:
    relay.flow.pauses.pause("trademax", by="alice", reason="Trademax maintenance")


def older_count_on_the_wire(relay) -> None:
    """Another worker holds the SKU's turn: it is sending an older count (or was killed doing so, and the
    turn has not expired yet)."""
    turn = relay.stock_order.acquire("nw", "A-1", "2024-05-14T09:00:00Z", "w-other")
    assert turn.verdict == "acquired"


def update_waited_once(relay) -> None:
    assert deliver(relay, "dispatch.update", UPDATE, owner="w-before") == "waiting"


def discarded_by_a_person(relay) -> None:
    relay.clients["trademax"].answers = [refusal()]
    assert deliver(relay, "receipt.create", RECEIPT, owner="w-before") == "dead"
    tools = SupportTools(ledger=relay.ledger, dead_letters=relay.dead_letters, schedule=relay.schedule,
                         publish=lambda message: None, dispatch_waiters=relay.dispatch_waiters,
                         clock=relay.clock)
    assert discard_letter(tools, "receipt.create:R-1", actor="ann", reason="order cancelled").status == DONE


def claimed_by_another_worker(relay) -> None:
    relay.ledger.accept_and_claim(validate_event("receipt.create", RECEIPT), "w-other")


# -- answers --------------------------------------------------------------------------------------

def refusal() -> PermanentError:
    return PermanentError("", operation="create_receipt", status=400, error_code=451,
                          error_messages=["param order_type is invalid"])


def unavailable() -> TransientError:
    return TransientError("Service Unavailable", operation="create_receipt", status=503)


DUPLICATE = TrademaxReply(operation="create_receipt", status=400, error_code=452, data=None, duplicate=True)


# -- the one thing that makes each state (asserted on the relay after the row's run) -------------------

def record(relay, operation: str, key: str, destination: str = "trademax"):
    return relay.ledger_of(destination).get(operation, key)


def answered_200(relay) -> None:
    receipt = record(relay, "receipt.create", "R-1")
    assert [a["outcome"] for a in receipt.attempts_log] == ["delivered"] and receipt.result["status"] == 200
    assert relay.schedule.list() == [] and relay.dead_letters.list() == []


def trademax_had_it(relay) -> None:
    receipt = record(relay, "receipt.create", "R-1")
    assert [a["outcome"] for a in receipt.attempts_log] == ["duplicate"] and receipt.result["duplicate"]
    assert receipt.history[-1]["reason"] == "Trademax already had it (duplicate)"


def sent_once_only(relay) -> None:
    assert record(relay, "receipt.create", "R-1").attempts == 1
    assert len(relay.clients["trademax"].sent) == 1


def retry_entry(ref: str, due: float):
    """A retry entry for ``ref`` due at ``due``, and no attempt logged (nothing was sent)."""
    def shows(relay) -> None:
        entry = relay.schedule.get(ref)
        assert entry is not None and entry.due_at == pytest.approx(due), entry
        assert entry.message["task"] == "trademax." + ref.split(":")[0]
        assert record(relay, *ref.split(":")).attempts_log == ()
    return shows


def retry_entry_after_backoff(relay) -> None:
    entry = relay.schedule.get("receipt.create:R-1")
    assert entry is not None and T0 <= entry.due_at <= T0 + relay.settings.retry_base_seconds  # backoff 1
    assert [a["outcome"] for a in record(relay, "receipt.create", "R-1").attempts_log] == ["transient"]


def parked_without_an_attempt(relay) -> None:
    assert relay.flow.parking("trademax").count() == 1  # released once Trademax is resumed
    receipt = record(relay, "receipt.create", "R-1")
    assert receipt.attempts == 0 and "Trademax is paused" in receipt.history[-1]["reason"]


def waiting_for_its_create(relay) -> None:
    retry_entry(f"dispatch.update:{UPDATE['event_id']}", T0 + relay.settings.dependency_wait_seconds)(relay)
    assert relay.dispatch_waiters.take_waiters(UPDATE["transaction_id"]) == [
        f"dispatch.update:{UPDATE['event_id']}"]  # woken when the create is delivered


def waiting_for_its_turn(relay) -> None:
    """Not claimed (no attempt counted: tests/worker/delivery/test_sku_turn_wait.py), it looks again soon."""
    retry_entry("stock.adjust:c-1", T0 + stock_turn.RETRY_SECONDS)(relay)
    assert record(relay, "stock.adjust", "c-1").attempts == 0


def newer_count_sent(relay) -> None:
    reason = record(relay, "stock.adjust", "c-old").history[-1]["reason"]
    assert "a newer absolute value (occurred_at 2024-05-14T12:00:00" in reason
    assert [call[2] for call in relay.clients["trademax"].sent] == [5]  # only the newer count


def parked_for_a_person(because: str):
    def shows(relay) -> None:
        adjustment = record(relay, "stock.adjust", "r-1")
        assert because in adjustment.history[-1]["reason"]
        assert relay.schedule.list() == [] and relay.dead_letters.list() == []  # a person decides
    return shows


def dead_letter(reason: str, *, messages: list | None = None, retried: bool = False):
    """One open dead letter, for Trademax, saying why; no retry entry left (``retried``: the waiting
    update's own entry stays, and finds it dead when it comes)."""
    def shows(relay) -> None:
        (letter,) = relay.dead_letters.list()
        assert (letter.reason, letter.destination, letter.status) == (reason, "trademax", "open")
        if messages is not None:
            assert letter.messages == messages
        assert len(relay.schedule.list()) == int(retried)
    return shows


def conflict_letter(relay) -> None:
    (letter,) = relay.dead_letters.list()
    assert letter.reason == "conflict" and len(letter.fingerprints) == 2
    assert letter.event["order_no"] == "IO-OTHER"  # the refused payload, kept for a person
    assert len(relay.clients["trademax"].sent) == 1  # the first payload's send only


def discarded_letter(relay) -> None:
    letter = relay.dead_letters.latest_for("receipt.create", "R-1")
    assert (letter.status, letter.closed_by) == ("discarded", "ann") and relay.dead_letters.list() == []


def pending_in_its_batch(relay) -> None:
    assert relay.flow.batches("stocktrim").pending_count() == 1
    assert relay.clients["stocktrim"].sent == []


def another_workers_lease(relay) -> None:
    assert record(relay, "receipt.create", "R-1").lease_owner == "w-other"


# -- the table ----------------------------------------------------------------------------------------

LOST = OutcomeUnknownError("read timeout", operation="adjust_stock")
INVALID = json.loads((EXAMPLES / "invalid-receipt.json").read_text())
DIED_SENDING = died_sending(ADJUSTMENT, "stock.adjust")
OLDER, NEWER = count("c-old", 9, at="2024-05-14T08:00:00Z"), count("c-new", 5, at="2024-05-14T12:00:00Z")

TABLE = [
    Row("delivered", "answered", "receipt.create", RECEIPT, nothing, (None,), 1, answered_200),
    Row("delivered", "duplicate", "receipt.create", RECEIPT, nothing, (DUPLICATE,), 1, trademax_had_it),
    Row("delivered", "met_again", "receipt.create", RECEIPT, delivered_once(RECEIPT, "receipt.create"),
        (), 0, sent_once_only),
    Row("retrying", "transient", "receipt.create", RECEIPT, nothing, (unavailable(),), 1,
        retry_entry_after_backoff),
    Row("retrying", "paused", "receipt.create", RECEIPT, paused, (), 0, parked_without_an_attempt),
    Row("waiting", "create_missing", "dispatch.update", UPDATE, nothing, (), 0, waiting_for_its_create),
    Row("waiting", "sku_turn_busy", "stock.adjust", count(), older_count_on_the_wire, (), 0,
        waiting_for_its_turn),
    Row("superseded", "older_count", "stock.adjust", OLDER, delivered_once(NEWER, "stock.adjust"), (), 0,
        newer_count_sent),
    Row("uncertain", "answer_lost", "stock.adjust", ADJUSTMENT, nothing, (LOST,), 1,
        parked_for_a_person("not safe to resend")),
    Row("uncertain", "worker_died_sending", "stock.adjust", ADJUSTMENT, DIED_SENDING, (), 0,
        parked_for_a_person("a worker stopped while sending it")),
    Row("dead", "refused", "receipt.create", RECEIPT, nothing, (refusal(),), 1,
        dead_letter("permanent", messages=["param order_type is invalid"])),
    Row("dead", "retries_exhausted", "receipt.create", RECEIPT, nothing, (unavailable(),), 1,
        dead_letter("exhausted"), settings=lambda s: s.replace(retry_max_attempts=1)),
    Row("dead", "invalid", "receipt.create", INVALID, nothing, (), 0, dead_letter("invalid"), ledger=None),
    Row("dead", "conflict", "receipt.create", {**RECEIPT, "order_no": "IO-OTHER"},
        delivered_once(RECEIPT, "receipt.create"), (), 0, conflict_letter, ledger="delivered"),
    Row("dead", "dependency_timeout", "dispatch.update", UPDATE, update_waited_once, (), 0,
        dead_letter("dependency_timeout", retried=True),
        settings=lambda s: s.replace(dependency_wait_max_checks=1)),
    Row("discarded", "by_a_person", "receipt.create", RECEIPT, discarded_by_a_person, (), 0,
        discarded_letter),
    Row("accepted", "batched", "stock.adjust", count(), nothing, (), 0, pending_in_its_batch,
        destination="stocktrim", settings=lambda s: s.with_flow("stocktrim", batch_max=100)),
    Row("sending", "claimed_elsewhere", "receipt.create", RECEIPT, claimed_by_another_worker, (), 0,
        another_workers_lease),
]


@pytest.mark.parametrize("row", TABLE, ids=lambda row: f"{row.ends}-{row.how}")
def test_deliver_ends_where_its_row_says(row, clock):
    relay = every_destination_relay(settings=row.settings(every_destination_settings()), clock=clock)
    row.before(relay)
    client = relay.clients[row.destination]
    client.answers, sent_before = list(row.answers), len(client.sent)

    assert deliver(relay, row.operation, row.event, owner=OWNER, destination=row.destination) == row.ends

    found = relay.ledger_of(row.destination).get(row.operation, row.key) if row.key else None
    assert (found and found.state) == (row.ends if row.ledger == AS_RETURNED else row.ledger)
    assert len(client.sent) - sent_before == row.sends
    row.shows(relay)


def test_the_table_has_a_row_for_every_state_a_delivery_can_be_in():
    assert sorted({row.ends for row in TABLE}) == sorted(STATES)
