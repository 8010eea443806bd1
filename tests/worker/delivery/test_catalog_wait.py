"""A count names its product by its catalog row (worker.delivery.catalog_wait), counts sent one by one
(the real pipeline over fakeredis, a scripted client per destination):

- identity (ka-ching's default): an artno without a row is its own product; a row with a variant is sent
  as that variant; the row it was sent with is in the delivery's result;
- required (Stock2Shop): an artno without a row is not sent — ``waiting`` with reason ``unmapped``,
  listed in the catalog's waiting list, re-checked without growing its history — and the import that
  gives it a row releases it at once (due now), after which it is sent once, with that row;
- ka-ching answering that it initiated fewer values than sent parks the count ``uncertain`` with
  ka-ching's message, even an absolute count that may be resent after a lost answer.

Batches: tests/worker/delivery/test_batches.py; the CLI: tests/worker/commands/test_catalog_command.py."""
from __future__ import annotations

import pytest

from tests.fixtures.every_destination import Scripted, count, every_destination_settings
from worker.delivery.catalog_wait import RECHECK_SECONDS, waits_for_row
from worker.delivery.pipeline import deliver
from worker.delivery.relay import build_relay
from worker.errors import UnconfirmedError
from worker.store.audit_log import AuditLog
from worker.store.catalog import CatalogRow
from worker.support.catalog import import_catalog

HEADER = "artno,product_code,variant_code,title,active\n"


@pytest.fixture
def relay(store_client, clock):
    return build_relay(every_destination_settings(), redis_client=store_client, clock=clock,
                       clients={name: Scripted(name) for name in ("kaching", "stocktrim", "stock2shop")},
                       sends=False)


def send(relay, destination, event):
    return deliver(relay, "stock.adjust", event, owner=f"w-{destination}", destination=destination)


def test_identity_sends_the_artno_as_its_product_and_a_row_names_the_variant(relay):
    assert send(relay, "kaching", count("c-1", 7)) == "delivered"
    relay.catalog_of("kaching").load([CatalogRow("A-1", "P-100", "P-100-M")])
    assert send(relay, "kaching", count("c-2", 8, at="2024-05-14T11:00:00Z")) == "delivered"
    assert relay.clients["kaching"].sent == [("import_stock", "A-1", 7, False),
                                             ("import_stock", "P-100/P-100-M", 8, False)]
    results = [relay.ledger_of("kaching").get("stock.adjust", key).result for key in ("c-1", "c-2")]
    assert [r["catalog"] for r in results] == [
        {"product_code": "A-1", "variant_code": "", "title": "", "active": "true"},
        {"product_code": "P-100", "variant_code": "P-100-M", "title": "", "active": "true"}]


def test_required_an_unmapped_count_waits_unsent_until_an_import_releases_it(relay, clock):
    stock2shop = relay.clients["stock2shop"]
    assert send(relay, "stock2shop", count("c-1", 7)) == "waiting"
    assert stock2shop.sent == []
    record = relay.ledger_of("stock2shop").get("stock.adjust", "c-1")
    assert (record.state, record.attempts) == ("waiting", 0) and waits_for_row(record.history)
    assert "unmapped: artno A-1 has no row in Stock2Shop's catalog" in record.history[-1]["reason"]
    assert [w.artno for w in relay.catalog_of("stock2shop").waiting()] == ["A-1"]
    retry = relay.schedule.get("stock2shop/stock.adjust:c-1")
    assert retry.due_at == clock() + RECHECK_SECONDS

    clock.now += RECHECK_SECONDS  # the re-check: still no row, no new history entry
    assert send(relay, "stock2shop", count("c-1", 7)) == "waiting"
    assert len(relay.ledger_of("stock2shop").get("stock.adjust", "c-1").history) == len(record.history)

    audit = AuditLog(relay.redis, clock)
    done = import_catalog(relay, audit, "stock2shop", (HEADER + "A-1,P-100,P-100-M,Shirt,\n").encode(),
                          source="shirts.csv", replace=False, actor="ann")
    assert (done.change.added, len(done.change.released), done.released_now) == (1, 1, 1)
    assert relay.schedule.get("stock2shop/stock.adjust:c-1").due_at <= clock()  # released: due now
    assert relay.catalog_of("stock2shop").waiting() == []

    assert send(relay, "stock2shop", count("c-1", 7)) == "delivered"
    assert stock2shop.sent == [("queue_stock_level", "P-100/P-100-M", 7)]
    record = relay.ledger_of("stock2shop").get("stock.adjust", "c-1")
    assert (record.attempts, record.result["catalog"]["title"]) == (1, "Shirt")
    assert send(relay, "stock2shop", count("c-1", 7)) == "delivered" and len(stock2shop.sent) == 1
    (entry,), _ = audit.page()
    assert (entry.actor, entry.action, entry.target, entry.reason) == ("ann", "catalog-import", "stock2shop",
                                                                       "shirts.csv")
    assert "added 1, changed 0; released 1 waiting delivery(ies)" in entry.message


def test_a_row_imported_between_the_look_and_the_wait_is_not_missed(relay):
    """The import ran after the delivery looked (no row) and before it was listed as waiting: the
    delivery looks once more after listing itself, so it is due now instead of waiting for the re-check."""
    relay.catalog_of("stock2shop").load([CatalogRow("A-1", "P", "", "Chair")])
    from tasks.events import Delivery, validate_event
    from worker.delivery.catalog_wait import wait_for_row
    from worker.destinations.table import ROWS

    relay.ledger_of("stock2shop").accept(validate_event("stock.adjust", count("c-1")))
    delivery = Delivery(ROWS["stock2shop", "stock.adjust"], validate_event("stock.adjust", count("c-1")))
    assert wait_for_row(relay, delivery) == "waiting"
    assert relay.schedule.get(delivery.ref).due_at <= relay.clock()
    assert relay.catalog_of("stock2shop").waiting() == []


def test_an_initiated_count_below_the_values_sent_is_uncertain_with_kachings_message(relay):
    unconfirmed = UnconfirmedError("ka-ching initiated 0 of the 1 stock value(s) sent", destination="kaching",
                                   operation="import_stock", status=200,
                                   error_messages=["Import of 0 stock value(s) initiated"])
    relay.clients["kaching"].answers = [unconfirmed]
    assert send(relay, "kaching", count("c-1", 7)) == "uncertain"  # an absolute count: resendable, yet
    record = relay.ledger_of("kaching").get("stock.adjust", "c-1")
    assert "answered without confirming it" in record.history[-1]["reason"]
    assert "Import of 0 stock value(s) initiated" in record.history[-1]["reason"]
    assert record.attempts_log[-1]["messages"] == ["Import of 0 stock value(s) initiated"]
    assert relay.flow.gate("kaching").circuit.state()["failures"] == 0  # it answered: ka-ching is up
