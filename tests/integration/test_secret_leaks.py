"""The Trademax secret, the request signatures and the store's password never leave where they belong
(the request, the store's own files): not in a log line, a Redis key
or value, a task's argument summary (message headers, task events, Flower) or a Sentry event.

One end-to-end run with a distinctive secret, LOG_LEVEL=DEBUG and LOG_FORMAT=json, Sentry pointed at a
small HTTP server on 127.0.0.1 and Flower watching: deliveries (POST, and a DELETE whose signature travels
in the query string), a transient failure retried, a permanent refusal (dead letter), an invalid event, a
relative stock adjustment left uncertain, a message published by a "foreign" WMS with plain Celery, and
``wms-relay check`` (a signed GET), and the ingest door (events in with a bearer token and with HMAC
signatures; a wrong token, a replayed and a stale signature; an invalid event).  Then every haystack is
searched for the secret, every signature the sandbox saw (recomputed from the params it logged: the
sandbox never keeps them), the ingest tokens, the HMAC secret and every ingest signature — 0 hits.
The same run shows one Sentry event per dead letter or uncertain event and none per retry, and one JSON
log line per attempt.  The support desk runs too: a person signs in (once with the wrong password, once
typing the password into the name box) and reads every page; the desk users' passwords, their Argon2
hashes and the desk's session key are searched for in the pages, the logs and Redis as well."""
from __future__ import annotations

import base64
import gzip
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
import requests
from celery import Celery

import signing
from benchmarks._harness import Desk
from tests.fixtures.pipeline import FAST_SETTINGS, ROOT, Pipeline, wait_until
from tests.integration.test_delivery_pipeline import EXAMPLES, example
from tests.fixtures.ports import free_port

pytestmark = pytest.mark.integration

SECRET = "leak-canary-" + secrets.token_hex(12)
FLOWER_AUTH = ("ops", "flower-" + secrets.token_hex(6))
DESK_PASSWORD = "desk-canary-" + secrets.token_hex(8)
DESK_SESSION_KEY = "desk-session-key-canary-" + secrets.token_hex(16)
INGEST_HMAC_SECRET = "ingest-hmac-canary-" + secrets.token_hex(12)
INGEST_WEBHOOK_SECRET = "whsec_" + base64.b64encode(f"webhook-canary-{secrets.token_hex(9)}".encode()
                                                    ).decode()


