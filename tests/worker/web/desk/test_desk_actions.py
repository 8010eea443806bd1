"""The desk acts only through the CLI's support actions, only by POST with its CSRF token, only for
operators, and records the signed-in person as the actor: a retry is previewed (dry run), needs a reason,
publishes the event once, and the second of two operators is told who was first; everything from an event
is shown as text; "all matching" reaches every letter the filters match."""
from __future__ import annotations

import re
import time

import pytest

from tests.worker.web.desk.conftest import csrf_of, sign_in
from tests.worker.support.test_actions import ScriptedTrademax, example, refused
from worker.delivery.pipeline import deliver
from worker.errors import OutcomeUnknownError, TransientError

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def dead_receipt(services, key: str, **changes) -> str:
    relay = services.relay
    relay.client = ScriptedTrademax(refused())
    assert deliver(relay, "receipt.create", example("receipt.create", transaction_id=key, **changes),
                   owner="w-1") == "dead"
    return relay.dead_letters.latest_for("receipt.create", key).letter_id


def form_token(client, path: str) -> str:
    return csrf_of(client.get(path).get_data(as_text=True))


def retry(client, letter_id: str, reason: str = "order type fixed"):
    token = form_token(client, "/dead-letters")
    preview = client.post("/dead-letters/preview", data={"csrf_token": token, "action": "retry",
                                                         "ids": letter_id})
    assert preview.status_code == 200, preview.get_data(as_text=True)[:500]
    answer = client.post("/dead-letters/act", data={"csrf_token": token, "action": "retry", "ids": letter_id,
                                                    "why": reason}, follow_redirects=True)
    return preview.get_data(as_text=True), answer


def test_an_operator_finds_previews_and_retries_a_letter_once_as_themselves(operator, desk_services):
    letter_id = dead_receipt(desk_services, "R-1", order_no="IO-777")
    dead_receipt(desk_services, "R-2")
    listing = operator.get("/dead-letters?q=io-777").get_data(as_text=True)
    assert letter_id in listing and "R-2" not in listing and "1 in all" in listing
    preview, done = retry(operator, letter_id)
    assert "would be retried (dry run: nothing changed)" in preview
    assert desk_services.published == [] or len(desk_services.published) == 1
    text = done.get_data(as_text=True)
    assert done.status_code == 200 and "1 done, 0 skipped, 0 failed" in text
    assert len(desk_services.published) == 1
    record = desk_services.relay.ledger.get("receipt.create", "R-1")
    assert record.state == "accepted" and record.history[-1]["actor"] == "olga"
    assert "order type fixed" in record.history[-1]["reason"]
    entries, _ = desk_services.tools.audit.page()
    assert [(e.actor, e.action, e.via, e.status) for e in entries][0] == ("olga", "retry", "desk", "done")


def test_a_retry_without_a_reason_changes_nothing(operator, desk_services):
    letter_id = dead_receipt(desk_services, "R-1")
    token = form_token(operator, "/dead-letters")
    answer = operator.post("/dead-letters/act", data={"csrf_token": token, "action": "retry",
                                                      "ids": letter_id, "why": "  "})
    assert answer.status_code == 400 and desk_services.published == []


def test_the_second_of_two_operators_is_told_who_retried_first(app, operator, desk_services):
    letter_id = dead_receipt(desk_services, "R-1")
    desk_services.users.add("otto", "operator", "otto-password-1")
    other = app.test_client()
    sign_in(other, "otto", "otto-password-1")
    token_a, token_b = form_token(operator, "/dead-letters"), form_token(other, "/dead-letters")
    form = {"action": "retry", "ids": letter_id, "why": "fixed"}
    first = operator.post("/dead-letters/act", data={**form, "csrf_token": token_a}, follow_redirects=True)
    second = other.post("/dead-letters/act", data={**form, "csrf_token": token_b}, follow_redirects=True)
    assert "1 done" in first.get_data(as_text=True)
    told = second.get_data(as_text=True)
    assert "0 done, 1 skipped" in told and "already retried by olga" in told
    assert len(desk_services.published) == 1


