"""The catalog on the desk (issue 19): a Stock2Shop count whose artno has no catalog row is named on the
overview (how many, which artnos) and its event page says which row it waits for and how to give it one —
without refreshing, since nothing moves until an import; once an import released it and it was sent, the
page shows the catalog row it was sent with.  A count sent by identity (ka-ching, no row) shows the artno
as its own product."""
from __future__ import annotations

import pytest

from tests.fixtures.every_destination import Scripted, count, every_destination_settings
from tests.worker.web.desk.conftest import desk_services_over
from worker.delivery.pipeline import deliver
from worker.store.catalog import CatalogRow

PAGE = "/events/stock.adjust/c-1?destination=stock2shop"


@pytest.fixture
def desk_services(users_path, clock):
    return desk_services_over(users_path, clock, every_destination_settings(), clients={
        name: Scripted(name) for name in ("kaching", "stocktrim", "stock2shop")})


def send(relay, destination: str, event: dict) -> str:
    return deliver(relay, "stock.adjust", event, owner=f"w-{destination}", destination=destination)


def test_an_unmapped_count_is_named_on_the_overview_and_its_page_then_shows_the_row_it_was_sent_with(
        operator, desk_services):
    relay = desk_services.relay
    assert send(relay, "stock2shop", count("c-1", 7)) == "waiting"

    overview = " ".join(operator.get("/").get_data(as_text=True).split())
    assert ('<li class="alarm" id="unmapped-stock2shop"><strong>1</strong> count for Stock2Shop waits for a '
            'catalog row (unmapped), artno A-1: import rows for them (<code>wms-relay catalog import '
            'stock2shop FILE</code>)') in overview
    html = operator.get(PAGE).get_data(as_text=True)
    assert "Waiting for a catalog row" in html and "<code>A-1</code> has no row in Stock2Shop" in html
    assert "wms-relay catalog import stock2shop FILE" in html
    assert 'http-equiv="refresh"' not in html  # nothing moves until a person imports a row

    relay.catalog_of("stock2shop").load([CatalogRow("A-1", "P-100", "P-100-M", "Cotton shirt")])
    assert send(relay, "stock2shop", count("c-1", 7)) == "delivered"  # the released retry, run
    assert 'id="unmapped-stock2shop"' not in operator.get("/").get_data(as_text=True)
    html = operator.get(PAGE).get_data(as_text=True)
    assert "Sent as Stock2Shop's catalog row says" in html and "Waiting for a catalog row" not in html
    for shown in ("<td>A-1</td>", "<td>P-100</td>", "<td>P-100-M</td>", "<td>Cotton shirt</td>",
                  "<td>true</td>"):
        assert shown in html, shown


def test_a_count_sent_by_identity_shows_the_artno_as_its_own_product(viewer, desk_services):
    assert send(desk_services.relay, "kaching", count("c-2", 8)) == "delivered"
    html = viewer.get("/events/stock.adjust/c-2?destination=kaching").get_data(as_text=True)
    assert "Sent as ka-ching's catalog row says" in html
    assert "<td>A-1</td>" in html and "(none: the product itself)" in html
