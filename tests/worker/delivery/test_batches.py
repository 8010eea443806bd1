"""Batches to a bulk destination, through the real pipeline (fakeredis) and the real StockTrim, ka-ching and
Stock2Shop sandboxes over loopback:

- 500 counts go out as one request; one bad item among them (StockTrim's 400 refuses the request whole)
  is found by splitting in halves — it alone becomes a dead letter naming the batch, the 499 others are
  delivered, each with the batch (id, size, answer) in its result;
- counts coalesce: an older count of a product is superseded by a newer one pending, or arriving after a
  newer one was sent; only the newest is sent;
- a batch that failed (5xx) goes back to pending: ``retrying``, one attempt each, sent again after the
  backoff, delivered with two;
- a lost answer: absolute counts are resent; ka-ching's relative adjustments become ``uncertain``;
- paused: nothing is sent, the batch waits; an open circuit: nothing is sent and no attempt counted until
  a probe (the destination's check request, not a delivery) finds it up again;
- catalogs: ka-ching's variants of one product share its object, each delivery keeps its row; an import
  ka-ching initiated for fewer values than sent makes the batch ``uncertain``, never resent; a Stock2Shop
  count without a row stays out of every batch (``unmapped``) until an import releases it, then reaches
  the strict sandbox as its variant's level; a count whose row was removed after it joined waits.
"""
from __future__ import annotations

import fakeredis
import pytest

from tests.worker.sandbox.loopback import serving
from worker.delivery.batch_delivery import LEASE_SECONDS, BatchFlusher
from worker.delivery.flow_keeper import DestinationKeeper
from worker.delivery.pipeline import deliver
from worker.delivery.relay import build_relay
from worker.destinations.kaching.client import KachingClient
from worker.destinations.stocktrim.client import StockTrimClient
from worker.errors import TransientError
from worker.sandbox.kaching.api import KachingApi
from worker.sandbox.stocktrim.api import StockTrimApi
from worker.settings import Locations, Settings
from worker.store.catalog import CatalogRow

AUTH = {"stocktrim_auth_id": "tenant-42", "stocktrim_auth_signature": "Acme Tenant",
        "kaching_account": "acme", "kaching_integration": "wms", "kaching_api_key": "kaching-key-1234"}


def relay_for(name, base_url, clock, **flow):
    settings = Settings(retry_base_seconds=1.0, read_timeout=1.0, connect_timeout=1.0,
                        stocktrim_base_url=base_url if name == "stocktrim" else "",
                        kaching_base_url=base_url if name == "kaching" else "",
                        stocktrim_locations=Locations.parse("L", "nw=NW"),
                        kaching_locations=Locations.parse("L", "nw=shop-1"), **AUTH)
    settings = settings.with_flow(name, **flow)
    client = (StockTrimClient if name == "stocktrim" else KachingClient)(settings)
    return build_relay(settings, redis_client=fakeredis.FakeRedis(decode_responses=True),
                       clients={name: client}, clock=clock)


@pytest.fixture
def stocktrim():
    api = StockTrimApi(auth_id="tenant-42", auth_signature="Acme Tenant")
    with serving(api) as (base_url, control):
        yield base_url, control


@pytest.fixture
def kaching():
    api = KachingApi(account="acme", integration="wms", api_key="kaching-key-1234")
    with serving(api) as (base_url, control):
        yield base_url, control


def count(n, artno=None, quantity=None, second=0, kind="absolute"):
    event = {"event_id": f"C-{n}", "occurred_at": f"2024-05-14T10:{second // 60:02d}:{second % 60:02d}Z",
             "artno": artno or f"SKU-{n}", "warehouse_id": "nw", "type": kind,
             "quantity": n if quantity is None else quantity}
    if kind == "relative":
        event["reason"] = 3
    return event


def enter(relay, destination, *events):
    return [deliver(relay, "stock.adjust", event, owner="w", destination=destination) for event in events]


def record(relay, destination, n):
    return relay.ledger_of(destination).get("stock.adjust", f"C-{n}")


def states(relay, destination, *numbers):
    return [(record(relay, destination, n).state, record(relay, destination, n).attempts) for n in numbers]


def posts(control):
    return [r for r in control.requests() if r["path"].lower() == "/api/inventory"]


