"""A one-way dispatch change (publish, an update with draft false, delete) whose first attempt landed
unanswered: the resend is refused by Trademax, and the pipeline reads the dispatch back instead of
dead-lettering a change that landed (worker/destinations/trademax/read_back.py); an update that keeps the
draft is not one-way, and its refusal stays a dead letter.  The real ``worker.delivery.pipeline.deliver``
over fakeredis, with a scripted Trademax that keeps a dispatch's draft flag the way Trademax does."""
from __future__ import annotations

import json
from pathlib import Path

import fakeredis
import pytest

from worker.delivery.pipeline import deliver
from worker.errors import OutcomeUnknownError, PermanentError, TransientError
from worker.delivery.relay import build_relay
from worker.settings import Settings
from worker.destinations.trademax.client import TrademaxReply

EXAMPLES = Path(__file__).resolve().parents[4] / "examples"
T0 = 1_714_550_000.0
DISPATCH_ID = 4711


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


class WorkerDied(BaseException):
    """Stands for SIGKILL mid-send: nothing after the request runs."""


class DispatchTrademax:
    """One dispatch, a draft until published, gone once deleted; like Trademax, publishing a published
    dispatch or deleting a deleted one is refused.  ``lose_answer``: the next publish/delete is applied and
    then raises (an unanswered send); ``read_fails``: GET answers 500."""

    def __init__(self, *, lose_answer: BaseException | None = None, read_fails: bool = False) -> None:
        self.draft, self.exists, self.packages = True, False, set()
        self.lose_answer, self.read_fails = lose_answer, read_fails
        self.calls: list[str] = []

    def _reply(self, operation: str, data: dict) -> TrademaxReply:
        return TrademaxReply(operation=operation, status=200, error_code=0, data=data)

    def _lost(self) -> None:
        answer, self.lose_answer = self.lose_answer, None
        if answer is not None:
            raise answer

    def create_dispatch(self, fields):
        self.calls.append("create")
        self.exists = True
        return self._reply("create_dispatch", {"dispatch_id": DISPATCH_ID, "draft": True})

    def publish_dispatch(self, dispatch_id, fields):
        self.calls.append("publish")
        if not self.draft:
            raise PermanentError(f"dispatch {dispatch_id} is published and cannot be changed",
                                 operation="publish_dispatch", status=400, error_code=1)
        self.draft = False
        self._lost()
        return self._reply("publish_dispatch", {"dispatch_id": dispatch_id, "draft": False})

    def update_dispatch(self, dispatch_id, fields):
        """Like the client: draft is sent as the event has it, else true; false publishes."""
        self.calls.append("update")
        if not self.draft:
            raise PermanentError(f"dispatch is published: dispatch {dispatch_id} cannot be changed",
                                 operation="update_dispatch", status=400, error_code=1)
        self.packages |= {p["package_id"] for p in fields.get("packages") or ()}
        self.draft = fields.get("draft", True)
        self._lost()
        return self._reply("update_dispatch", {"dispatch_id": dispatch_id, "draft": self.draft})

    def delete_dispatch(self, dispatch_id):
        self.calls.append("delete")
        if not self.exists:
            raise PermanentError(f"dispatch {dispatch_id} not found", operation="delete_dispatch",
                                 status=404, error_code=1)
        self.exists = False
        self._lost()
        return self._reply("delete_dispatch", {"dispatch_id": dispatch_id, "deleted": True})

    def get_dispatch(self, dispatch_id):
        self.calls.append("get")
        if self.read_fails:
            raise TransientError("general server-side error", operation="get_dispatch", status=500)
        if not self.exists:
            raise PermanentError(f"dispatch {dispatch_id} not found", operation="get_dispatch", status=404,
                                 error_code=1)
        return self._reply("get_dispatch", {"dispatch_id": dispatch_id, "draft": self.draft, "packages": [
            {"package_id": package_id} for package_id in sorted(self.packages)]})


def timeout() -> OutcomeUnknownError:
    return OutcomeUnknownError("read timeout after sending", operation="dispatch")


@pytest.fixture
def relay_with():
    def build(trademax: DispatchTrademax):
        settings = Settings(trademax_api_key="k", trademax_secret="s", retry_base_seconds=0.1)
        relay = build_relay(settings, redis_client=fakeredis.FakeRedis(decode_responses=True),
                            client=trademax, clock=lambda: T0)
        assert deliver(relay, "dispatch.create", example("dispatch.create"), owner="w0") == "delivered"
        return relay
    return build


def record(relay, operation: str):
    return relay.ledger.get(operation, example(operation)["event_id"])


def test_a_publish_that_landed_unanswered_is_delivered_when_the_read_back_shows_it_published(relay_with):
    trademax = DispatchTrademax(lose_answer=timeout())
    relay = relay_with(trademax)
    assert deliver(relay, "dispatch.publish", example("dispatch.publish"), owner="w1") == "retrying"
    assert deliver(relay, "dispatch.publish", example("dispatch.publish"), owner="w2") == "delivered"
    assert trademax.calls == ["create", "publish", "publish", "get"]
    story = record(relay, "dispatch.publish")
    assert story.result["draft"] is False and story.result["read_back"] is True
    assert "Trademax shows dispatch 4711 published" in story.history[-1]["reason"]
    assert [a["outcome"] for a in story.attempts_log] == ["outcome_unknown", "permanent"]
    assert relay.dead_letters.list() == []


