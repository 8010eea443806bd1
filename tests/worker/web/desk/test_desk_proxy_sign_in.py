"""Single sign-on through a trusted reverse proxy: a request from a DESK_TRUSTED_PROXIES address carrying
DESK_TRUSTED_PROXY_HEADER is signed in as the person it names — with their users-file role, else the best
role their groups give — and from any other address the header is ignored; a name with neither is refused;
actions still need the CSRF token; the audit log names the person the proxy named."""
from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from tests.worker.web.desk.conftest import csrf_of, sign_in
from tests.worker.web.desk.test_desk_actions import dead_receipt, retry
from worker.settings import SettingsError
from worker.web.desk.app import create_app
from worker.web.desk.config import DeskSettings

PROXY, ELSEWHERE = "10.0.0.5", "203.0.113.9"
SSO = {"DESK_TRUSTED_PROXY_HEADER": "X-Forwarded-Email", "DESK_TRUSTED_PROXIES": "127.0.0.2, 10.0.0.0/29",
       "DESK_TRUSTED_GROUPS_HEADER": "X-Forwarded-Groups",
       "DESK_GROUP_ROLES": "wms-support=viewer,wms-operators=operator"}


def sso_settings(base: DeskSettings, **env: str) -> DeskSettings:
    found = DeskSettings.from_env({**SSO, **env, "DESK_SECRET_KEY": "k" * 40}, base.users_file.parent)
    return replace(found, users_file=base.users_file)


@pytest.fixture
def sso_app(desk_services):
    desk_services.settings = sso_settings(desk_services.settings)
    app = create_app(desk_services)
    app.config["TESTING"] = True
    return app


