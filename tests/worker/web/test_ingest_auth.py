"""Only known callers get in: a bearer token whose hash is in INGEST_TOKENS_FILE (limited to its operations:
403 otherwise), or an HMAC signature of timestamp, method, path and body — a missing, wrong, malformed,
stale (> 5 minutes) or replayed one is 401.  Refusals are counted and logged without the credential.  The
tokens file holds hashes only; the door refuses a non-loopback address without credentials."""
from __future__ import annotations

import hashlib
import logging

import pytest

from tests.worker.web.conftest import HMAC_SECRET, NOW, Door, example
from worker.settings import Settings, SettingsError
from worker.web.ingest.auth import MAX_AGE_SECONDS, sign
from worker.web.ingest.tokens import TokenFile, TokenFileError, add_token, parse
from worker.web.serving import is_loopback, refuse_exposure

PATH = "/v1/events/stock.adjust"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def signed(body: bytes, *, at: float = NOW, secret: str = HMAC_SECRET, method="POST", path=PATH) -> dict:
    timestamp = str(int(at))
    return {"X-WMS-Timestamp": timestamp, "X-WMS-Signature": sign(secret, timestamp, method, path, body)}


def body_of(event: dict) -> bytes:
    import json

    return json.dumps(event).encode()


def test_a_known_token_gets_in(guarded):
    door, tokens = guarded
    answer = door.post("stock.adjust", example("stock.adjust"), headers=bearer(tokens["nw-wms"]))
    assert answer.status_code == 202


@pytest.mark.parametrize("headers, reason", [
    ({}, "missing"),
    ({"Authorization": "Bearer wmsr_not-a-token"}, "unknown_token"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "malformed"),
])
def test_a_missing_or_wrong_token_is_401_and_nothing_is_admitted(guarded, headers, reason):
    door, _ = guarded
    answer = door.post("stock.adjust", example("stock.adjust"), headers=headers)
    assert answer.status_code == 401
    assert answer.get_json()["error"] == reason
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert door.queued == [] and door.relay.dead_letters.count() == 0


def test_a_token_limited_to_some_operations_is_403_for_the_others(guarded):
    door, tokens = guarded
    stock_only = bearer(tokens["stock-only"])
    assert door.post("stock.adjust", example("stock.adjust"), headers=stock_only).status_code == 202
    answer = door.post("receipt.create", example("receipt.create"), headers=stock_only)
    assert answer.status_code == 403 and answer.get_json()["error"] == "forbidden_operation"
    assert door.client.get("/v1/events/receipt.create/x", headers=stock_only).status_code == 403


def test_get_needs_credentials_too(guarded):
    door, tokens = guarded
    assert door.client.get("/v1/events/stock.adjust/x").status_code == 401
    assert door.client.get("/v1/events/stock.adjust/x", headers=bearer(tokens["nw-wms"])).status_code == 404


def test_a_signed_request_gets_in_once(guarded):
    door, _ = guarded
    body = body_of(example("stock.adjust"))
    headers = signed(body)
    assert door.post("stock.adjust", body, headers=headers).status_code == 202
    replayed = door.post("stock.adjust", body, headers=headers)
    assert (replayed.status_code, replayed.get_json()["error"]) == (401, "replayed")
    assert len(door.queued) == 1


class ResentAfterItRan:
    """A store client whose SET runs, loses its answer and is resent — what redis-py does after a socket
    timeout when a stalled store wakes (the resend is the answer the caller sees)."""

    def __init__(self, real) -> None:
        self.real = real

    def set(self, *args, **kwargs):
        self.real.set(*args, **kwargs)
        return self.real.set(*args, **kwargs)

    def get(self, key):
        return self.real.get(key)


def test_the_replay_guard_takes_its_own_resent_write_for_a_first_use():
    """Issue 23.1: a SET NX resent after it ran was refused as a replay (401, the event never admitted).
    The guard writes its own owner id: its own write is a first use, another request's is a replay."""
    import fakeredis

    from worker.web.ingest.auth import replay_guard

    store = fakeredis.FakeRedis(decode_responses=True)
    first_use = replay_guard(ResentAfterItRan(store))
    assert first_use("d" * 64) is True
    assert first_use("d" * 64) is False  # a second request with the same signature: a replay
    assert 0 < store.ttl("wms:ingest:seen:" + "d" * 64) <= 2 * MAX_AGE_SECONDS
    assert replay_guard(ResentAfterItRan(fakeredis.FakeRedis()))("e" * 64) is True  # a bytes client too