def test_a_viewer_sees_no_action_and_is_refused_one(viewer, desk_services):
    letter_id = dead_receipt(desk_services, "R-1")
    page = viewer.get("/dead-letters").get_data(as_text=True)
    assert letter_id in page and "Retry…" not in page and 'name="ids"' not in page
    token = csrf_of(page)
    for path in ("/dead-letters/preview", "/dead-letters/act"):
        answer = viewer.post(path, data={"csrf_token": token, "action": "retry", "ids": letter_id,
                                         "why": "sneaky"})
        assert answer.status_code == 403 and "Not allowed for your role" in answer.get_data(as_text=True)
    assert desk_services.published == [] and desk_services.relay.dead_letters.get(letter_id).status == "open"


def test_no_action_without_the_csrf_token_or_by_get(operator, desk_services):
    letter_id = dead_receipt(desk_services, "R-1")
    form = {"action": "retry", "ids": letter_id, "why": "fixed"}
    refused_ = operator.post("/dead-letters/act", data=form)
    assert refused_.status_code == 400 and "CSRF" in refused_.get_data(as_text=True)
    forged = operator.post("/dead-letters/act", data={**form, "csrf_token": "forged"})
    assert forged.status_code == 400
    assert operator.get(f"/dead-letters/act?action=retry&ids={letter_id}&reason=x").status_code == 405
    assert operator.get("/sign-out").status_code == 405
    assert desk_services.published == [] and desk_services.relay.dead_letters.get(letter_id).status == "open"


def test_event_content_is_shown_as_text(operator, desk_services):
    dead_receipt(desk_services, "R-X", order_no=XSS)
    listing = operator.get("/dead-letters?q=onerror").get_data(as_text=True)
    assert "R-X" in listing and "<script>alert" not in listing
    html = operator.get("/events/receipt.create/R-X").get_data(as_text=True)
    assert "&lt;script&gt;alert(" in html and "<script>alert" not in html and "<img src=x" not in html
    assert "script-src 'self'" in operator.get("/").headers["Content-Security-Policy"]


def test_the_event_page_tells_the_whole_story_and_explains_the_signing(operator, desk_services):
    letter_id = dead_receipt(desk_services, "R-1")
    html = operator.get("/events/receipt.create/R-1").get_data(as_text=True)
    assert f"Dead letter {letter_id}" in html and "param order_type is invalid" in html
    assert "HTTP" in html and "451" in html  # the attempt: status and Trademax's error code
    assert "api_key=‹api key›" in html and "url=‹TRADEMAX_BASE_URL›receipt" in html
    assert re.search(r"order_no=IO12345", html)
    assert operator.get(f"/dead-letter/{letter_id}").status_code == 302
    assert operator.get("/events/receipt.create/NOPE").status_code == 404
    assert operator.get("/events?q=R-1").headers["Location"].endswith("/events/receipt.create/R-1")


def test_discard_needs_a_reason_and_keeps_the_letter(operator, desk_services):
    letter_id = dead_receipt(desk_services, "R-1")
    token = form_token(operator, "/dead-letters")
    preview = operator.post("/dead-letters/preview", data={"csrf_token": token, "action": "discard",
                                                           "ids": letter_id})
    assert "kept for the record" in preview.get_data(as_text=True)
    done = operator.post("/dead-letters/act", data={"csrf_token": token, "action": "discard",
                                                    "ids": letter_id, "why": "order cancelled"},
                         follow_redirects=True)
    assert "1 done" in done.get_data(as_text=True)
    letter = desk_services.relay.dead_letters.get(letter_id)
    assert (letter.status, letter.closed_by, letter.close_reason) == ("discarded", "olga", "order cancelled")


