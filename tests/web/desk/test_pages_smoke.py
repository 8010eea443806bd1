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