@pytest.mark.parametrize("change, reason", [
    ({"secret": "another-secret-of-enough-length"}, "bad_signature"),
    ({"path": "/v1/events/dispatch.update"}, "bad_signature"),  # signed for another operation
    ({"method": "GET"}, "bad_signature"),
    ({"at": NOW - MAX_AGE_SECONDS - 1}, "stale"),
    ({"at": NOW + MAX_AGE_SECONDS + 1}, "stale"),
])
def test_a_wrong_or_stale_signature_is_401(guarded, change, reason):
    door, _ = guarded
    body = body_of(example("stock.adjust"))
    answer = door.post("stock.adjust", body, headers=signed(body, **change))
    assert (answer.status_code, answer.get_json()["error"]) == (401, reason)
    assert door.queued == []


def test_a_signature_over_another_body_is_401(guarded):
    door, _ = guarded
    body = body_of(example("stock.adjust"))
    tampered = body_of(example("stock.adjust", quantity=7000))
    assert door.post("stock.adjust", tampered, headers=signed(body)).get_json()["error"] == "bad_signature"


def test_a_malformed_signature_header_is_401(guarded):
    door, _ = guarded
    answer = door.post("stock.adjust", b"{}", headers={"X-WMS-Timestamp": "soon", "X-WMS-Signature": "md5=x"})
    assert (answer.status_code, answer.get_json()["error"]) == (401, "malformed")


def test_refusals_are_counted_and_logged_without_the_credential(guarded, caplog):
    door, _ = guarded
    wrong_token = "wmsr_" + "q" * 43
    body = body_of(example("stock.adjust"))
    stale = signed(body, at=NOW - 3600)
    with caplog.at_level(logging.WARNING, logger="wms_relay.ingest"):
        door.post("stock.adjust", example("stock.adjust"), headers=bearer(wrong_token))
        door.post("stock.adjust", body, headers=stale)
        door.post("stock.adjust", example("stock.adjust"))
    counts = door.client.get("/healthz").get_json()["refused_credentials"]
    assert counts == {"unknown_token": 1, "stale": 1, "missing": 1}
    assert len(caplog.records) == 3  # one request line each, a WARNING, with the reason as a field
    lines = [record.fields for record in caplog.records]
    assert [(line["status"], line["reason"]) for line in lines] == [
        (401, "unknown_token"), (401, "stale"), (401, "missing")]
    logged = caplog.text + repr(lines)
    assert wrong_token not in logged
    assert stale["X-WMS-Signature"][7:] not in logged and HMAC_SECRET not in logged


def test_the_tokens_file_keeps_hashes_only(tokens_file):
    token = add_token(tokens_file, "nw-wms", ["stock.adjust", "receipt.create"])
    text = tokens_file.read_text()
    assert token.startswith("wmsr_") and len(token) >= 45
    assert token not in text
    assert hashlib.sha256(token.encode()).hexdigest() in text
    assert (tokens_file.stat().st_mode & 0o777) == 0o600
    entry = TokenFile(tokens_file).match(token)
    assert entry.client == "nw-wms" and entry.allows("stock.adjust") and not entry.allows("dispatch.create")
    assert TokenFile(tokens_file).match(token[:-1]) is None


def test_a_token_added_while_the_door_runs_is_accepted_without_a_restart(tokens_file):
    add_token(tokens_file, "first")
    clock = [0.0]
    tokens = TokenFile(tokens_file, clock=lambda: clock[0])
    later = add_token(tokens_file, "second")
    assert tokens.match(later) is None  # not re-read yet
    clock[0] += 1
    assert tokens.match(later).client == "second"