def test_one_bad_item_among_500_is_isolated_by_splitting(stocktrim, clock):
    base_url, control = stocktrim
    relay = relay_for("stocktrim", base_url, clock)
    events = [count(n) for n in range(500)]
    events[137]["artno"] = "UNKNOWN-137"  # the sandbox's product that does not exist
    assert set(enter(relay, "stocktrim", *events)) == {"accepted"}
    assert relay.flow.batches("stocktrim").pending_count() == 500

    BatchFlusher(relay, "stocktrim").flush_once()

    assert len(posts(control)) == 19  # 1 + 2 x ceil(log2 500)
    stock = control.state()["stock"]["NW"]
    assert len(stock) == 499 and "UNKNOWN-137" not in stock and stock["SKU-499"] == 499
    bad = record(relay, "stocktrim", 137)
    assert bad.state == "dead" and bad.attempts == 1
    letter = relay.dead_letters.latest_for("stock.adjust", "C-137", "stocktrim")
    assert "refused it (batch " in letter.detail and "1 item(s)" in letter.detail
    good = record(relay, "stocktrim", 3)
    assert good.state == "delivered" and good.attempts == 1
    assert good.result["batch"] and good.result["status"] == 200 and good.result["batch_size"] >= 1
    batches = {record(relay, "stocktrim", n).result["batch"] for n in range(500) if n != 137}
    assert len(batches) == 1  # one batch, delivered in parts
    batches = relay.flow.batches("stocktrim")
    assert batches.pending_count() == 0 and batches.in_flight() is None


def test_counts_coalesce_newest_wins(stocktrim, clock):
    base_url, control = stocktrim
    relay = relay_for("stocktrim", base_url, clock)
    assert enter(relay, "stocktrim", count(1, "A", 5, second=1), count(2, "A", 7, second=2),
                 count(3, "A", 6, second=0)) == ["accepted", "accepted", "superseded"]
    assert record(relay, "stocktrim", 1).state == "superseded"
    flusher = BatchFlusher(relay, "stocktrim")
    flusher.flush_once()
    assert [r["params"]["inventory"] for r in posts(control)] == [
        [{"productId": "A", "locationCode": "NW", "stockOnHand": 7}]]
    assert record(relay, "stocktrim", 2).state == "delivered"
    assert enter(relay, "stocktrim", count(4, "A", 1, second=1)) == ["superseded"]  # older than the one sent
    assert "newer absolute value" in record(relay, "stocktrim", 4).history[-1]["reason"]


def test_a_failed_batch_goes_back_to_pending_and_is_sent_again(stocktrim, clock):
    base_url, control = stocktrim
    relay = relay_for("stocktrim", base_url, clock)
    enter(relay, "stocktrim", count(1), count(2))
    control.set_faults(fail_rate=1.0)
    flusher = BatchFlusher(relay, "stocktrim")
    flusher.flush_once()
    assert states(relay, "stocktrim", 1, 2) == [("retrying", 1), ("retrying", 1)]
    batches = relay.flow.batches("stocktrim")
    assert batches.pending_count() == 2 and batches.failures() == 1 and batches.next_at() > clock()
    control.set_faults(fail_rate=0.0)
    flusher.flush_once()
    assert len(posts(control)) == 1  # the backoff holds it
    clock.advance(5)
    flusher.flush_once()
    assert states(relay, "stocktrim", 1, 2) == [("delivered", 2), ("delivered", 2)]
    assert batches.failures() == 0


def test_a_lost_answer_resends_levels_and_leaves_adjustments_uncertain(kaching, clock):
    base_url, control = kaching
    relay = relay_for("kaching", base_url, clock)
    enter(relay, "kaching", count(2, "B", -2, second=1, kind="relative"), count(1, "A", 5, second=2))
    control.set_faults(timeout_after_apply_rate=1.0, stall_seconds=2.0)
    flusher = BatchFlusher(relay, "kaching")
    flusher.flush_once()  # the adjustment (the older): applied, answer lost
    adjustment = record(relay, "kaching", 2)
    assert adjustment.state == "uncertain" and "not resent" in adjustment.history[-1]["reason"]
    clock.advance(5)
    flusher.flush_once()  # the level: applied, answer lost
    assert record(relay, "kaching", 1).state == "retrying"
    control.set_faults(timeout_after_apply_rate=0.0)
    clock.advance(5)
    flusher.flush_once()
    assert record(relay, "kaching", 1).state == "delivered" and record(relay, "kaching", 1).attempts == 2
    state = control.state()
    assert state["stock"]["shop-1"]["A"] == 5


