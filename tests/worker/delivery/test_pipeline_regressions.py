"""Delivery-pipeline regressions found by the chaos run (benchmarks/chaos.py) and the pipeline fuzz test
(tests/integration/test_fuzz_pipeline.py), on the real ``worker.delivery.pipeline.deliver`` over fakeredis
with a
scripted Trademax stub.

- Absolute stock counts whose send may have reached Trademax without an answer (a read timeout, or the
  worker dying mid-send) still order older counts after them: the older count is superseded, never
  applied over the newer one.  The chaos run found the worker-death case: an older count was applied in
  the seconds between the dead worker's stock lock expiring and its message coming back.
- An invalid event carrying a lone surrogate (JSON's ``\\udc80`` escape) is dead-lettered like any other
  (it used to make the dead letter itself fail on the store's UTF-8 encoding, and the event vanished).
"""
from __future__ import annotations

import fakeredis
import pytest

from worker.delivery.pipeline import deliver
from worker.errors import OutcomeUnknownError
from worker.delivery.relay import build_relay
from worker.settings import Settings
from worker.destinations.trademax.client import TrademaxReply

T0 = 1_714_550_000.0


class WorkerDied(BaseException):
    """Stands for SIGKILL mid-send: nothing after the request runs (no outcome, no ledger transition)."""


