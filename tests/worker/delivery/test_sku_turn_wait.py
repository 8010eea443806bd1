"""Waiting for a SKU turn is not an attempt (worker.delivery.stock_turn).

An absolute count that meets another count of its SKU on the wire is not sent: it waits (``waiting``) and
looks again in ``stock_turn.RETRY_SECONDS``.  Nothing was sent, so nothing of its retry budget is spent:
its attempts are not counted, no attempt is logged, the per-minute failures do not count it — and its
story says, once, that it waited for its turn.  A turn whose holder died lets go when its lock expires
(``stock_lock_seconds``), and the waiting count is then sent with attempt 1.

The real pipeline (``deliver``, the take step, the ledger, the retry schedule) over each store of
``store_client`` (fakeredis, and the embedded valkey: every Lua script runs on a real server), a scripted
client at the seam (tests/fixtures/every_destination.py).
"""
from __future__ import annotations

import pytest

from tasks.events import Delivery, validate_event
from tests.fixtures.every_destination import count, every_destination_relay, every_destination_settings
from worker.delivery import stock_turn
from worker.delivery.pipeline import deliver
from worker.delivery.relay import stock_lock_seconds
from worker.destinations.table import ROWS
from worker.errors import TransientError
from worker.store.stock_order import TURN_WAIT_REASON
from worker.support.event_view import describe

HOLDER = count("c-a", 9, at="2024-05-14T09:00:00Z")  # on the wire first
WAITER = count("c-b", 5, at="2024-05-14T10:00:00Z")  # newer: it waits for the turn, it is not superseded
LOOKS = 5  # how often the waiter looks while the holder's send is on the wire: more than its budget


def unavailable() -> TransientError:
    return TransientError("Service Unavailable", operation="adjust_stock", status=503)


def record(relay, key: str):
    return relay.ledger.get("stock.adjust", key)


def turn_waits(history) -> list[dict]:
    return [step for step in history if str(step.get("reason") or "").startswith(TURN_WAIT_REASON)]


@pytest.fixture
def relay(store_client, clock):
    """Trademax's deliveries (the others' fanned-out messages are left unrun), three attempts in all."""
    return every_destination_relay(store_client, clock=clock,
                                   settings=every_destination_settings(retry_max_attempts=3))


def test_a_count_behind_a_slow_send_spends_none_of_its_retry_budget(relay, clock):
    trademax = relay.clients["trademax"]
    looked: list[str] = []

    def while_the_holder_is_on_the_wire() -> None:
        trademax.on_send = None
        for _ in range(LOOKS):  # the waiter's message, then its scheduled looks
            looked.append(deliver(relay, "stock.adjust", WAITER, owner=f"w-b{len(looked)}"))
            clock.advance(stock_turn.RETRY_SECONDS)

    trademax.on_send = while_the_holder_is_on_the_wire
    assert deliver(relay, "stock.adjust", HOLDER, owner="w-a") == "delivered"
    assert [call[2] for call in trademax.sent] == [9]  # the waiter was never sent
    waited = record(relay, "c-b")
    no_failure = all(failed == 0 for _, failed in relay.ledger.per_minute().values())

    # Its next look finds the turn free; its first real send fails: one attempt of three spent, retried.
    trademax.answers = [unavailable()]
    assert deliver(relay, "stock.adjust", WAITER, owner="w-b-sent") == "retrying"
    waiter = record(relay, "c-b")
    assert (waiter.attempts, [a["outcome"] for a in waiter.attempts_log]) == (1, ["transient"])
    assert relay.dead_letters.list() == []
    assert "attempt 1 failed" in waiter.history[-1]["reason"]

    # While it waited it was ``waiting``, with no attempt counted nor logged, and no failure per minute.
    assert looked == ["waiting"] * LOOKS
    assert (waited.state, waited.attempts, waited.attempts_log) == ("waiting", 0, ())
    assert no_failure

    # Its story says it waited, once, without an attempt number; the support view shows it.
    (waited,) = turn_waits(waiter.history)
    assert (waited["to"], waited.get("attempt")) == ("waiting", None)
    assert "another count of this SKU is being sent" in waited["reason"]
    view = describe(relay, "stock.adjust", "c-b", "trademax")
    assert [step["reason"] for step in turn_waits(view["history"])] == [waited["reason"]]
    assert view["attempts"] == 1