def test_a_batch_whose_flusher_died_is_taken_again_after_its_lease_and_says_so(stocktrim, clock, caplog):
    """A worker killed mid-batch leaves its batch in flight and its counts ``sending`` under the batch's
    claim; no other flusher touches it while its lease lives; after the lease, the next take sends it
    (levels: setting one twice is harmless) and logs that it took an orphaned batch."""
    base_url, control = stocktrim
    relay = relay_for("stocktrim", base_url, clock)
    enter(relay, "stocktrim", count(1, "A", 5), count(2, "B", 6))
    dead = relay.flow.batches("stocktrim").take("dead-worker", max_items=10, lease_seconds=LEASE_SECONDS,
                                                batch_seconds=0).batch
    ledger = relay.ledger_of("stocktrim")
    for item in dead.items:  # claimed, then the worker was killed before its request
        assert ledger.claim(item.operation, item.key, item.fingerprint, dead.owner).claimed
    flusher = BatchFlusher(relay, "stocktrim")
    clock.advance(LEASE_SECONDS - 1)
    flusher.flush_once()
    assert states(relay, "stocktrim", 1, 2) == [("sending", 1), ("sending", 1)] and posts(control) == []
    clock.advance(2)
    with caplog.at_level("WARNING", logger="wms_relay.batches"):
        flusher.flush_once()
    assert [s for s, _ in states(relay, "stocktrim", 1, 2)] == ["delivered", "delivered"]
    assert len(posts(control)) == 1
    assert f"took batch {dead.batch_id} (2 count(s)) again" in caplog.text


def test_paused_nothing_is_sent_and_the_batch_waits(stocktrim, clock):
    base_url, control = stocktrim
    relay = relay_for("stocktrim", base_url, clock)
    relay.flow.pauses.pause("stocktrim", by="alice", reason="StockTrim upgrade")
    enter(relay, "stocktrim", count(1), count(2))
    flusher = BatchFlusher(relay, "stocktrim")
    assert flusher.flush_once() == 1.0
    assert posts(control) == [] and relay.flow.batches("stocktrim").pending_count() == 2
    assert record(relay, "stocktrim", 1).attempts == 0
    relay.flow.pauses.resume("stocktrim", by="alice")
    flusher.flush_once()
    assert len(posts(control)) == 1 and record(relay, "stocktrim", 1).state == "delivered"


def test_an_open_circuit_costs_no_attempts_and_a_probe_closes_it(stocktrim, clock):
    base_url, control = stocktrim
    relay = relay_for("stocktrim", base_url, clock, circuit_failures=2, probe_seconds=30)
    enter(relay, "stocktrim", count(1))
    control.set_faults(fail_rate=1.0)
    keeper = DestinationKeeper(relay, "stocktrim")
    for _ in range(2):
        keeper.flusher.flush_once()
        clock.advance(60)
    assert relay.flow.gate("stocktrim").circuit.state()["state"] == "open"
    sent = len(control.requests())
    for _ in range(5):  # an hour of open circuit: no request but one probe per 30 s
        keeper.flusher.flush_once()
        clock.advance(10)
    assert keeper.probe_if_due() is False  # the probe (GET ProcessingStatus) fails too
    assert record(relay, "stocktrim", 1).attempts == 2
    assert len(control.requests()) == sent + 1
    control.set_faults(fail_rate=0.0)
    clock.advance(30)
    assert keeper.probe_if_due() is True
    assert relay.flow.gate("stocktrim").circuit.is_closed()
    keeper.flusher.flush_once()
    one = record(relay, "stocktrim", 1)
    assert one.state == "delivered" and one.attempts == 3


