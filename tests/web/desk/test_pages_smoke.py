"""Every page of the desk renders for a signed-in person, and sends a stranger to the sign-in page."""
from __future__ import annotations

import pytest

PAGES = ["/", "/dead-letters", "/uncertain", "/retries", "/audit", "/events", "/events?q=nothing"]


@pytest.mark.parametrize("path", PAGES)
def test_each_page_renders(operator, path):
    answer = operator.get(path)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:2000]


@pytest.mark.parametrize("path", PAGES)
def test_a_stranger_is_sent_to_sign_in(app, path):
    answer = app.test_client().get(path)
    assert answer.status_code == 302 and "/sign-in" in answer.headers["Location"]


def test_the_overview_shows_what_status_flags_from_the_heartbeats(operator, desk_services, clock):
    """The overview's "Needs a person" is ``wms-relay status``'s report (issue 15): workers and the
    scheduler from their heartbeats, so a scheduler gone silent is flagged with what to do."""
    page = operator.get("/").get_data(as_text=True)
    assert "relay-1@test" in page and "Nothing needs a person right now." in page
    clock.now += 120  # both heartbeats are now two minutes old
    page = operator.get("/").get_data(as_text=True)
    assert "No worker is alive" in page and "The scheduler has not ticked for 2 min" in page