def test_a_count_behind_a_dead_senders_turn_waits_until_the_turn_lapses(relay, clock):
    # The holder's worker took its event and its SKU's turn in its take step, and was killed before
    # sending (SIGKILL: nothing after it runs, so the turn is not given back).
    holder = validate_event("stock.adjust", HOLDER)
    taken = relay.send_steps_of("trademax").take(
        holder, "w-dead", turn=stock_turn.turn_of(Delivery(ROWS["trademax", "stock.adjust"], holder)))
    assert taken.claim.claimed and taken.turn.verdict == "acquired"
    lock = relay.stock_order.keys("nw", "A-1")[1]
    held_ms = relay.redis.pttl(lock)
    assert 0 < held_ms <= stock_lock_seconds(relay.settings) * 1000  # a dead holder lets go by itself

    looked, due = [], []
    for look in range(LOOKS):
        looked.append(deliver(relay, "stock.adjust", WAITER, owner=f"w-b{look}"))
        due.append(relay.schedule.get("stock.adjust:c-b").due_at - clock())  # it looks again soon
        clock.advance(stock_turn.RETRY_SECONDS)
    waited = record(relay, "c-b")
    waiting_now = relay.ledger.count_by_state()["waiting"]  # what `wms-relay status` counts

    relay.redis.pexpire(lock, 1)  # the lock's expiry passes (the store's clock, not the test's)
    while relay.redis.exists(lock):
        pass
    assert deliver(relay, "stock.adjust", WAITER, owner="w-b-sent") == "delivered"
    waiter = record(relay, "c-b")
    assert (waiter.attempts, [a["outcome"] for a in waiter.attempts_log]) == (1, ["delivered"])
    assert waiter.attempts_log[0]["attempt"] == 1
    assert [call[2] for call in relay.clients["trademax"].sent] == [5]

    assert looked == ["waiting"] * LOOKS and due == [pytest.approx(stock_turn.RETRY_SECONDS)] * LOOKS
    assert (waited.state, waited.attempts, waited.attempts_log) == ("waiting", 0, ())
    assert len(turn_waits(waited.history)) == 1 and waiting_now == 1  # one entry however often it looks

    # The dead sender's message comes back after its lease: the newer count was sent, it is superseded.
    clock.advance(relay.settings.claim_lease_seconds + 1)
    assert deliver(relay, "stock.adjust", HOLDER, owner="w-a-again") == "superseded"
    assert [call[2] for call in relay.clients["trademax"].sent] == [5]


def test_a_count_claimed_after_its_catalog_row_waits_for_its_turn_likewise(relay, clock):
    """Stock2Shop's counts are claimed only once their catalog row is found (its catalog is required:
    worker.delivery.catalog_wait); that claim takes the turn first too (worker.flow.send_steps' claim)."""
    order = relay.stock_order_of("stock2shop")
    assert order.acquire("nw", "A-1", "2024-05-14T09:00:00Z", "w-other").verdict == "acquired"
    for look in range(LOOKS):
        state = deliver(relay, "stock.adjust", WAITER, owner=f"w-b{look}", destination="stock2shop")
        assert state == "waiting"
        clock.advance(stock_turn.RETRY_SECONDS)
    waited = relay.ledger_of("stock2shop").get("stock.adjust", "c-b")
    assert (waited.attempts, len(turn_waits(waited.history))) == (0, 1)
    assert relay.clients["stock2shop"].sent == []

    order.release("nw", "A-1", "w-other")  # the other count's outcome is recorded
    assert deliver(relay, "stock.adjust", WAITER, owner="w-b-sent", destination="stock2shop") == "delivered"
    sent = relay.ledger_of("stock2shop").get("stock.adjust", "c-b")
    assert (sent.attempts, [a["attempt"] for a in sent.attempts_log]) == (1, [1])
    assert len(relay.clients["stock2shop"].sent) == 1
    assert relay.redis.exists(order.keys("nw", "A-1")[1]) == 0  # its turn given back with the recording