def test_a_probe_answered_429_closes_the_circuit(stocktrim, clock):
    base_url, control = stocktrim
    relay = relay_for("stocktrim", base_url, clock, circuit_failures=1, probe_seconds=30)
    relay.flow.gate("stocktrim").report(TransientError("down", status=503))
    clock.advance(30)
    control.set_faults(throttle_rate=1.0)  # it answers again, asking to slow down: it is up
    assert DestinationKeeper(relay, "stocktrim").probe_if_due() is True
    assert relay.flow.gate("stocktrim").circuit.is_closed()
    assert relay.flow.gate("stocktrim").rate.next_slot() == pytest.approx(clock() + 1)  # its Retry-After


def test_stock2shop_at_one_request_a_second_with_an_expiring_token(tmp_path):
    """Stock2Shop counts the login and the resend after it against its 1 request/s: the client paces both
    through the shared limit, so an expired token costs a second or two, never a 429 loop."""
    import time

    from worker.destinations.stock2shop.client import Stock2ShopClient
    from worker.sandbox.stock2shop.api import Stock2ShopApi

    # The token lives 4 s: the login and the paced resend after it (~1 s apart) use it well within that,
    # even on a loaded machine (with 2.5 s a starved run saw the fresh token expire before the resend).
    api = Stock2ShopApi(username="wms", password="s2s-password-1", source_id="57", token_ttl=4, max_rps=1)
    with serving(api) as (base_url, control):
        settings = Settings(stock2shop_base_url=base_url, stock2shop_username="wms",
                            stock2shop_password="s2s-password-1", stock2shop_source_id="57",
                            stock2shop_locations=Locations.parse("L", "nw=Main"), read_timeout=2.0)
        client = Stock2ShopClient(settings, redis=fakeredis.FakeRedis())
        relay = build_relay(settings, redis_client=fakeredis.FakeRedis(decode_responses=True),
                            clients={"stock2shop": client})
        relay.catalog_of("stock2shop").load([CatalogRow("A", "A", "", "Article A")])
        flusher = BatchFlusher(relay, "stock2shop")
        for round_ in range(3):
            enter(relay, "stock2shop", count(round_, "A", round_, second=round_))
            time.sleep(4.1)  # the token expires between batches
            flusher.flush_once()
            assert record(relay, "stock2shop", round_).state == "delivered", (
                [(r["at"], r["path"], r["status"]) for r in control.requests()])
        state = control.state()
        assert state["rate_limited"] == 0 and len(state["authentications"]) >= 3


def test_kaching_batch_sends_variants_under_their_product_each_with_its_row(kaching, clock):
    base_url, control = kaching
    relay = relay_for("kaching", base_url, clock)
    relay.catalog_of("kaching").load([CatalogRow("S", "P-100", "P-100-S"),
                                      CatalogRow("M", "P-100", "P-100-M")])
    enter(relay, "kaching", count(1, "S", 3, second=1), count(2, "M", 4, second=2),
          count(3, "CHAIR", 5, second=3))
    BatchFlusher(relay, "kaching").flush_once()
    (post,) = control.requests()
    assert post["params"]["stock"] == {"shop-1": {"P-100": {"P-100-S": 3, "P-100-M": 4}, "CHAIR": 5}}
    state = control.state()
    assert state["variant_stock"] == {"shop-1": {"P-100": {"P-100-M": 4, "P-100-S": 3}}}
    assert state["stock"] == {"shop-1": {"CHAIR": 5}} and state["failed"] == []
    assert [record(relay, "kaching", n).result["catalog"]["variant_code"] for n in (1, 2, 3)] == [
        "P-100-S", "P-100-M", ""]
    assert record(relay, "kaching", 1).result["message"] == "Import of 3 stock value(s) initiated"


def test_a_kaching_import_initiating_fewer_values_than_sent_makes_its_batch_uncertain(kaching, clock):
    base_url, control = kaching
    relay = relay_for("kaching", base_url, clock)
    control.set_faults(initiated_fewer=1)
    enter(relay, "kaching", count(1, "A", 3, second=1), count(2, "B", 4, second=2),
          count(3, "C", 5, second=3))
    BatchFlusher(relay, "kaching").flush_once()
    assert [s for s, _ in states(relay, "kaching", 1, 2, 3)] == ["uncertain"] * 3
    reason = record(relay, "kaching", 2).history[-1]["reason"]
    assert "without confirming all it carried" in reason and "Import of 2 stock value(s) initiated" in reason
    assert len(control.requests()) == 1  # never resent: a person checks ka-ching
    assert [f["product"] for f in control.state()["failed"]] == ["C"]