def test_all_matching_reaches_every_matching_letter_in_the_background(operator, desk_services):
    for n in range(60):
        dead_receipt(desk_services, f"R-{n}", order_no="IO-BULK" if n % 2 else "IO-OTHER")
    dead = desk_services.relay.dead_letters
    token = form_token(operator, "/dead-letters?q=io-bulk")
    form = {"csrf_token": token, "action": "retry", "all_matching": "1", "q": "io-bulk", "status": "open",
            "operation": "", "destination": "", "reason": "", "age": ""}
    preview = operator.post("/dead-letters/preview", data=form).get_data(as_text=True)
    assert "Retry 30 dead letters?" in preview
    answer = operator.post("/dead-letters/act", data={**form, "why": "artno created"})
    job_path = answer.headers["Location"]
    deadline = time.monotonic() + 30
    while "Working…" in (page := operator.get(job_path).get_data(as_text=True)):
        assert time.monotonic() < deadline, page[-2000:]
        time.sleep(0.05)
    assert "30 done, 0 skipped, 0 failed" in page, re.sub(r"\s+", " ", page)[-1500:]
    assert dead.count() == 30 and len(desk_services.published) == 30


def test_uncertain_and_scheduled_retries_are_settled_through_the_support_actions(operator, desk_services):
    relay = desk_services.relay
    relay.client = ScriptedTrademax(OutcomeUnknownError("", operation="adjust_stock"))
    event = example("stock.adjust", event_id="rel-1", type="relative", quantity=3, reason=2)
    assert deliver(relay, "stock.adjust", event, owner="w-1") == "uncertain"
    assert "rel-1" in operator.get("/uncertain").get_data(as_text=True)
    token = form_token(operator, "/uncertain")
    done = operator.post("/uncertain/resolve", data={"csrf_token": token, "operation": "stock.adjust",
                                                     "key": "rel-1", "verdict": "delivered",
                                                     "why": "seen in Trademax"})
    assert "1 done" in done.get_data(as_text=True)
    assert relay.ledger.get("stock.adjust", "rel-1").state == "delivered"

    relay.client = ScriptedTrademax(TransientError("", operation="create_receipt", status=503))
    assert deliver(relay, "receipt.create", example("receipt.create", transaction_id="R-T"), owner="w") == \
        "retrying"
    assert "receipt.create:R-T" in operator.get("/retries").get_data(as_text=True)
    token = form_token(operator, "/retries")
    now = operator.post("/retries/run-now", data={"csrf_token": token, "ids": "receipt.create:R-T"})
    assert "1 done" in now.get_data(as_text=True)
    gone = operator.post("/retries/discard", data={"csrf_token": token, "ids": "receipt.create:R-T",
                                                   "why": "order cancelled"})
    assert "1 done" in gone.get_data(as_text=True)
    assert relay.ledger.get("receipt.create", "R-T").state == "discarded"
    audit = operator.get("/audit?actor=olga").get_data(as_text=True)
    for action in ("resolve-delivered", "run-now", "discard-retry", "sign-in"):
        assert action in audit


def test_failed_sign_ins_are_limited_and_sign_out_ends_the_session(app, desk_services):
    client = app.test_client()
    for _ in range(5):
        assert sign_in(client, "olga", "wrong-password").status_code == 401
    blocked = sign_in(client, "olga")
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.get_data(as_text=True)
    lockouts = [e for e in desk_services.tools.audit.page()[0] if e.action == "sign-in-locked"]
    assert len(lockouts) == 1 and lockouts[0].actor == "olga"  # one entry for the lockout, none per failure

    other = app.test_client()
    assert sign_in(other, "vic").status_code == 302
    cookie = other.get_cookie("wms_desk").value
    token = form_token(other, "/")
    assert other.post("/sign-out", data={"csrf_token": token}).status_code == 302
    replay = app.test_client()
    replay.set_cookie("wms_desk", cookie)
    assert replay.get("/").status_code == 302  # the copied cookie is worth nothing after sign-out


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/dead-letters"])
def test_sign_in_only_sends_people_to_the_desk_itself(app, target):
    client = app.test_client()
    token = csrf_of(client.get("/sign-in").get_data(as_text=True))
    answer = client.post("/sign-in", data={"name": "vic", "password": "viewer-pass-12", "csrf_token": token,
                                           "next": target})
    assert answer.headers["Location"] == (target if target == "/dead-letters" else "/")