def test_a_delete_whose_worker_died_mid_send_is_delivered_when_the_dispatch_is_gone(relay_with):
    trademax = DispatchTrademax(lose_answer=WorkerDied())
    relay = relay_with(trademax)
    with pytest.raises(WorkerDied):
        deliver(relay, "dispatch.delete", example("dispatch.delete"), owner="w1")
    relay.redis.hset(relay.ledger.record_key("dispatch.delete", example("dispatch.delete")["event_id"]),
                     "l", f"{T0 - 1} w1")  # the dead worker's lease has run out
    assert deliver(relay, "dispatch.delete", example("dispatch.delete"), owner="w2") == "delivered"
    assert trademax.calls == ["create", "delete", "delete", "get"]
    story = record(relay, "dispatch.delete")
    assert story.result["deleted"] is True
    assert "no longer has dispatch 4711" in story.history[-1]["reason"]


def publishing_update(**changes) -> dict:
    return {**example("dispatch.update"), "draft": False, **changes}


def test_a_publishing_update_that_landed_unanswered_is_delivered_when_the_dispatch_holds_it(relay_with):
    trademax = DispatchTrademax(lose_answer=timeout())
    relay = relay_with(trademax)
    assert deliver(relay, "dispatch.update", publishing_update(), owner="w1") == "retrying"
    assert deliver(relay, "dispatch.update", publishing_update(), owner="w2") == "delivered"
    assert trademax.calls == ["create", "update", "update", "get"]
    story = record(relay, "dispatch.update")
    assert story.result["read_back"] is True and "published" in story.history[-1]["reason"]


def test_a_publishing_update_refused_after_someone_else_published_is_a_dead_letter(relay_with):
    """The answer was lost, but the dispatch was published by a dispatch.publish without this update's
    packages: the read-back does not take the refusal for a landed update."""
    trademax = DispatchTrademax(lose_answer=timeout())
    relay = relay_with(trademax)
    trademax.update_dispatch = lambda dispatch_id, fields: (_ for _ in ()).throw(timeout())
    assert deliver(relay, "dispatch.update", publishing_update(), owner="w1") == "retrying"
    trademax.draft = False  # a publish went first
    del trademax.update_dispatch
    assert deliver(relay, "dispatch.update", publishing_update(), owner="w2") == "dead"
    (letter,) = relay.dead_letters.list()
    assert "dispatch is published" in letter.detail and "without package(s) 2" in letter.detail


def test_an_update_keeping_the_draft_refused_as_published_is_a_dead_letter_without_a_read_back(relay_with):
    trademax = DispatchTrademax(lose_answer=timeout())
    relay = relay_with(trademax)
    update = example("dispatch.update")
    assert deliver(relay, "dispatch.update", update, owner="w1") == "retrying"
    trademax.draft = False  # published meanwhile: Trademax refuses every later change
    assert deliver(relay, "dispatch.update", update, owner="w2") == "dead"
    assert trademax.calls == ["create", "update", "update"]  # nothing to read: keeping a draft is not one-way
    (letter,) = relay.dead_letters.list()
    assert letter.reason == "permanent" and "dispatch is published" in letter.detail


def test_a_refusal_on_the_first_attempt_is_not_second_guessed(relay_with):
    trademax = DispatchTrademax()
    trademax.draft = False  # published by someone else before our first attempt
    relay = relay_with(trademax)
    assert deliver(relay, "dispatch.publish", example("dispatch.publish"), owner="w1") == "dead"
    assert "get" not in trademax.calls
    (letter,) = relay.dead_letters.list()
    assert letter.reason == "permanent"


def test_a_refused_resend_the_read_back_does_not_explain_is_a_dead_letter_saying_what_it_read(relay_with):
    trademax = DispatchTrademax(lose_answer=timeout())
    relay = relay_with(trademax)
    assert deliver(relay, "dispatch.publish", example("dispatch.publish"), owner="w1") == "retrying"
    trademax.draft = True  # pretend the first attempt did not stick; the resend is still refused
    trademax.publish_dispatch = lambda dispatch_id, fields: (_ for _ in ()).throw(
        PermanentError("packages missing", operation="publish_dispatch", status=400, error_code=3))
    assert deliver(relay, "dispatch.publish", example("dispatch.publish"), owner="w2") == "dead"
    (letter,) = relay.dead_letters.list()
    assert "packages missing" in letter.detail and "draft=True" in letter.detail


def test_an_unreadable_dispatch_retries_later_instead_of_deciding(relay_with):
    trademax = DispatchTrademax(lose_answer=timeout(), read_fails=True)
    relay = relay_with(trademax)
    assert deliver(relay, "dispatch.publish", example("dispatch.publish"), owner="w1") == "retrying"
    assert deliver(relay, "dispatch.publish", example("dispatch.publish"), owner="w2") == "retrying"
    assert "could not read dispatch 4711 back" in record(relay, "dispatch.publish").history[-1]["reason"]
    trademax.read_fails = False
    assert deliver(relay, "dispatch.publish", example("dispatch.publish"), owner="w3") == "delivered"