@pytest.fixture
def stock2shop():
    from worker.sandbox.stock2shop.api import Stock2ShopApi

    api = Stock2ShopApi(username="wms", password="s2s-password-1", source_id="57", max_rps=0)
    with serving(api) as (base_url, control):
        yield base_url, control


def stock2shop_relay(base_url, clock):
    from worker.destinations.stock2shop.client import Stock2ShopClient

    settings = Settings(stock2shop_base_url=base_url, stock2shop_username="wms",
                        stock2shop_password="s2s-password-1", stock2shop_source_id="57",
                        stock2shop_locations=Locations.parse("L", "nw=Main"), read_timeout=2.0)
    client = Stock2ShopClient(settings, redis=fakeredis.FakeRedis())
    return build_relay(settings, redis_client=fakeredis.FakeRedis(decode_responses=True),
                       clients={"stock2shop": client}, clock=clock)


def queued(control):
    return [r for r in control.requests() if r["path"] == "/v1/products/queue"]


def test_stock2shop_unmapped_counts_stay_out_of_batches_until_an_import_releases_them(stock2shop, clock):
    """The done-when of issue 19: a variant count reaches the strict sandbox as the variant's level only
    after its row is imported; before, it waits ``unmapped`` and nothing the sandbox would ignore is sent."""
    from worker.support.catalog import import_catalog

    base_url, control = stock2shop
    relay = stock2shop_relay(base_url, clock)
    relay.catalog_of("stock2shop").load([CatalogRow("4711-S", "P-100", "P-100-S", "Shirt")])
    assert enter(relay, "stock2shop", count(1, "4711-S", 3, second=1), count(2, "4711-M", 4, second=2)) == [
        "accepted", "waiting"]
    flusher = BatchFlusher(relay, "stock2shop")
    flusher.flush_once()
    assert [p["source"]["source_product_code"] + "/" + p["product"]["variants"]["sku"]
            for r in queued(control) for p in r["params"]["system_products"]] == ["P-100/P-100-S"]
    assert states(relay, "stock2shop", 1, 2) == [("delivered", 1), ("waiting", 0)]
    assert "unmapped" in record(relay, "stock2shop", 2).history[-1]["reason"]

    done = import_catalog(relay, None, "stock2shop", b"artno,product_code,variant_code,title,active\n"
                          b"4711-S,P-100,P-100-S,Shirt,\n4711-M,P-100,P-100-M,Shirt,\n", source="f.csv",
                          replace=False, actor="ann")
    assert len(done.change.released) == 1
    released = relay.schedule.get("stock2shop/stock.adjust:C-2")
    assert released.due_at <= clock()
    assert enter(relay, "stock2shop", released.message["event"]) == ["accepted"]  # the scheduler's run
    assert "its catalog row is there now" in record(relay, "stock2shop", 2).history[-1]["reason"]
    clock.now += 5  # past the rate limit's slots the first batch and its login took (1 request/s)
    flusher.flush_once()
    assert states(relay, "stock2shop", 2) == [("delivered", 1)]
    state = control.state()
    assert state["ignored"] == [] and len(queued(control)) == 2
    assert state["stock"] == {"Main": {"P-100-S": 3, "P-100-M": 4}}
    assert state["products"]["P-100"]["variants"]["P-100-M"]["qty"] == 4
    assert state["products"]["P-100"]["title"] == "Shirt"


def test_a_count_whose_row_an_import_removed_after_it_joined_its_batch_waits(stock2shop, clock):
    base_url, control = stock2shop
    relay = stock2shop_relay(base_url, clock)
    catalog = relay.catalog_of("stock2shop")
    catalog.load([CatalogRow("4711-S", "P-100", "P-100-S", "Shirt")])
    assert enter(relay, "stock2shop", count(1, "4711-S", 3, second=1)) == ["accepted"]
    catalog.load([], replace=True)
    BatchFlusher(relay, "stock2shop").flush_once()
    assert queued(control) == [] and states(relay, "stock2shop", 1) == [("waiting", 1)]
    assert [w.artno for w in catalog.waiting()] == ["4711-S"]