def test_cookies_are_httponly_samesite_and_secure_behind_tls(app, desk_services):
    client = app.test_client()
    sign_in(client, "vic")
    cookie = client.get_cookie("wms_desk")
    assert cookie.http_only and cookie.same_site == "Lax" and not cookie.secure
    from dataclasses import replace

    from worker.web.desk.app import create_app

    desk_services.settings = replace(desk_services.settings, public_url="https://desk.example.com/")
    tls = create_app(desk_services).test_client()
    page = tls.get("/sign-in", base_url="https://desk.example.com")
    answer = tls.post("/sign-in", base_url="https://desk.example.com",
                      headers={"Referer": "https://desk.example.com/sign-in"},
                      data={"name": "vic", "password": "viewer-pass-12",
                            "csrf_token": csrf_of(page.get_data(as_text=True))})
    assert answer.status_code == 302
    assert "Secure" in answer.headers["Set-Cookie"] and "HttpOnly" in answer.headers["Set-Cookie"]


def test_another_destinations_deliveries_are_settled_on_their_own_ledger(operator, desk_services):
    """A ka-ching delivery that is uncertain, or waiting for a retry, shows on the desk as ka-ching's and
    is settled in ka-ching's ledger only (Trademax's delivery of the same event is left alone)."""
    relay = desk_services.relay
    kaching = relay.ledger_of("kaching")
    event = example("stock.adjust", event_id="k-rel", type="relative", quantity=3, reason=2)
    for key in ("k-rel", "k-retry"):
        kaching.accept({"operation": "stock.adjust", "key": key, "fields": {**event, "event_id": key}})
        fingerprint = kaching.get("stock.adjust", key).fingerprint
        kaching.claim("stock.adjust", key, fingerprint, "w-1")
    kaching.transition("stock.adjust", "k-rel", "uncertain", owner="w-1", reason="no answer")
    kaching.transition("stock.adjust", "k-retry", "retrying", owner="w-1", reason="503")
    relay.schedule.schedule("kaching/stock.adjust:k-retry", {"task": "kaching.stock.adjust"}, relay.clock())

    listed = operator.get("/uncertain").get_data(as_text=True)
    assert "k-rel" in listed and "to ka-ching" in listed and 'value="kaching"' in listed
    page = operator.get("/events/stock.adjust/k-rel?destination=kaching").get_data(as_text=True)
    assert "to ka-ching" in page and "Settle it: is it in ka-ching?" in page
    token = form_token(operator, "/uncertain")
    done = operator.post("/uncertain/resolve", data={"csrf_token": token, "operation": "stock.adjust",
                                                     "key": "k-rel", "destination": "kaching",
                                                     "verdict": "delivered", "why": "seen in ka-ching"})
    assert "1 done" in done.get_data(as_text=True)
    assert kaching.get("stock.adjust", "k-rel").state == "delivered"
    assert relay.ledger.get("stock.adjust", "k-rel") is None

    assert "kaching/stock.adjust:k-retry" in operator.get("/retries").get_data(as_text=True)
    gone = operator.post("/retries/discard", data={"csrf_token": token, "ids": "kaching/stock.adjust:k-retry",
                                                   "why": "ka-ching shop closed"})
    assert "1 done" in gone.get_data(as_text=True)
    assert kaching.get("stock.adjust", "k-retry").state == "discarded"


def test_the_overview_counts_every_destinations_deliveries(operator, desk_services):
    """The chart and the lifetime totals add every destination's ledger up (each keeps its own)."""
    from worker.web.desk.pages.overview import final_totals, per_minute

    relay = desk_services.relay
    for name in ("trademax", "kaching"):
        ledger = relay.ledger_of(name)
        event = {"operation": "stock.adjust", "key": f"{name}-1", "fields": example("stock.adjust")}
        ledger.accept(event)
        ledger.claim("stock.adjust", f"{name}-1", ledger.get("stock.adjust", f"{name}-1").fingerprint, "w")
        ledger.transition("stock.adjust", f"{name}-1", "delivered", owner="w", reason="delivered")
    assert sum(delivered for delivered, _ in per_minute(relay).values()) == 2
    assert final_totals(relay)["delivered"] == 2
    assert operator.get("/").status_code == 200