class SentryInbox(ThreadingHTTPServer):
    """A Sentry ingestion endpoint on 127.0.0.1 that keeps every envelope (decompressed)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _EnvelopeHandler)
        self.envelopes: list[bytes] = []
        self.lock = threading.Lock()

    @property
    def dsn(self) -> str:
        return f"http://leaktest@127.0.0.1:{self.server_address[1]}/1"

    def events(self) -> list[dict]:
        found = []
        with self.lock:
            envelopes = list(self.envelopes)
        for raw in envelopes:
            lines = raw.split(b"\n")
            for header, payload in zip(lines[1::2], lines[2::2]):
                if header.strip() and json.loads(header).get("type") == "event":
                    found.append(json.loads(payload))
        return found


class _EnvelopeHandler(BaseHTTPRequestHandler):
    server: SentryInbox

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        with self.server.lock:
            self.server.envelopes.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


class EventTap:
    """Every Celery event (task-sent, task-received, ...) published on the broker, as it was sent."""

    def __init__(self, broker_url: str) -> None:
        self.app = Celery("leak-tap", broker=broker_url, set_as_current=False)
        self.events: list[dict] = []
        self.receiver = None
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.ready = threading.Event()

    def _listen(self) -> None:
        with self.app.connection() as connection:
            self.receiver = self.app.events.Receiver(connection, handlers={"*": self.events.append})
            self.ready.set()
            self.receiver.capture(limit=None, timeout=None, wakeup=False)

    def start(self) -> "EventTap":
        self.thread.start()
        self.ready.wait(30)
        return self

    def stop(self) -> None:
        if self.receiver is not None:
            self.receiver.should_stop = True
        self.thread.join(timeout=10)


@pytest.fixture
def leak_run(redis_server, sandbox, tmp_path):
    """The pipeline of tests/fixtures/pipeline.py with a distinctive secret, Sentry and Flower."""
    inbox = SentryInbox()
    threading.Thread(target=inbox.serve_forever, daemon=True).start()
    sb = sandbox(secret=SECRET)
    env = {**os.environ, **FAST_SETTINGS, "REDIS_URL": redis_server.url, "TRADEMAX_BASE_URL": sb.base_url,
           "TRADEMAX_API_KEY": sb.api_key, "TRADEMAX_SECRET": sb.secret,
           "WMS_RELAY_VAR_DIR": str(tmp_path / "var"), "SENTRY_DSN": inbox.dsn, "LOG_FORMAT": "json",
           "LOG_LEVEL": "DEBUG", "INGEST_TOKENS_FILE": str(tmp_path / "ingest-tokens"),
           "INGEST_HMAC_SECRETS": f"leak-wms:{INGEST_HMAC_SECRET}",
           "INGEST_WEBHOOK_SECRETS": f"leak-webhooks:{INGEST_WEBHOOK_SECRET}"}
    env.pop("FLOWER_BASIC_AUTH", None)
    run = Pipeline(env=env, redis_server=redis_server, sandbox=sb, log_dir=tmp_path)
    run.start_scheduler()
    made = subprocess.run([sys.executable, "-m", "worker.cli", "ingest", "add-token", "leak-wms"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60, check=True)
    run.ingest_token = made.stdout.strip()
    ingest_port = free_port()
    ingest = run._spawn("ingest", "ingest", "--port", str(ingest_port))
    run.ingest_url = f"http://127.0.0.1:{ingest_port}"
    flower_port = free_port()
    flower_log = open(tmp_path / "flower.log", "wb")
    flower = subprocess.Popen([sys.executable, "-m", "worker.cli", "flower", "--port", str(flower_port)],
                              cwd=ROOT, env={**env, "FLOWER_BASIC_AUTH": ":".join(FLOWER_AUTH)},
                              stdout=flower_log, stderr=subprocess.STDOUT, start_new_session=True)
    run.flower_url = f"http://127.0.0.1:{flower_port}"
    run.inbox = inbox
    run.cli_output = []
    from worker.web.desk.users import UsersFile

    UsersFile(tmp_path / "desk-users").add("dora", "operator", DESK_PASSWORD)
    desk = Desk({**env, "DESK_USERS_FILE": str(tmp_path / "desk-users"), "DESK_SECRET_KEY": DESK_SESSION_KEY},
                tmp_path / "desk.log")
    run.desk_url = desk.url
    run.desk_users = tmp_path / "desk-users"
    try:
        yield run
    finally:
        desk.stop()
        os.killpg(ingest.pid, signal.SIGTERM)
        ingest.wait(timeout=30)
        run.stop()
        os.killpg(flower.pid, signal.SIGTERM)
        flower.wait(timeout=30)
        flower_log.close()
        inbox.shutdown()
        inbox.server_close()


def cli(run: Pipeline, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "worker.cli", *argv], cwd=ROOT, env=run.env, input=stdin,
                          capture_output=True, text=True, timeout=120)
    run.cli_output.append(done.stdout + done.stderr)
    return done


def publish_as_a_foreign_wms(run: Pipeline, event: dict) -> None:
    """Publish as a WMS would with plain Celery, in a process of its own (nothing of wms-relay imported):
    the message's argsrepr is the repr of the whole event."""
    script = ("import json, sys; from celery import Celery; app = Celery('a-wms', broker=sys.argv[1]); "
              "app.send_task('trademax.receipt.create', args=[json.loads(sys.argv[2])], "
              "queue='trademax.receipt'); app.close()")
    subprocess.run([sys.executable, "-c", script, run.redis_server.url, json.dumps(event)], check=True,
                   timeout=60, cwd="/")


def flower_tasks(run: Pipeline) -> dict:
    answer = requests.get(f"{run.flower_url}/api/tasks", auth=FLOWER_AUTH, timeout=10)
    answer.raise_for_status()
    return answer.json()


