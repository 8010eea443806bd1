"""Every page of the desk renders for a signed-in person, and sends a stranger to the sign-in page; the
overview and an event page say what the heartbeats say (no worker, no scheduler)."""
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


def test_an_event_page_says_when_no_worker_runs(operator, desk_services, clock):
    """An accepted event's next step names the missing worker (heartbeats), not "a worker is on it"."""
    from tests.worker.support.test_actions import example
    from worker.delivery.pipeline import admit

    admission = admit(desk_services.relay, "receipt.create", example("receipt.create", transaction_id="R-Q"))
    assert admission.state == "accepted"
    assert "a worker is on it" in operator.get("/events/receipt.create/R-Q").get_data(as_text=True)
    clock.now += 120
    assert "no worker is running" in operator.get("/events/receipt.create/R-Q").get_data(as_text=True)
