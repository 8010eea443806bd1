"""The real ingest process (``wms-relay ingest`` on waitress) against a real valkey-server: the README's curl
example works as written and answers what the README shows; the event lands in the ledger and on its
Celery queue; a signed request gets in once; a store that stops answering is 503 with Retry-After, and
events sent again once it is back are admitted."""
from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
import requests

from tests.fixtures.pipeline import ROOT, wait_until
from worker.store.connection import STORE_SOCKET_TIMEOUT_SECONDS
from tests.fixtures.ports import free_port
from worker.web.ingest.auth import sign

pytestmark = pytest.mark.integration

SECRET = "ingest-hmac-" + "s" * 24
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"ingest-standard-webhooks-key-32b").decode()


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
           "INGEST_MAX_BODY_BYTES": "65536", "INGEST_WEBHOOK_SECRETS": f"wms-webhooks:{WEBHOOK_SECRET}"}
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
    per_operation = next(block for block in blocks if "dispatch.create" in block)
    signing_recipe = next(block for block in blocks if "X-WMS-Signature" in block)
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


def test_the_standard_webhooks_examples_in_the_events_guide_work_as_written(ingest):
    """docs/events.md's Standard Webhooks signers (Python with the standardwebhooks library, and openssl +
    curl), run as written: each 202; the same signed request sent again is 401 replayed (issue 22.12)."""
    guide = (ROOT / "docs" / "events.md").read_text()
    section = guide.split("## Sending events over HTTP", 1)[1].split("\n## ", 1)[0]
    python = section.split("```python", 1)[1].split("```", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```sh")[1:]]
    shell = next(block for block in blocks if "webhook-signature" in block).strip()
    env = {**os.environ, "INGEST_URL": ingest["url"], "INGEST_WEBHOOK_SECRET": WEBHOOK_SECRET}
    ran = subprocess.run([sys.executable, "-c", python], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert ran.returncode == 0 and ran.stdout.startswith("202 "), ran.stdout + ran.stderr
    curl = shell[shell.index("curl "):]
    twice = f"{shell} -o /dev/null -w '%{{http_code}}\\n'\n{curl} -o /dev/null -w '%{{http_code}}\\n'"
    done = subprocess.run(["bash", "-c", twice], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.split() == ["202", "401"], done.stdout + done.stderr
    client = ingest["redis"].client(decode_responses=True)
    key = json.loads((ROOT / "examples" / "stock.adjust.json").read_text())["event_id"]
    assert client.hget(f"wms:event:stock.adjust:{key}", "s") == "accepted"
    assert WEBHOOK_SECRET.removeprefix("whsec_") not in ingest["log"].read_text()


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


def signed_post(url: str, path: str, event: dict) -> requests.Response:
    """One POST signed afresh (a new timestamp and signature, as a WMS signs every attempt)."""
    body = json.dumps(event).encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-WMS-Timestamp": timestamp,
               "X-WMS-Signature": sign(SECRET, timestamp, "POST", path, body)}
    return requests.post(url + path, data=body, headers=headers, timeout=120)


def queued_keys(client, queue: str) -> Counter:
    """How many messages on ``queue`` carry each event_id."""
    found: Counter = Counter()
    for raw in client.lrange(queue, 0, -1):
        args = json.loads(base64.b64decode(json.loads(raw)["body"]))[0]
        found[args[0]["event"]["event_id"] if "event" in args[0] else args[0]["event_id"]] += 1
    return found


def post_during_a_stall(ingest, events: list[dict], stall_seconds: float) -> dict[str, requests.Response]:
    """SIGSTOP the store, POST each event signed from its own thread (the door's 8 threads all wait on a
    store call), SIGCONT after ``stall_seconds``; each event's answer."""
    path = "/v1/events/stock.adjust"
    answers: dict[str, requests.Response] = {}
    assert signed_post(ingest["url"], path, {**events[0], "event_id": "warm-up"}).status_code == 202

    def post(event: dict) -> None:
        answers[event["event_id"]] = signed_post(ingest["url"], path, event)

    threads = [threading.Thread(target=post, args=(event,)) for event in events]
    pid = ingest["redis"].process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        for thread in threads:
            thread.start()
        time.sleep(stall_seconds)
    finally:
        os.kill(pid, signal.SIGCONT)
    for thread in threads:
        thread.join(timeout=180)
    assert len(answers) == len(events), ingest["log"].read_text()[-3000:]
    return answers


def test_signed_posts_during_a_store_stall_are_admitted_once_or_503_never_401(ingest):
    """Issue 23.1: the replay guard's SET NX, resent by redis-py after the 5 s socket timeout, found its
    own first write when the store woke and answered `401 replayed` (19 of 24 tries): the event was never
    admitted, and a WMS that takes 401 as final loses it.  A 7 s stall under 24 signed POSTs: each is
    admitted exactly once (in the ledger, one message on its queue) or answered 503 — never 401."""
    event = json.loads((ROOT / "examples" / "stock.adjust.json").read_text())
    events = [{**event, "event_id": f"stall-{n}"} for n in range(24)]
    answers = post_during_a_stall(ingest, events, STORE_SOCKET_TIMEOUT_SECONDS + 2)
    statuses = Counter(answer.status_code for answer in answers.values())
    assert set(statuses) <= {202, 503}, {key: (a.status_code, a.text[:200]) for key, a in answers.items()}
    assert statuses[202] >= 8, statuses  # the stall was survived, not just answered 503
    client = ingest["redis"].client(decode_responses=True)
    queued = queued_keys(client, "trademax.stock")
    for key, answer in answers.items():
        if answer.status_code == 202:
            assert client.hget(f"wms:event:stock.adjust:{key}", "s") == "accepted", key
            assert queued[key] == 1, (key, queued[key])
    assert "Traceback" not in ingest["log"].read_text()


def test_events_answered_503_during_a_long_store_freeze_are_not_kept(ingest):
    """Issue 23.8: the door answers 503 "nothing of it was kept" — but a frozen store runs what it was sent
    when it wakes, and an event answered 503 during a 40 s freeze was delivered later anyway.  Four clients
    POST batches of 150 events — four from before the freeze, two more from within it — while the store
    is frozen 22 s (longer than the door waits: 503s), then thawed: every event answered 503 left no record
    and no message; every event answered 202 is in the ledger and on its queue exactly once."""
    url = f"{ingest['url']}/v1/events/stock.adjust"
    auth = {"Authorization": f"Bearer {ingest['token']}"}
    event = json.loads((ROOT / "examples" / "stock.adjust.json").read_text())
    answers: dict[str, int] = {}
    thawed = threading.Event()

    def client(name: str) -> None:
        for round_ in range(100):
            batch = [{**event, "event_id": f"freeze-{name}-{round_}-{n}"} for n in range(150)]
            answer = requests.post(url, json=batch, headers=auth, timeout=120)
            for sent, got in zip(batch, answer.json()["events"]):
                answers[sent["event_id"]] = got["status"]
            if thawed.is_set():
                return

    threads = [threading.Thread(target=client, args=(str(n),)) for n in range(6)]
    for thread in threads[:4]:
        thread.start()
    time.sleep(1.0)
    pid = ingest["redis"].process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(1.0)
        for thread in threads[4:]:
            thread.start()
        time.sleep(21)
    finally:
        os.kill(pid, signal.SIGCONT)
        thawed.set()
    for thread in threads:
        thread.join(timeout=180)
    statuses = Counter(answers.values())
    assert statuses[503] > 0 and statuses[202] > 0, statuses
    client_ = ingest["redis"].client(decode_responses=True)

    def wrong() -> dict:
        queued = queued_keys(client_, "trademax.stock")
        kept = {key: (client_.hget(f"wms:event:stock.adjust:{key}", "s"), queued[key]) for key in answers}
        return {key: (answers[key], seen) for key, seen in kept.items()
                if seen != ((None, 0) if answers[key] == 503 else ("accepted", 1))}

    # What the store ran before it froze and could not answer is taken back once it answers (the door's
    # withdrawals, every second); what it runs only on waking does nothing.
    try:
        wait_until(lambda: not wrong(), 30, "the admissions answered 503 to be taken back")
    except AssertionError:
        assert wrong() == {}, (statuses, dict(list(wrong().items())[:10]))


def test_json_nested_past_what_the_parser_reads_is_400_from_the_real_server(ingest):
    """Issue 23.8: JSON nested >= 5,000 deep was a RecursionError in a waitress thread, answered 500 "send
    again"; now 400 saying so, and an event nested 400 deep is still judged by its schema (422)."""
    url = f"{ingest['url']}/v1/events/stock.adjust"
    auth = {"Authorization": f"Bearer {ingest['token']}", "Content-Type": "application/json"}
    for depth in (5_000, 30_000):
        answer = requests.post(url, data="[" * depth + "]" * depth, headers=auth, timeout=30)
        assert answer.status_code == 400, answer.text[:300]
        assert "nested more deeply than the JSON parser reads" in answer.json()["message"]
    event = json.loads((ROOT / "examples" / "stock.adjust.json").read_text())
    deep = json.dumps({**event, "event_id": "deep-400", "a": json.loads("[" * 400 + "]" * 400)})
    judged = requests.post(url, data=deep, headers=auth, timeout=30)
    assert judged.status_code == 422
    assert "Nested too deeply" in json.dumps(judged.json()["events"][0]["errors"])
    assert "Traceback" not in ingest["log"].read_text()
