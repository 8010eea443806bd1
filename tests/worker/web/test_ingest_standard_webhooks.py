"""Standard Webhooks at the ingest door (issue 22.12): a request signed by the ``standardwebhooks`` library's
own signer gets in (as its client); a replay of the same message is 401 replayed, a sender's resend
signed afresh is let in (its event recognised by its key); a timestamp outside the 300 s tolerance, a
wrong secret, another body, a malformed header are 401; a secret being rotated works with either;
INGEST_WEBHOOK_SECRETS is checked at start-up without quoting it and scrubbed from logs."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest
from standardwebhooks import Webhook

from tests.worker.web.conftest import NOW, Door, example
from worker.settings import Settings, SettingsError
from worker.web.ingest.auth import MAX_AGE_SECONDS

SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-test-key-32-by").decode()
NEXT_SECRET = "whsec_" + base64.b64encode(b"the-next-key-of-a-rotation-32-by").decode()


def webhook_headers(body: bytes, *, msg_id: str = "msg_1", at: float = NOW, secret: str = SECRET) -> dict:
    """What a Standard Webhooks sender sends, signed by the reference library."""
    moment = datetime.fromtimestamp(int(at), tz=timezone.utc)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at)),
            "webhook-signature": Webhook(secret).sign(msg_id, moment, body)}


@pytest.fixture
def door(tmp_path) -> Door:
    return Door(tmp_path, ingest_webhook_secrets=f"nw-wms:{SECRET}")


def body_of(event: dict) -> bytes:
    return json.dumps(event).encode()


def test_a_request_signed_with_the_standard_webhooks_library_gets_in_once(door):
    body = body_of(example("stock.adjust"))
    headers = webhook_headers(body)
    admitted = door.post("stock.adjust", body, headers=headers)
    assert admitted.status_code == 202, admitted.get_data()
    assert len(door.queued) == 1
    replayed = door.post("stock.adjust", body, headers=headers)
    assert (replayed.status_code, replayed.get_json()["error"]) == (401, "replayed")
    # The sender's own resend of the message: same webhook-id, signed afresh a little later.
    resent = door.post("stock.adjust", body, headers=webhook_headers(body, at=NOW + 30))
    assert resent.status_code == 202 and resent.get_json()["events"][0]["note"].startswith("already accepted")
    assert door.app.extensions["wms_relay_ingest"].refusal_counts() == {"replayed": 1}


@pytest.mark.parametrize("change, reason", [
    ({"at": NOW - MAX_AGE_SECONDS - 1}, "stale"),
    ({"at": NOW + MAX_AGE_SECONDS + 1}, "stale"),
    ({"secret": "whsec_" + base64.b64encode(b"x" * 32).decode()}, "bad_signature"),
    ({"body": b'{"event_id": "other"}'}, "bad_signature"),
    ({"msg_id": "msg 1"}, "malformed"),
])
def test_a_wrong_stale_or_malformed_signature_is_401(door, change, reason):
    body = body_of(example("stock.adjust"))
    signed_body = change.pop("body", body)
    headers = webhook_headers(signed_body, **change)
    answer = door.post("stock.adjust", body, headers=headers)
    assert (answer.status_code, answer.get_json()["error"]) == (401, reason)
    assert door.queued == []


def test_headers_missing_or_malformed_are_named(door):
    body = body_of(example("stock.adjust"))
    headers = webhook_headers(body)
    for broken in ({**headers, "webhook-signature": "v1,not-base64"},
                   {key: value for key, value in headers.items() if key != "webhook-id"},
                   {**headers, "webhook-signature": " ".join([headers["webhook-signature"]] * 9)},
                   {**headers, "webhook-timestamp": "soon"}):
        answer = door.post("stock.adjust", body, headers=broken)
        assert (answer.status_code, answer.get_json()["error"]) == (401, "malformed"), broken
        assert "webhook-id" in answer.get_json()["message"]


def test_a_secret_being_rotated_works_with_either_and_names_its_client(tmp_path):
    door = Door(tmp_path, ingest_webhook_secrets=f"nw-wms:{SECRET},nw-wms:{NEXT_SECRET},se-wms:"
                                                 + "whsec_" + base64.b64encode(b"s" * 24).decode())
    body = body_of(example("stock.adjust"))
    for n, secret in enumerate((SECRET, NEXT_SECRET)):
        assert door.post("stock.adjust", body, headers=webhook_headers(body, msg_id=f"m{n}", secret=secret)
                         ).status_code == 202
    # Two signatures in one header (the sender signs with old and new while rotating): one must match.
    headers = webhook_headers(body, msg_id="m3")
    other = webhook_headers(body, msg_id="m3", secret="whsec_" + base64.b64encode(b"z" * 32).decode())
    headers["webhook-signature"] = other["webhook-signature"] + " " + headers["webhook-signature"]
    assert door.post("stock.adjust", body, headers=headers).status_code == 202


def test_the_setting_is_checked_without_quoting_it():
    for bad in ("nw-wms", "nw-wms:", "nw-wms:whsec_%%%not-base64%%%",
                "nw-wms:whsec_" + base64.b64encode(b"short-key").decode()):
        with pytest.raises(SettingsError, match="INGEST_WEBHOOK_SECRETS") as caught:
            Settings.from_env({"INGEST_WEBHOOK_SECRETS": bad})
        assert "not-base64" not in str(caught.value) and "c2hvcnQta2V5" not in str(caught.value)
    assert Settings.from_env({"INGEST_WEBHOOK_SECRETS": f"nw-wms:{SECRET}"}).ingest_webhook_secrets
    assert SECRET not in repr(Settings(ingest_webhook_secrets=f"nw-wms:{SECRET}"))


def test_the_secret_is_scrubbed_from_logs_and_the_signature_header_from_data():
    from worker.redaction import Scrubber

    scrub = Scrubber.from_settings(Settings(ingest_webhook_secrets=f"nw-wms:{SECRET}"))
    cleaned = scrub.text(f"secret {SECRET} key {SECRET.removeprefix('whsec_')}")
    assert SECRET.removeprefix("whsec_") not in cleaned
    assert scrub.scrub({"webhook-signature": "v1,abc"})["webhook-signature"] != "v1,abc"


def test_a_webhook_secret_alone_closes_the_door_and_allows_any_address(tmp_path):
    door = Door(tmp_path, ingest_webhook_secrets=f"nw-wms:{SECRET}")
    keeper = door.app.extensions["wms_relay_ingest"].keeper
    assert not keeper.is_open and keeper.has_credentials
    assert door.post("stock.adjust", example("stock.adjust")).status_code == 401


def test_the_openapi_document_names_the_scheme(door):
    document = door.client.get("/openapi.json").get_json()
    scheme = document["components"]["securitySchemes"]["standardWebhooks"]
    assert scheme["name"] == "webhook-signature" and "webhook-id" in scheme["description"]
    assert {"standardWebhooks": []} in document["security"]
