"""Issue 9's store rules hold for every destination (the real pipeline over fakeredis, scripted clients):

- every store call resent once more after it ran (what redis-py does when a reply is lost to a timeout)
  changes nothing: with all four destinations on, an absolute count and a relative adjustment are still
  sent once to each destination that takes them and end ``delivered`` with one attempt each — the
  fan-out's accepts, every ledger's claims and transitions replay by request id, the stock turn is the
  same owner's turn, StockTrim's forecast turn still says "yours" (one run), and Stock2Shop's login lock
  taken by the first SET NX is still its taker's (one login);
- the store gone between ka-ching's 200 and the ledger write: the answer is kept in the worker and
  recorded in ka-ching's ledger once the store is back — ``delivered`` with ka-ching's answer, never
  ``uncertain`` (not even for an adjustment, which may not be resent), one attempt logged, and the
  count's stock turn in ka-ching's namespace let go.
"""
from __future__ import annotations

import threading

import fakeredis
import pytest

from tests.fixtures.clock import T0
from tests.fixtures.every_destination import NAMES, count, every_destination_relay, run_published
from worker.delivery.pipeline import deliver
from worker.destinations.stock2shop.tokens import SharedToken
from worker.destinations.stocktrim.client import INVENTORY_CHANGED_KEY
from worker.destinations.stocktrim.forecast import ForecastRuns


class ResendingRedis(fakeredis.FakeRedis):
    """Runs every command twice and answers the second reply: each call's first reply is "lost"."""

    def execute_command(self, *args, **options):
        super().execute_command(*args, **options)
        return super().execute_command(*args, **options)


def test_every_store_call_resent_after_it_ran_changes_nothing_at_any_destination():
    relay = every_destination_relay(ResendingRedis(decode_responses=True))
    assert deliver(relay, "stock.adjust", count("c-1", 7), owner="w1") == "delivered"
    assert run_published(relay) == {"kaching": "delivered", "stocktrim": "delivered",
                                    "stock2shop": "delivered"}
    assert deliver(relay, "stock.adjust", count("r-1", -2, kind="relative"), owner="w2") == "delivered"
    assert run_published(relay) == {"kaching": "delivered"}

    sent = {name: relay.clients[name].sent for name in NAMES}
    assert sent == {"trademax": [("adjust_stock", "A-1", 7, "absolute"),
                                 ("adjust_stock", "A-1", -2, "relative")],
                    "kaching": [("import_stock", "A-1", 7, False), ("import_stock", "A-1", -2, True)],
                    "stocktrim": [("set_stock_on_hand", "A-1", 7)],
                    "stock2shop": [("queue_stock_level", "A/A-1", 7)]}  # its catalog row
    for name in NAMES:
        for key in ("c-1", "r-1") if name in ("trademax", "kaching") else ("c-1",):
            record = relay.ledger_of(name).get("stock.adjust", key)
            assert (record.state, record.attempts, len(record.attempts_log)) == ("delivered", 1, 1), \
                (name, key)
            assert [h["to"] for h in record.history] == ["accepted", "sending", "delivered"], (name, key)
    assert relay.schedule.list() == [] and relay.dead_letters.list() == []
    reply_keys = set(relay.redis.scan_iter("wms:kaching:request:*"))
    assert reply_keys, "ka-ching's ledger calls keep their replies in its own namespace"


def test_the_forecast_turn_resent_still_says_yours_and_runs_once():
    class Forecasts:
        runs = 0

        def run_forecast(self):
            Forecasts.runs += 1

    store = ResendingRedis(decode_responses=True)
    store.set(INVENTORY_CHANGED_KEY, f"{T0 - 10:.3f}")  # what the client marks after a delivered post
    runs = ForecastRuns(store, every_seconds=3600, clock=lambda: T0, client=Forecasts())
    assert runs.run_if_due() is True and Forecasts.runs == 1
    assert runs.run_if_due() is False and Forecasts.runs == 1


def test_the_stock2shop_login_lock_resent_is_still_its_takers():
    logins = []

    def login() -> str:
        logins.append(1)
        return f"token-{len(logins)}"

    store = ResendingRedis(decode_responses=True)
    tokens = SharedToken(store, login, lock_seconds=5, wait_seconds=1, sleep=lambda s: None)
    assert tokens.current() == "token-1"
    assert tokens.renew(stale="token-1") == "token-2"
    assert len(logins) == 2 and store.get("wms:stock2shop:login") is None


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_kachings_answer_is_kept_through_a_store_outage_and_recorded_in_its_ledger(kind):
    server = fakeredis.FakeServer()
    relay = every_destination_relay(fakeredis.FakeRedis(server=server, decode_responses=True))
    deliver(relay, "stock.adjust", count("k-1", 4, kind=kind), owner="w1")
    published = [m for m in relay.published if m["task"] == "kaching.stock.adjust"]
    relay.published.clear()

    def store_goes_away() -> None:  # ka-ching has the request; its 200 comes while the store is down
        server.connected = False
        threading.Timer(0.3, lambda: setattr(server, "connected", True)).start()

    relay.clients["kaching"].on_send = store_goes_away
    (message,) = published
    state = deliver(relay, "stock.adjust", message["event"], owner="w-k", destination="kaching")

    assert state == "delivered"
    assert relay.clients["kaching"].sent == [("import_stock", "A-1", 4, kind == "relative")]
    record = relay.ledger_of("kaching").get("stock.adjust", "k-1")
    assert (record.state, record.attempts) == ("delivered", 1)
    assert [(a["outcome"], a["status"]) for a in record.attempts_log] == [("delivered", 200)]
    identity = {"product_code": "A-1", "variant_code": "", "title": "", "active": "true"}
    assert record.result == {"status": 200, "catalog": identity}, record.to_dict()  # recorded after
    assert relay.ledger_of("trademax").get("stock.adjust", "k-1").state == "delivered"
    assert list(relay.redis.scan_iter("wms:kaching:stock:lock:*")) == []