class StockTrademax:
    """adjust_stock takes the next scripted answer (an exception to raise, or None: applied); every
    call's quantity is recorded in ``sent``."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.sent: list[int] = []

    def adjust_stock(self, artno, fields):
        self.sent.append(fields["quantity"])
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            raise answer
        return TrademaxReply(operation="adjust_stock", status=200, error_code=0,
                             data={"artno": artno, "new_quantity": fields["quantity"]})


def count(event_id: str, quantity: int, occurred_at: str) -> dict:
    return {"event_id": event_id, "occurred_at": occurred_at, "artno": "123", "warehouse_id": "nw",
            "quantity": quantity, "type": "absolute"}


NEWER = count("count-newer", 50, "2024-05-14T10:00:00Z")
OLDER = count("count-older", 99, "2024-05-14T08:00:00Z")
NEWEST = count("count-newest", 7, "2024-05-14T12:00:00Z")


@pytest.fixture
def relay_with():
    def build(trademax: StockTrademax):
        settings = Settings(trademax_api_key="k", trademax_secret="s", retry_base_seconds=0.1)
        return build_relay(settings, redis_client=fakeredis.FakeRedis(decode_responses=True), client=trademax,
                           clock=lambda: T0)
    return build


def state(relay, key: str) -> str:
    return relay.ledger.get("stock.adjust", key).state


def test_an_older_count_after_a_newer_one_timed_out_is_superseded_and_not_sent(relay_with):
    trademax = StockTrademax(OutcomeUnknownError("read timeout", operation="adjust_stock"))
    relay = relay_with(trademax)
    assert deliver(relay, "stock.adjust", NEWER, owner="w1") == "retrying"
    assert deliver(relay, "stock.adjust", OLDER, owner="w2") == "superseded"
    assert trademax.sent == [50]
    # The newer count's own retry is not superseded by itself, and a still newer count goes out.
    assert deliver(relay, "stock.adjust", NEWER, owner="w3") == "delivered"
    assert deliver(relay, "stock.adjust", NEWEST, owner="w4") == "delivered"
    assert trademax.sent == [50, 50, 7]


def test_an_older_count_after_a_worker_died_sending_a_newer_one_is_superseded(relay_with):
    trademax = StockTrademax(WorkerDied())
    relay = relay_with(trademax)
    with pytest.raises(WorkerDied):
        deliver(relay, "stock.adjust", NEWER, owner="w1")
    # The stock lock is gone (its TTL passed) before the newer count's message comes back.
    for key in relay.redis.keys("wms:stock:lock:*"):
        relay.redis.delete(key)
    assert deliver(relay, "stock.adjust", OLDER, owner="w2") == "superseded"
    assert trademax.sent == [50]
    assert state(relay, "count-older") == "superseded"


def test_an_invalid_event_with_lone_surrogates_is_a_dead_letter_naming_its_fields(relay_with):
    relay = relay_with(StockTrademax())
    event = {**NEWER, "event_id": "count-\udc80", "artno": "12\ud800", "note\udfff": 1}
    assert deliver(relay, "stock.adjust", event, owner="w1") == "dead"
    (letter,) = relay.dead_letters.list()
    assert letter.reason == "invalid"
    assert set(letter.messages) == {"artno", "event_id", "note\\udfff"}
    assert letter.event["artno"] == "12\\ud800" and letter.key == "count-\\udc80"  # the escape, as text


def test_dependency_checks_are_counted_from_the_last_reopen():
    from worker.delivery.dispatch_wait import waits_this_round

    history = [{"to": "accepted"}, {"to": "waiting"}, {"to": "waiting"}, {"to": "dead"},
               {"to": "accepted", "actor": "alice"}, {"to": "waiting"}]
    assert waits_this_round(history) == 1
    assert waits_this_round(history[:3]) == 2
    assert waits_this_round([]) == 0


def test_trademax_text_with_a_lone_surrogate_ends_in_a_dead_letter_not_a_stuck_send():
    """A refusal whose message holds JSON's ``\\udc80`` escape: the store takes UTF-8 only, so the text
    is kept as the escape — before, every ledger write of the event failed and it stayed ``sending``."""
    import responses

    from worker.destinations.trademax.client import TrademaxClient

    settings = Settings(trademax_base_url="http://trademax.test/api/", trademax_api_key="k",
                        trademax_secret="s")
    body = b'{"error": {"error_code": 3, "error_messages": ["artno \\udc80 unknown"]}}'
    with responses.RequestsMock() as mock, TrademaxClient(settings) as client:
        mock.add("PATCH", "http://trademax.test/api/inventory/123/stock-adjustment", status=400, body=body)
        relay = build_relay(settings, redis_client=fakeredis.FakeRedis(decode_responses=True), client=client,
                            clock=lambda: T0)
        assert deliver(relay, "stock.adjust", NEWER, owner="w1") == "dead"
    (letter,) = relay.dead_letters.list()
    assert letter.messages == ["artno \\udc80 unknown"]  # the escape, as text


def test_an_invalid_event_json_cannot_carry_keeps_no_secret_in_its_dead_letter(relay_with):
    relay = relay_with(StockTrademax())
    event = {**NEWER, "quantity": float("nan"), "signature": "s3cr3t-sig", "nested": [{"api_key": "k3y"}]}
    assert deliver(relay, "stock.adjust", event, owner="w1") == "dead"
    (letter,) = relay.dead_letters.list()
    kept = str(letter.event)
    assert "nan" in kept and "s3cr3t-sig" not in kept and "k3y" not in kept


def test_a_dead_event_whose_letter_was_never_written_gets_one_when_it_comes_back(relay_with):
    relay = relay_with(StockTrademax())
    from tasks.events import validate_event

    relay.ledger.accept(validate_event("stock.adjust", NEWER))
    # dead() moved the ledger, then the worker died before the letter: no letter, nothing to retry.
    relay.ledger.transition("stock.adjust", "count-newer", "dead", reason="permanent: Trademax refused it")
    assert relay.dead_letters.list() == []
    assert deliver(relay, "stock.adjust", NEWER, owner="w2") == "dead"  # the message comes back
    (letter,) = relay.dead_letters.list()
    assert (letter.reason, letter.detail) == ("permanent", "Trademax refused it")
    assert deliver(relay, "stock.adjust", NEWER, owner="w3") == "dead"
    assert len(relay.dead_letters.list()) == 1  # written once


def test_a_stock_count_holds_its_turn_for_the_longest_send():
    """Connect, one reconnect (urllib3), read: with 5 s and 30 s that is 40 s; the turn must outlast it,
    or a second count of the SKU could go out while the first is still on the wire."""
    settings = Settings(trademax_api_key="k", trademax_secret="s", connect_timeout=5.0, read_timeout=30.0)
    relay = build_relay(settings, redis_client=fakeredis.FakeRedis(decode_responses=True),
                        client=StockTrademax(), clock=lambda: T0)
    assert relay.stock_order._lock_ms > (2 * 5.0 + 30.0) * 1000


def test_an_invalid_event_nested_deeper_than_the_screening_walks_is_still_a_dead_letter(relay_with):
    """The fuzz run: a list nested ~500 deep passes JSON's encoder but not the secret screening's Python
    recursion; its dead letter used to fail (and `wms-relay enqueue` with it).  The screening walks with its
    own stack now (worker.redaction.screened), so the letter keeps the event whole."""
    from worker.delivery.pipeline import admit

    relay = relay_with(StockTrademax())
    deep = "x"
    for _ in range(600):
        deep = [deep]
    admission = admit(relay, "stock.adjust", {**count("deep-1", 1, "2024-05-14T10:00:00Z"), "extra": deep})
    assert admission.state == "dead"
    (letter,) = relay.dead_letters.list()
    assert letter.reason == "invalid"
    kept, depth = letter.event["extra"], 0
    while isinstance(kept, list):
        kept, depth = kept[0], depth + 1
    assert (kept, depth) == ("x", 600)