def client_at(app, address: str, name: str | None = None, groups: str | None = None):
    """A test client whose requests come from ``address``, carrying the proxy's headers."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    headers = {}
    if name is not None:
        headers["X-Forwarded-Email"] = name
    if groups is not None:
        headers["X-Forwarded-Groups"] = groups
    client.environ_base.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    return client


def signed_in_as(answer) -> str:
    text = answer.get_data(as_text=True)
    assert answer.status_code == 200, text[:300]
    return text.split('<span>', 1)[1].split("</em>", 1)[0]


def sign_ins(desk_services) -> list[tuple[str, str, str]]:
    entries, _ = desk_services.tools.audit.page()
    return [(e.actor, e.message, e.target) for e in entries if e.action == "sign-in"]


def test_a_users_file_entry_named_by_a_trusted_proxy_is_signed_in_with_its_role(sso_app, desk_services):
    olga = client_at(sso_app, PROXY, "olga")
    shown = signed_in_as(olga.get("/"))
    assert "olga" in shown and "operator" in shown
    olga.get("/dead-letters")
    said = "signed in as operator by the trusted proxy (X-Forwarded-Email)"
    assert sign_ins(desk_services) == [("olga", said, PROXY)]  # once per browser session, not per page
    assert "Sign out" not in olga.get("/").get_data(as_text=True)  # signing out is the proxy's business


def test_the_users_file_role_wins_over_the_groups(sso_app):
    vic = client_at(sso_app, PROXY, "vic", groups="wms-operators")
    assert "viewer" in signed_in_as(vic.get("/"))


def test_a_person_without_an_entry_gets_the_best_role_of_their_groups(sso_app, desk_services):
    ann = client_at(sso_app, PROXY, "ann@example.com", groups="staff, wms-support")
    assert "viewer" in signed_in_as(ann.get("/"))
    letter_id = dead_receipt(desk_services, "R-1")
    token = csrf_of(ann.get("/dead-letters").get_data(as_text=True))
    refused = ann.post("/dead-letters/act", data={"csrf_token": token, "action": "retry", "ids": letter_id,
                                                  "why": "x"})
    assert refused.status_code == 403
    bob = client_at(sso_app, "10.0.0.1", "bob@example.com", groups="wms-support,wms-operators")
    assert "operator" in signed_in_as(bob.get("/"))


@pytest.mark.parametrize("groups", [None, "", "staff,everyone"])
def test_a_name_not_in_the_users_file_and_no_desk_group_is_refused(sso_app, desk_services, groups, caplog):
    eve = client_at(sso_app, PROXY, "eve@example.com", groups=groups)
    with caplog.at_level(logging.INFO, logger="wms_relay.desk"):
        for path in ("/", "/sign-in", "/dead-letters"):
            answer = eve.get(path)
            assert answer.status_code == 403
            text = answer.get_data(as_text=True)
            assert "eve@example.com is not a desk user" in text and "Dead letters" not in text
    assert sign_ins(desk_services) == []
    assert [(r.fields["status"], r.fields["sign_on"]) for r in caplog.records] == [(403, "refused")] * 3
    assert all(r.levelname == "WARNING" and r.fields["user"] is None for r in caplog.records)


@pytest.mark.parametrize("value", ["", "olga olga", "olga\u0007", "x" * 129, "-olga"])
def test_a_header_that_is_not_one_plausible_name_is_refused(sso_app, value):
    assert client_at(sso_app, PROXY, value).get("/").status_code == 403


def test_the_header_given_twice_is_refused(sso_app):
    client = client_at(sso_app, PROXY)
    answer = client.get("/", headers=[("X-Forwarded-Email", "vic"), ("X-Forwarded-Email", "olga")])
    assert answer.status_code == 403


def test_from_an_untrusted_address_the_header_is_ignored(sso_app, desk_services, caplog):
    forged = client_at(sso_app, ELSEWHERE, "olga")
    with caplog.at_level(logging.INFO, logger="wms_relay.desk"):
        answer = forged.get("/")
    assert answer.status_code == 302 and "/sign-in" in answer.headers["Location"]
    assert caplog.records[0].fields["sign_on"] == "ignored"
    assert sign_ins(desk_services) == []
    # Its own password still signs a person in there; the header names nobody.
    vic = client_at(sso_app, ELSEWHERE, "olga")
    assert sign_in(vic, "vic").status_code == 302
    assert "viewer" in signed_in_as(vic.get("/"))


def test_behind_desk_public_url_the_peer_counts_not_x_forwarded_for(desk_services):
    desk_services.settings = sso_settings(desk_services.settings, DESK_PUBLIC_URL="https://desk.example.com/")
    app = create_app(desk_services)
    forged = client_at(app, ELSEWHERE, "olga")
    answer = forged.get("/", headers={"X-Forwarded-For": PROXY}, base_url="https://desk.example.com")
    assert answer.status_code == 302  # ProxyFix believed the address; the sign-on did not
    through = client_at(app, PROXY, "olga")
    assert "operator" in signed_in_as(through.get("/", headers={"X-Forwarded-For": ELSEWHERE},
                                                  base_url="https://desk.example.com"))


def test_actions_still_need_the_csrf_token_and_the_audit_names_the_proxys_person(sso_app, desk_services):
    ops = client_at(sso_app, PROXY, "oscar@example.com", groups="wms-operators")
    letter_id = dead_receipt(desk_services, "R-1")
    form = {"action": "retry", "ids": letter_id, "why": "fixed in the WMS"}
    without = ops.post("/dead-letters/act", data=form)
    assert without.status_code == 400 and "CSRF" in without.get_data(as_text=True)
    forged = ops.post("/dead-letters/act", data={**form, "csrf_token": "forged"})
    assert forged.status_code == 400 and desk_services.published == []
    _, done = retry(ops, letter_id, "fixed in the WMS")
    assert "1 done" in done.get_data(as_text=True) and len(desk_services.published) == 1
    record = desk_services.relay.ledger.get("receipt.create", "R-1")
    assert record.history[-1]["actor"] == "oscar@example.com"
    entries, _ = desk_services.tools.audit.page()
    assert [(e.actor, e.action) for e in entries][:2] == [("oscar@example.com", "retry"),
                                                          ("oscar@example.com", "sign-in")]


def test_password_sign_in_is_untouched_without_the_header(sso_app):
    client = client_at(sso_app, PROXY)  # through the proxy, but it named nobody (e.g. a public path)
    assert client.get("/").status_code == 302
    assert sign_in(client, "olga").status_code == 302
    assert "operator" in signed_in_as(client.get("/"))


@pytest.mark.parametrize("env, says", [
    ({"DESK_TRUSTED_PROXY_HEADER": "X-Forwarded-Email"}, "needs DESK_TRUSTED_PROXIES"),
    ({"DESK_TRUSTED_PROXIES": "10.0.0.5"}, "without DESK_TRUSTED_PROXY_HEADER"),
    ({**SSO, "DESK_TRUSTED_PROXIES": "10.0.0.5,proxy.local"}, "'proxy.local' is not an address or CIDR"),
    ({**SSO, "DESK_TRUSTED_PROXY_HEADER": "X Forwarded"}, "must be an HTTP header name"),
    ({**SSO, "DESK_GROUP_ROLES": ""}, "go together"),
    ({**SSO, "DESK_GROUP_ROLES": "wms-operators=admin"}, "not group=viewer or group=operator"),
])
def test_sso_settings_are_checked_together(tmp_path, env, says):
    with pytest.raises(SettingsError, match=says):
        DeskSettings.from_env({**env, "DESK_SECRET_KEY": "k" * 40}, tmp_path)


def test_sso_settings_parse(tmp_path):
    found = DeskSettings.from_env({**SSO, "DESK_SECRET_KEY": "k" * 40}, tmp_path)
    assert found.trusted_proxy_header == "X-Forwarded-Email"
    assert [str(n) for n in found.trusted_proxies] == ["127.0.0.2/32", "10.0.0.0/29"]
    assert dict(found.group_roles) == {"wms-support": "viewer", "wms-operators": "operator"}
    assert DeskSettings.from_env({"DESK_SECRET_KEY": "k" * 40}, tmp_path).trusted_proxy_header == ""
