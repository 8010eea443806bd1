"""The desk's sign-in limits (issue 23, items 4 and 8): failures are counted, not audited one by one — an
audit entry per lockout and per sign-in, a metric for the rest; the per-name limit is checked and counted
in one script, so a dozen guesses at once get at most the limit checked; a lockout is per name + address
(nobody locks an operator out from elsewhere) and ends when the window of its first failure ends, never
later; a password or role change ends the user's sessions; a hand-made ``/audit?before=`` is a 400."""
from __future__ import annotations

import threading

from tests.worker.web.desk.conftest import PASSWORDS, csrf_of, sign_in
from worker.store.sign_ins import (
    FAILURE_WINDOW, MAX_FAILURES_PER_ADDRESS, MAX_FAILURES_PER_NAME, sign_in_counts,
)


def from_address(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def audit_actions(desk_services) -> list[str]:
    return [entry.action for entry in desk_services.tools.audit.page(limit=10_000)[0]]


def test_twelve_guesses_at_once_get_at_most_the_limit_checked(app):
    clients = [app.test_client() for _ in range(12)]
    tokens = [csrf_of(client.get("/sign-in").get_data(as_text=True)) for client in clients]
    start = threading.Barrier(len(clients))
    statuses: list[int] = []

    def guess(client, token):
        start.wait()
        answer = client.post("/sign-in", data={"name": "olga", "password": "wrong-password",
                                               "csrf_token": token})
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=guess, args=pair) for pair in zip(clients, tokens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(statuses) == 12
    assert statuses.count(401) <= MAX_FAILURES_PER_NAME, statuses  # checked (Argon2) and refused
    assert statuses.count(429) >= 12 - MAX_FAILURES_PER_NAME, statuses  # refused unchecked


def test_a_flood_of_failed_sign_ins_writes_one_audit_entry_per_lockout(app, desk_services):
    for index in range(150):
        client = from_address(app, f"198.51.100.{index % 2}")  # two addresses, a new name each time
        sign_in(client, f"nobody-{index}", "not-a-password")
    actions = audit_actions(desk_services)
    assert actions.count("sign-in-locked") == 2 and len(actions) == 2  # one per locked address
    assert sign_in_counts(desk_services.redis) == {  # the metrics' counters (test_metrics scrapes them)
        "signed_in": 0, "refused": 2 * MAX_FAILURES_PER_ADDRESS,
        "blocked": 150 - 2 * MAX_FAILURES_PER_ADDRESS, "lockouts": 2}
    [entry, *_] = desk_services.tools.audit.page()[0]
    assert entry.actor == "(unknown name)" and "nobody" not in entry.message  # a name may be a password


def test_a_lockout_is_per_name_and_address_and_ends_with_its_window(app, desk_services, clock):
    guesser = from_address(app, "203.0.113.9")
    for _ in range(MAX_FAILURES_PER_NAME):
        assert sign_in(guesser, "olga", "wrong-password").status_code == 401
    assert sign_in(guesser, "olga").status_code == 429  # the right password waits too, from there
    assert audit_actions(desk_services) == ["sign-in-locked"]

    olga = from_address(app, "192.0.2.1")  # olga at her own desk is not locked out by the guesser
    assert sign_in(olga, "olga").status_code == 302

    clock.now += FAILURE_WINDOW - 60
    for _ in range(20):  # tries while locked out do not stretch the lockout
        assert sign_in(guesser, "olga").status_code == 429
    clock.now += 60
    assert sign_in(guesser, "olga").status_code == 302  # the window of the first failure is over
    assert audit_actions(desk_services) == ["sign-in", "sign-in", "sign-in-locked"]


def test_a_right_password_clears_its_own_count(app):
    client = app.test_client()
    for _ in range(MAX_FAILURES_PER_NAME - 1):
        assert sign_in(client, "vic", "wrong-password").status_code == 401
    assert sign_in(client, "vic").status_code == 302
    again = app.test_client()
    for _ in range(MAX_FAILURES_PER_NAME - 1):
        assert sign_in(again, "vic", "wrong-password").status_code == 401
    assert sign_in(again, "vic").status_code == 302


def test_a_password_or_role_change_ends_the_users_sessions(app, desk_services):
    desk_services.users.add("pat", "operator", "pat-password-1")
    session = app.test_client()
    assert sign_in(session, "pat", "pat-password-1").status_code == 302
    assert session.get("/").status_code == 200
    desk_services.users.add("pat", "operator", "pat-password-2")  # a new password
    assert session.get("/").status_code == 302  # back to the sign-in page
    assert sign_in(session, "pat", "pat-password-2").status_code == 302
    assert session.get("/").status_code == 200
    desk_services.users.add("pat", "viewer", "pat-password-2")  # demoted
    assert session.get("/").status_code == 302
    other = app.test_client()
    assert sign_in(other, "vic", PASSWORDS["vic"]).status_code == 302
    assert other.get("/").status_code == 200  # nobody else's session ends


def test_a_bad_before_on_the_audit_page_is_a_400_with_a_sentence(operator):
    for before in ("abc", "99999999999999999999999-0", "1-2-3", "-1"):
        answer = operator.get(f"/audit?before={before}")
        assert answer.status_code == 400, before
        assert "is not an audit entry id" in answer.get_data(as_text=True)
    assert operator.get("/audit?before=1714550000000-0").status_code == 200
