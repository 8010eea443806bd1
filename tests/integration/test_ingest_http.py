"""The real ingest process (``wms-relay ingest`` on waitress) against a real valkey-server: the README's curl
example works as written and answers what the README shows; the event lands in the ledger and on its
Celery queue; a signed request gets in once; a store that stops answering is 503 with Retry-After, and
events sent again once it is back are admitted."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.fixtures.pipeline import ROOT, wait_until
from worker.store.embedded import free_port
from worker.web.ingest.auth import sign

pytestmark = pytest.mark.integration

SECRET = "ingest-hmac-" + "s" * 24


def readme_example() -> tuple[str, dict]:
    """The curl command of the README's ingest example, and the answer the README says it gets."""
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- ingest-example:", 1)[1]
    script = block.split("```sh", 1)[1].split("```", 1)[0]
    curl = re.search(r"^curl .*?[^\\]$", script, flags=re.M | re.S).group(0)
    answer = json.loads(block.split("```json", 1)[1].split("```", 1)[0])
    return curl, answer


@pytest.fixture
def ingest(redis_server, tmp_path):
    tokens_file = tmp_path / "tokens"
    env = {**os.environ, "REDIS_URL": redis_server.url, "WMS_RELAY_VAR_DIR": str(tmp_path / "var"),
           "INGEST_TOKENS_FILE": str(tokens_file), "INGEST_HMAC_SECRETS": f"signer:{SECRET}",
           "INGEST_MAX_BODY_BYTES": "65536"}
    env.pop("SENTRY_DSN", None)
    made = subprocess.run([sys.executable, "-m", "worker.cli", "ingest", "add-token", "nw-wms"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    port = free_port()
    log = open(tmp_path / "ingest.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "worker.cli", "ingest", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def ready():
        assert proc.poll() is None, (tmp_path / "ingest.log").read_text()
        try:
            return requests.get(f"{url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(ready, 60, "the ingest door to answer")
        yield {"url": url, "token": token, "env": env, "redis": redis_server, "log": tmp_path / "ingest.log"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def test_the_readmes_curl_example_answers_what_the_readme_shows(ingest):
    curl, documented = readme_example()
    done = subprocess.run(["bash", "-c", curl + " -w '\\n%{http_code}'"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60,
                          env={**os.environ, "INGEST_URL": ingest["url"], "INGEST_TOKEN": ingest["token"]})
    body, _, status = done.stdout.rpartition("\n")
    assert (done.returncode, status) == (0, "202"), done.stdout + done.stderr
    assert json.loads(body) == documented
    client = ingest["redis"].client(decode_responses=True)
    key = documented["events"][0]["key"]
    assert client.hget(f"wms:event:stock.adjust:{key}", "s") == "accepted"
    [message] = client.lrange("trademax.stock", 0, -1)
    assert json.loads(message)["headers"]["task"] == "trademax.stock.adjust"
    view = requests.get(f"{ingest['url']}/v1/events/stock.adjust/{key}", timeout=10,
                        headers={"Authorization": f"Bearer {ingest['token']}"}).json()
    assert (view["state"], view["key"]) == ("accepted", key)
    assert ingest["token"] not in ingest["log"].read_text()


def test_a_signed_request_gets_in_once_over_the_wire(ingest):
    body = (ROOT / "examples" / "receipt.create.json").read_bytes()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-WMS-Timestamp": timestamp,
               "X-WMS-Signature": sign(SECRET, timestamp, "POST", "/v1/events/receipt.create", body)}
    url = f"{ingest['url']}/v1/events/receipt.create"
    assert requests.post(url, data=body, headers=headers, timeout=10).status_code == 202
    again = requests.post(url, data=body, headers=headers, timeout=10)
    assert (again.status_code, again.json()["error"]) == (401, "replayed")
    assert requests.post(url, data=body, timeout=10).status_code == 401


def test_a_store_that_stops_answering_is_503_and_the_events_sent_again_are_admitted(ingest):
    url = f"{ingest['url']}/v1/events/stock.adjust"
    auth = {"Authorization": f"Bearer {ingest['token']}"}
    event = json.loads((ROOT / "examples" / "stock.adjust.json").read_text())
    batch = [{**event, "event_id": f"outage-{n}"} for n in range(3)]
    ingest["redis"].stop()
    try:
        down = requests.post(url, json=batch, headers=auth, timeout=60)
        assert down.status_code == 503 and down.headers["Retry-After"] == "5"
        assert [e["status"] for e in down.json()["events"]] == [503, 503, 503]
        log = ingest["log"].read_text()
        assert "WARNING wms_relay.ingest: request method=POST path=/v1/events/stock.adjust status=503" in log
        assert "Traceback" not in log
    finally:
        ingest["redis"].start()

    def admitted():
        answer = requests.post(url, json=batch, headers=auth, timeout=60)
        return answer.status_code == 202 and answer

    back = wait_until(admitted, 60, "the door to admit again once the store is back")
    assert [e["state"] for e in back.json()["events"]] == ["accepted"] * 3


def test_every_curl_example_in_the_events_guide_works(ingest):
    """docs/events.md: one curl per operation (all 202), and the openssl signing recipe (202 once)."""
    guide = (ROOT / "docs" / "events.md").read_text()
    section = guide.split("## Sending events over HTTP", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```sh")[1:]]
    per_operation, signing_recipe = blocks
    env = {**os.environ, "INGEST_TOKEN": ingest["token"], "INGEST_HMAC_SECRET": SECRET}
    script = per_operation.replace("INGEST_URL=http://127.0.0.1:8081", f"INGEST_URL={ingest['url']}")
    lines = [line for line in script.splitlines() if line.startswith("curl ")]
    assert len(lines) == 9
    for line in lines:
        script = script.replace(line, line + " -o /dev/null -w '%{http_code}\\n'")
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.split() == ["202"] * 9, done.stdout + done.stderr
    signed = f"INGEST_URL={ingest['url']}\n{signing_recipe.strip()} -w '\\n%{{http_code}}'"
    done = subprocess.run(["bash", "-c", signed], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.rsplit("\n", 1)[1] == "202", done.stdout + done.stderr


def test_a_body_over_the_cap_is_413_from_the_real_server(ingest):
    url = f"{ingest['url']}/v1/events/stock.adjust"
    headers = {"Authorization": f"Bearer {ingest['token']}", "Content-Type": "application/json"}
    event = json.loads((ROOT / "examples" / "stock.adjust.json").read_text())
    over = json.dumps([{**event, "event_id": f"big-{n}"} for n in range(600)])  # ~84 KB > 64 KiB
    assert 65536 < len(over) < 2 * 65536  # over the app's cap, under waitress's
    answer = requests.post(url, data=over, headers=headers, timeout=30)
    assert answer.status_code == 413, answer.text[:300]
    assert answer.json()["error"] == "too_large"
    far_over = "[" + ",".join([json.dumps(event)] * 2000) + "]"  # ~400 KB: waitress stops it unread
    assert requests.post(url, data=far_over, headers=headers, timeout=30).status_code == 413
    assert ingest["redis"].client().llen("trademax.stock") == 0