def test_the_tokens_file_as_it_is_now_within_a_second_deleted_or_malformed(guarded, tokens_file):
    """Issue 23.8: a deleted INGEST_TOKENS_FILE kept its loaded tokens working; a malformed one made every
    bearer request 500 while /healthz said ok.  Within a second of the change: deleted → no tokens (401),
    malformed → bearer requests 503 and /healthz 503 naming the file and line; fixed → back."""
    import time

    from worker.web.ingest.tokens import RELOAD_SECONDS

    assert RELOAD_SECONDS <= 1.0
    door, tokens = guarded
    token = bearer(tokens["nw-wms"])
    event = example("stock.adjust")
    assert door.post("stock.adjust", event, headers=token).status_code == 202
    good = tokens_file.read_text()

    tokens_file.write_text(good + "nw-wms wmsr_a-token-pasted-by-mistake\n")
    time.sleep(RELOAD_SECONDS + 0.05)
    refused = door.post("stock.adjust", event, headers=token)
    assert (refused.status_code, refused.get_json()["error"]) == (503, "tokens_unreadable")
    assert refused.headers["Retry-After"]
    health = door.client.get("/healthz")
    assert health.status_code == 503 and health.get_json()["status"] == "degraded"
    [problem] = health.get_json()["problems"]
    assert f"INGEST_TOKENS_FILE {tokens_file} line 3" in problem and "wmsr_a-token" not in problem
    assert door.post("stock.adjust", body_of(event), headers=signed(body_of(event))).status_code == 202

    tokens_file.unlink()
    time.sleep(RELOAD_SECONDS + 0.05)
    gone = door.post("stock.adjust", event, headers=token)
    assert (gone.status_code, gone.get_json()["error"]) == (401, "unknown_token")
    assert door.client.get("/healthz").status_code == 200

    tokens_file.write_text(good)
    time.sleep(RELOAD_SECONDS + 0.05)
    assert door.post("stock.adjust", event, headers=token).status_code == 202
    assert "problems" not in door.client.get("/healthz").get_json()


def test_a_malformed_tokens_file_is_named_without_its_content(tmp_path):
    path = tmp_path / "tokens"
    path.write_text("nw-wms wmsr_a-token-pasted-by-mistake\n")
    with pytest.raises(TokenFileError) as caught:
        TokenFile(path)
    assert "line 1" in str(caught.value) and "wmsr_a-token" not in str(caught.value)
    with pytest.raises(TokenFileError, match="add-token"):
        TokenFile(tmp_path / "missing")
    assert parse("# comment only\n\n", "x") == []


def test_hmac_secrets_setting_is_checked_without_quoting_it():
    with pytest.raises(SettingsError, match="INGEST_HMAC_SECRETS") as caught:
        Settings.from_env({"INGEST_HMAC_SECRETS": "wms:short"})
    assert "short" not in str(caught.value)
    assert HMAC_SECRET not in repr(Settings.from_env({"INGEST_HMAC_SECRETS": f"wms:{HMAC_SECRET}"}))


def test_no_credentials_means_loopback_only():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("10.0.0.5")
    door = {"what": "the ingest door", "credentials": "INGEST_TOKENS_FILE"}
    refuse_exposure("127.0.0.1", has_credentials=False, **door)
    refuse_exposure("0.0.0.0", has_credentials=True, **door)
    with pytest.raises(SettingsError, match="INGEST_TOKENS_FILE"):
        refuse_exposure("0.0.0.0", has_credentials=False, **door)


def test_the_ingest_command_refuses_a_public_address_without_credentials(tmp_path, monkeypatch, capsys):
    from worker.cli import main

    monkeypatch.delenv("INGEST_TOKENS_FILE", raising=False)
    monkeypatch.delenv("INGEST_HMAC_SECRETS", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")  # never reached: refused before serving
    assert main(["ingest", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "INGEST_TOKENS_FILE" in capsys.readouterr().err


def test_an_open_door_lets_anyone_in(tmp_path):
    door = Door(tmp_path)
    assert door.app.extensions["wms_relay_ingest"].keeper.is_open
    assert door.post("stock.adjust", example("stock.adjust")).status_code == 202


def test_log_scrubbing_knows_the_ingest_credentials():
    from worker.redaction import Scrubber

    scrub = Scrubber.from_settings(Settings(ingest_hmac_secrets=f"signer:{HMAC_SECRET}"))
    token = "wmsr_" + "Ab3_-" * 9
    line = f"headers Authorization: Bearer {token} secret={HMAC_SECRET} raw {token} sig {HMAC_SECRET}"
    cleaned = scrub.text(line)
    assert token not in cleaned and HMAC_SECRET not in cleaned
    assert scrub.scrub({"X-WMS-Signature": "sha256=" + "a" * 64})["X-WMS-Signature"] != "sha256=" + "a" * 64


def test_add_token_prints_the_token_once_and_keeps_its_hash(tokens_file, monkeypatch, capsys):
    from worker.cli import main

    monkeypatch.setenv("INGEST_TOKENS_FILE", str(tokens_file))
    assert main(["ingest", "add-token", "nw-wms", "--operations", "stock.adjust"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert token.startswith("wmsr_") and "shown only now" in err and token not in err
    assert TokenFile(tokens_file).match(token).operations == frozenset({"stock.adjust"})
    assert main(["ingest", "add-token", "nw-wms", "--operations", "stock.adjst"]) == 2
    monkeypatch.delenv("INGEST_TOKENS_FILE")
    assert main(["ingest", "add-token", "x"]) == 2