def redis_haystack(client) -> tuple[bytes, set[bytes]]:
    """Every key and value in the server (GET/HGETALL/LRANGE/SMEMBERS/ZRANGE and DUMP of each), with the
    base64 bodies of Celery messages (queues, the unacked hash) decoded."""
    chunks, keys = [], set()
    for key in client.scan_iter(count=1000):
        keys.add(key)
        kind = client.type(key)
        values: list[bytes] = []
        if kind == b"string":
            values = [client.get(key) or b""]
        elif kind == b"hash":
            values = [part for pair in client.hgetall(key).items() for part in pair]
        elif kind == b"list":
            values = client.lrange(key, 0, -1)
        elif kind == b"set":
            values = list(client.smembers(key))
        elif kind == b"zset":
            values = [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
        chunks += [key, *values, client.dump(key) or b""]
        chunks += [body for value in values for body in _message_bodies(value)]
    return b"\n".join(chunks), keys


def _message_bodies(value: bytes) -> list[bytes]:
    try:
        data = json.loads(value)
    except ValueError:
        return []
    found, pending = [], [data]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            encoding = (item.get("properties") or {}).get("body_encoding")
            if isinstance(item.get("body"), str) and encoding == "base64":
                found.append(base64.b64decode(item["body"]))
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


def queued_messages(client, queue: str) -> list[dict]:
    return [json.loads(raw) for raw in client.lrange(queue, 0, -1)]


def test_no_secret_or_signature_reaches_logs_redis_flower_or_sentry_and_sentry_reports_once(leak_run):
    run = leak_run
    r = run.redis()
    wait_until(lambda: _answers(run), 60, "Flower to listen")
    tap = EventTap(run.redis_server.url).start()
    haystacks: dict[str, bytes] = {}
    try:
        # Published before any worker runs: the messages wait in their queues, headers and all.
        draft = example("dispatch.create", transaction_id="DRAFT-L", draft=True)
        assert cli(run, "enqueue", "dispatch.create", "-", stdin=json.dumps(draft)).returncode == 0
        assert cli(run, "enqueue", "receipt.create", "-",
                   stdin=json.dumps(example("receipt.create", transaction_id="R-OK"))).returncode == 0
        publish_as_a_foreign_wms(run, example("receipt.create", transaction_id="R-WMS"))
        queued = sorted(m["headers"]["argsrepr"] for q in ("trademax.dispatch", "trademax.receipt")
                        for m in queued_messages(r, q))
        assert queued[:2] == ["(trademax dispatch.create key=DRAFT-L order_no=FO123456 warehouse_id=nw)",
                              "(trademax receipt.create key=R-OK order_no=IO12345 warehouse_id=nw)"]
        assert "'order_type': 'PO'" in queued[2]  # the foreign WMS's message: the repr of everything
        haystacks["redis, queued"], _ = redis_haystack(r)

        run.start_worker()
        run.wait_for_state("dispatch.create", "DRAFT-L", "delivered")
        cli(run, "enqueue", "dispatch.delete", "-",
            stdin=json.dumps(example("dispatch.delete", transaction_id="DRAFT-L", event_id="del-L")))
        for operation, key in [("dispatch.delete", "del-L"), ("receipt.create", "R-OK"),
                               ("receipt.create", "R-WMS")]:
            run.wait_for_state(operation, key, "delivered")
        # Deleting it again is refused: a dead letter whose Sentry report carries the HTTP breadcrumb of a
        # DELETE, whose query string held the signature.
        cli(run, "enqueue", "dispatch.delete", "-",
            stdin=json.dumps(example("dispatch.delete", transaction_id="DRAFT-L", event_id="del-L2")))
        run.wait_for_state("dispatch.delete", "del-L2", "dead")

        # A transient failure, retried from the schedule, then delivered: no Sentry report.
        run.sandbox.set_faults(fail_rate=1.0)
        flaky = example("receipt.create", transaction_id="R-FLAKY")
        cli(run, "enqueue", "receipt.create", "-", stdin=json.dumps(flaky))
        wait_until(lambda: r.zscore("wms:retry:due", "receipt.create:R-FLAKY"), 30, "a scheduled retry")
        run.sandbox.set_faults(fail_rate=0.0)
        run.wait_for_state("receipt.create", "R-FLAKY", "delivered")

        # A permanent refusal, an invalid event (rejected by `enqueue` itself), an uncertain adjustment.
        cli(run, "enqueue", "stock.adjust", "-",
            stdin=json.dumps(example("stock.adjust", event_id="unknown-art", artno="UNKNOWN-1")))
        run.wait_for_state("stock.adjust", "unknown-art", "dead")
        invalid = cli(run, "enqueue", "receipt.create", str(EXAMPLES / "invalid-receipt.json"))
        assert invalid.returncode == 1 and "dead" in invalid.stdout
        run.sandbox.set_faults(timeout_after_apply_rate=1.0)
        cli(run, "enqueue", "stock.adjust", "-", stdin=json.dumps(
            example("stock.adjust", event_id="rel-L", type="relative", quantity=5, reason=2)))
        wait_until(lambda: r.hlen("unacked"), 30, "the adjustment to be in flight")
        haystacks["redis, in flight"], keys = redis_haystack(r)
        assert b"unacked" in keys
        # the configuration the worker recorded with its heartbeat (status, desk, metrics read it) is searched
        assert b"wms:heartbeat:worker:configuration" in keys
        run.wait_for_state("stock.adjust", "rel-L", "uncertain")
        run.sandbox.set_faults(timeout_after_apply_rate=0.0)

        # Support staff's view of all this, and a signed GET from `wms-relay check`.
        assert cli(run, "check").returncode == 0, run.cli_output[-1]
        for argv in (["status", "--json"], ["dead", "list", "--json"], ["uncertain", "list"],
                     ["event", "receipt.create", "R-FLAKY", "--json"],
                     ["event", "stock.adjust", "unknown-art"], ["dead", "show", "stock.adjust:unknown-art"]):
            assert cli(run, *argv).returncode == 0, run.cli_output[-1]

        ingest_signatures = through_the_ingest_door(run)
        for key in ("R-HTTP", "R-HMAC"):
            run.wait_for_state("receipt.create", key, "delivered")

        expected = [("dispatch.delete", "del-L2", "dead"), ("receipt.create", "(no key)", "dead"),
                    ("stock.adjust", "bad-http", "dead"), ("stock.adjust", "rel-L", "uncertain"),
                    ("stock.adjust", "unknown-art", "dead")]
        wait_until(lambda: len(run.inbox.events()) >= len(expected), 30, "the Sentry reports")
        wait_until(lambda: _flower_saw(run, 6), 30, "Flower to see every task")
        tasks = flower_tasks(run)
    finally:
        tap.stop()

    # Sentry: one report per dead letter or uncertain event, none per retry, each tagged.
    events = run.inbox.events()
    assert sorted((e["tags"]["operation"], e["tags"]["key"], e["tags"]["state"]) for e in events) == expected
    refused_delete = next(e for e in events if e["tags"]["key"] == "del-L2")
    crumbs = [c["data"] for c in refused_delete["breadcrumbs"]["values"] if c.get("category") == "httplib"]
    assert [c["http.method"] for c in crumbs] == ["DELETE"]
    assert "signature=[redacted]" in crumbs[0]["http.query"]  # scrubbed, not just absent

    # One JSON log line per attempt.
    worker_log = "\n".join(p.read_text(errors="replace") for p in sorted(run.log_dir.glob("worker*.log")))
    lines = [line for line in map(_json_or_none, worker_log.splitlines()) if line]
    attempts = [line for line in lines if line.get("msg") == "attempt"]
    flaky = [a for a in attempts if a["key"] == "R-FLAKY"]
    assert [(a["attempt"], a["outcome"], a["status"]) for a in flaky][-1] == (len(flaky), "delivered", 200)
    assert len(flaky) == run.record("receipt.create", "R-FLAKY").attempts >= 2
    assert all(a["status"] == 500 and a["error_code"] == 500 for a in flaky[:-1])
    assert all(isinstance(a["latency_ms"], float) for a in flaky)

    # Flower and the task events show summaries only.
    summaries = [t["args"] for t in tasks.values()]
    assert summaries and all(s.startswith("(") and " key=" in s for s in summaries), summaries
    assert "(trademax receipt.create key=R-WMS order_no=IO12345 warehouse_id=nw)" in summaries
    received = [e for e in tap.events if e.get("type") == "task-received"]
    assert received and all(e["args"].startswith("(") for e in received)
    assert not any("order_type" in e["args"] for e in received)  # the foreign WMS's full repr never shows

    # The haystacks.
    haystacks["redis, after"], _ = redis_haystack(r)
    for path in sorted(run.log_dir.glob("*.log")):
        haystacks[f"log {path.name}"] = path.read_bytes()
    haystacks["wms-relay output"] = "\n".join(run.cli_output).encode()
    haystacks["flower tasks"] = json.dumps(tasks).encode()
    haystacks["desk pages"] = desk_pages(run)
    haystacks["redis, after the desk"], _ = redis_haystack(r)
    for path in sorted(run.log_dir.glob("*.log")):
        haystacks[f"log {path.name}, after the desk"] = path.read_bytes()
    haystacks["celery events"] = json.dumps(tap.events, default=str).encode()
    haystacks["sentry envelopes"] = b"\n".join(run.inbox.envelopes)
    needles = {"the secret": SECRET.encode(), "the secret, URL-quoted": quote(SECRET, safe="").encode(),
               "the flower password": FLOWER_AUTH[1].encode(), "a desk password": DESK_PASSWORD.encode(),
               "the desk's session key": DESK_SESSION_KEY.encode(),
               "the store password": run.redis_server.password.encode(),
               "the ingest token": run.ingest_token.encode(),
               "the ingest HMAC secret": INGEST_HMAC_SECRET.encode(),
               "the ingest Standard Webhooks secret": INGEST_WEBHOOK_SECRET.encode(),
               "its key, base64": INGEST_WEBHOOK_SECRET.removeprefix("whsec_").encode(),
               "its key": base64.b64decode(INGEST_WEBHOOK_SECRET.removeprefix("whsec_"))}
    desk_hash = run.desk_users.read_text().split()[-1]
    assert desk_hash.startswith("$argon2id$")
    needles["a desk password's hash"] = desk_hash.encode()
    needles["a desk password's hash, its digest part"] = desk_hash.rsplit("$", 1)[1].encode()
    needles.update({f"ingest signature {n}": sig.encode() for n, sig in enumerate(ingest_signatures)})
    assert len(ingest_signatures) == 3 and run.ingest_token.startswith("wmsr_")
    seen = _signatures_the_sandbox_saw(run)
    assert {method for method, _, _ in seen} == {"GET", "POST", "PATCH", "DELETE"} and len(seen) >= 9
    needles.update({f"signature of {method} {path}": sig.encode() for method, path, sig in seen})
    hits = [(name, where) for name, needle in needles.items() for where, hay in haystacks.items()
            if needle in hay]
    assert hits == []
    assert any(b"wms_relay.attempts" in hay for hay in haystacks.values())  # the logs were searched
    assert any(b'"reason": "unknown_token"' in hay for name, hay in haystacks.items()
               if name.startswith("log ingest"))  # the ingest's log was searched
    # LOG_FORMAT=json, at DEBUG: every line of every process's log is one JSON object.
    for path in sorted(run.log_dir.glob("*.log")):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            assert isinstance(_json_or_none(line), dict), f"{path.name} line {number}: {line[:300]!r}"


def through_the_ingest_door(run: Pipeline) -> list[str]:
    """Events in over HTTP: with the token, with HMAC (then replayed), a wrong token, a stale signature, an
    invalid event; the answers join the CLI output haystack.  Returns the hex signatures sent."""
    from worker.web.ingest.auth import sign

    wait_until(lambda: _answers_at(f"{run.ingest_url}/healthz"), 60, "the ingest door to listen")
    url = f"{run.ingest_url}/v1/events/"
    bearer = {"Authorization": f"Bearer {run.ingest_token}"}
    answers = [requests.post(url + "receipt.create", json=example("receipt.create", transaction_id="R-HTTP"),
                             headers=bearer, timeout=30)]
    answers.append(requests.post(url + "receipt.create", json=example("receipt.create", transaction_id="R-X"),
                                 headers={"Authorization": "Bearer wmsr_" + "x" * 43}, timeout=30))
    body = json.dumps(example("receipt.create", transaction_id="R-HMAC")).encode()
    signatures = []
    for moment in (time.time(), time.time() - 3600):
        timestamp = str(int(moment))
        signature = sign(INGEST_HMAC_SECRET, timestamp, "POST", "/v1/events/receipt.create", body)
        signatures.append(signature.partition("=")[2])
        headers = {"Content-Type": "application/json", "X-WMS-Timestamp": timestamp,
                   "X-WMS-Signature": signature}
        answers += [requests.post(url + "receipt.create", data=body, headers=headers, timeout=30)
                    for _ in range(2)]  # the second is a replay
    invalid = example("stock.adjust", event_id="bad-http", quantity="lots")
    answers.append(requests.post(url + "stock.adjust", json=invalid, headers=bearer, timeout=30))
    answers.append(requests.get(url + "receipt.create/R-HTTP", headers=bearer, timeout=30))
    # Standard Webhooks (issue 22.12): signed by the reference library, then replayed.
    from datetime import datetime, timezone

    from standardwebhooks import Webhook

    body = json.dumps(example("receipt.create", transaction_id="R-WEBHOOK")).encode()
    now = datetime.now(timezone.utc)
    webhook = {"Content-Type": "application/json", "webhook-id": "msg_leak",
               "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": Webhook(INGEST_WEBHOOK_SECRET).sign("msg_leak", now, body)}
    signatures.append(webhook["webhook-signature"].partition(",")[2])
    answers += [requests.post(url + "receipt.create", data=body, headers=webhook, timeout=30)
                for _ in range(2)]
    assert [a.status_code for a in answers] == [202, 401, 202, 401, 401, 401, 422, 200, 202, 401]
    assert [a.json().get("error") for a in answers[3:6]] == ["replayed", "stale", "stale"]
    assert answers[-1].json()["error"] == "replayed"
    run.cli_output.append("\n".join(a.text for a in answers))
    return signatures


def _answers_at(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def desk_pages(run: Pipeline) -> bytes:
    """Sign in to the desk (after two mistakes: a wrong password, and the password typed as the name) and
    read every page, every dead letter's and uncertain event's page included; all the HTML, concatenated."""
    import re

    session = requests.Session()
    pages = []

    def token(html: str) -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)

    def sign_in(name: str, password: str) -> requests.Response:
        form = session.get(run.desk_url + "sign-in", timeout=30).text
        pages.append(form)
        return session.post(run.desk_url + "sign-in", timeout=30,
                            data={"name": name, "password": password, "csrf_token": token(form)})

    assert sign_in("dora", "wrong-" + DESK_PASSWORD).status_code == 401
    typed_wrong = sign_in(DESK_PASSWORD, "dora")
    assert typed_wrong.status_code == 401
    assert sign_in("dora", DESK_PASSWORD).url.rstrip("/") == run.desk_url.rstrip("/")
    paths = ["", "dead-letters", "dead-letters?status=any", "uncertain", "retries", "audit",
             "events/receipt.create/R-FLAKY", "events/stock.adjust/rel-L"]
    listing = session.get(run.desk_url + "dead-letters?status=any", timeout=30).text
    paths += sorted(set(re.findall(r'href="/(dead-letter/dl-\d+)"', listing)))
    for path in paths:
        answer = session.get(run.desk_url + path, timeout=30)
        assert answer.status_code == 200, (path, answer.status_code)
        pages.append(answer.text)
        pages.append(json.dumps(dict(answer.headers)))
    assert any("rel-L" in page for page in pages) and any("dead-letter/dl-" in p for p in pages)
    last_page = pages[-2]
    signed_out = session.post(run.desk_url + "sign-out", data={"csrf_token": token(last_page)}, timeout=30)
    pages.append(signed_out.text)
    return "\n".join(pages).encode()


def _json_or_none(line: str) -> dict | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _answers(run: Pipeline) -> bool:
    try:
        return requests.get(f"{run.flower_url}/api/workers", auth=FLOWER_AUTH, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _flower_saw(run: Pipeline, count: int) -> bool:
    tasks = flower_tasks(run)
    return len([t for t in tasks.values() if t.get("args")]) >= count


def _signatures_the_sandbox_saw(run: Pipeline) -> list[tuple[str, str, str]]:
    """The signature of every authenticated request, recomputed: the sandbox logs the params without it."""
    found = []
    for entry in run.sandbox.requests():
        params = entry["params"]
        signed = all(name in params for name in ("api_key", "timestamp", "url"))
        if entry["path"].startswith("/api/") and signed:
            found.append((entry["method"], entry["path"], signing.sign(params, SECRET)))
    return found


def test_the_sandbox_request_log_gives_back_the_signatures_sent():
    """The recomputation above is a search only if it yields what went on the wire: checked on one call."""
    from worker.errors import TrademaxError
    from worker.settings import Settings
    from worker.destinations.trademax.client import TrademaxClient

    sent = {}

    class Recorder(requests.Session):
        def request(self, method, url, **kwargs):
            sent.update(json.loads(kwargs["data"]))
            raise requests.ConnectionError("not sending")

    settings = Settings(trademax_base_url="http://127.0.0.1:9/api/", trademax_api_key="k",
                        trademax_secret=SECRET)
    with pytest.raises(TrademaxError):
        TrademaxClient(settings, clock=lambda: 1_700_000_000, session=Recorder()).create_receipt({"a": 1})
    logged = {k: v for k, v in sent.items() if k != "signature"}  # what the sandbox's log keeps
    assert signing.sign(logged, SECRET) == sent["signature"]


def test_no_destination_credential_or_stock2shop_token_leaks(redis_server, sandbox, tmp_path):
    """The same search for the other destinations' secrets: ka-ching's api key (a query parameter),
    StockTrim's signature (a header), Stock2Shop's password and every login token it issued (tokens
    expire every second here, so several are issued).  A run with counts and adjustments to all three, a
    ka-ching 500 retried, a ka-ching adjustment left uncertain, a StockTrim item refused (dead letter),
    `check`, and the support commands; then logs, Redis (the shared token's own key aside: that is where
    it lives), CLI output, Celery events and Sentry are searched — 0 hits."""
    from tests.fixtures.sandbox import CREDENTIALS, relay_environment, start_destination_sandbox
    from worker.destinations.declared import DECLARATIONS

    inbox = SentryInbox()
    threading.Thread(target=inbox.serve_forever, daemon=True).start()
    others = [start_destination_sandbox("kaching"), start_destination_sandbox("stocktrim"),
              start_destination_sandbox("stock2shop", "--token-ttl", "1", "--max-rps", "0")]
    kaching, stocktrim, stock2shop = others
    tokens: set[bytes] = set()
    stop_polling = threading.Event()
    sb = sandbox(secret=SECRET)
    env = {**os.environ, **FAST_SETTINGS, "REDIS_URL": redis_server.url, "TRADEMAX_BASE_URL": sb.base_url,
           "TRADEMAX_API_KEY": sb.api_key, "TRADEMAX_SECRET": sb.secret,
           "WMS_RELAY_VAR_DIR": str(tmp_path / "var"), "SENTRY_DSN": inbox.dsn, "LOG_FORMAT": "json",
           "LOG_LEVEL": "DEBUG", **{k: v for s in others for k, v in relay_environment(s).items()},
           "KACHING_LOCATIONS": "nw=shop-nw", "STOCKTRIM_LOCATIONS": "nw=NW",
           "STOCK2SHOP_LOCATIONS": "nw=Main",
           # Its sandbox does not limit here, and its tokens last a second: the relay's 1 request/s (which
           # paces the login and the resend after it) would always find the fresh token expired.
           "STOCK2SHOP_MAX_RPS": "0",
           # ka-ching fails every request here on purpose (its api key rides in the URL of each): its
           # circuit must not open and stop those requests (the flow tests cover the circuit).
           "KACHING_CIRCUIT_FAILURES": "1000"}
    run = Pipeline(env=env, redis_server=redis_server, sandbox=sb, log_dir=tmp_path)
    run.cli_output = []
    r = run.redis()

    def poll_tokens():  # every token a login stored for the workers to share
        while not stop_polling.wait(0.02):
            token = r.get("wms:stock2shop:token")
            if token:
                tokens.add(token)

    poller = threading.Thread(target=poll_tokens, daemon=True)
    poller.start()
    tap = EventTap(redis_server.url).start()
    try:
        run.start_scheduler()
        run.start_worker()
        counts = [example("stock.adjust", event_id=f"lc-{i}", artno=f"L-{i}", quantity=i) for i in range(6)]
        # Stock2Shop's catalog is required: the artnos' rows first (its output is searched too).
        rows = "".join(f"L-{i},P-L,L-{i},Lamp,true\n" for i in range(6))
        assert cli(run, "catalog", "import", "stock2shop", "-",
                   stdin="artno,product_code,variant_code,title,active\n" + rows).returncode == 0
        kaching.set_faults(fail_rate=1.0)
        for event in counts:  # one at a time, a second apart: the Stock2Shop token expires in between
            assert cli(run, "enqueue", "stock.adjust", "-", stdin=json.dumps(event)).returncode == 0
            run.wait_for_state("stock.adjust", event["event_id"], "delivered", destination="stock2shop")
            wait_until(lambda: r.zcard("wms:retry:due") or run.state(
                "stock.adjust", event["event_id"], "kaching") == "retrying", 30, "ka-ching to fail")
        kaching.set_faults(fail_rate=0.0)
        for event in counts:
            for destination in ("trademax", "kaching", "stocktrim"):
                run.wait_for_state("stock.adjust", event["event_id"], "delivered", destination=destination)
        cli(run, "enqueue", "stock.adjust", "-",
            stdin=json.dumps(example("stock.adjust", event_id="lc-bad", artno="UNKNOWN-9")))
        run.wait_for_state("stock.adjust", "lc-bad", "dead", destination="stocktrim")
        kaching.set_faults(timeout_after_apply_rate=1.0)
        cli(run, "enqueue", "stock.adjust", "-", stdin=json.dumps(
            example("stock.adjust", event_id="lc-rel", type="relative", quantity=5, reason=2)))
        run.wait_for_state("stock.adjust", "lc-rel", "uncertain", destination="kaching")
        kaching.set_faults(timeout_after_apply_rate=0.0)
        assert cli(run, "check").returncode == 0, run.cli_output[-1]
        for argv in (["status", "--json"], ["dead", "list", "--json"], ["uncertain", "list"],
                     ["event", "stock.adjust", "lc-0", "--json"], ["event", "stock.adjust", "lc-bad"],
                     ["dead", "show", "stocktrim/stock.adjust:lc-bad"], ["retries", "list"]):
            assert cli(run, *argv).returncode == 0, run.cli_output[-1]
        wait_until(lambda: len(inbox.events()) >= 2, 30, "the Sentry reports")
        assert len(stock2shop.state()["authentications"]) >= 3  # the token did expire and was renewed
    finally:
        stop_polling.set()
        poller.join(timeout=5)
        tap.stop()
        run.stop()
        for other in others:
            other.stop()
        inbox.shutdown()
        inbox.server_close()
    assert len(tokens) >= 2, tokens
    tags = sorted((e["tags"].get("destination"), e["tags"]["key"], e["tags"]["state"])
                  for e in inbox.events())
    assert ("kaching", "lc-rel", "uncertain") in tags and ("stocktrim", "lc-bad", "dead") in tags
    assert ("trademax", "lc-bad", "dead") in tags  # Trademax refuses the unknown artno too

    haystacks: dict[str, bytes] = {}
    shared_token = r.get("wms:stock2shop:token")
    r.delete("wms:stock2shop:token")  # its one home; everything else is searched
    haystacks["redis"], keys = redis_haystack(r)
    # the worker's recorded configuration, with ka-ching, StockTrim and Stock2Shop on, is searched too
    recorded = json.loads(r.hvals("wms:heartbeat:worker:configuration")[0])["destinations"]
    assert all(recorded[name]["on"] for name in ("kaching", "stocktrim", "stock2shop"))
    for path in sorted(run.log_dir.glob("*.log")):
        haystacks[f"log {path.name}"] = path.read_bytes()
    haystacks["wms-relay output"] = "\n".join(run.cli_output).encode()
    haystacks["celery events"] = json.dumps(tap.events, default=str).encode()
    haystacks["sentry envelopes"] = b"\n".join(inbox.envelopes)
    # Every secret the other destinations declare (KACHING_API_KEY, STOCKTRIM_AUTH_SIGNATURE,
    # STOCK2SHOP_PASSWORD, and a new destination's without an edit here).
    secrets_ = {variable.name: CREDENTIALS[declared.name][variable.name]
                for declared in DECLARATIONS if declared.name in CREDENTIALS for variable in declared.secrets}
    assert {"KACHING_API_KEY", "STOCKTRIM_AUTH_SIGNATURE", "STOCK2SHOP_PASSWORD"} <= set(secrets_)
    needles = {name: value.encode() for name, value in secrets_.items()}
    needles.update({f"{name}, URL-quoted": quote(value, safe="").encode()
                    for name, value in secrets_.items()})
    needles.update({f"Stock2Shop token {i}": token
                    for i, token in enumerate(sorted(tokens | {shared_token}))})
    hits = [(name, where) for name, needle in needles.items() for where, hay in haystacks.items()
            if needle in hay]
    assert hits == []
    assert any(b'"destination": "kaching"' in hay for hay in haystacks.values())  # the logs were searched
