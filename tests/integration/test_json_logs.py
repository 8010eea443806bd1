"""LOG_FORMAT=json: every line every process writes is one JSON object, and the lines say what happened in
fields, not in strings.

``make run``'s set of processes — ``wms-relay demo``: the embedded store, four sandboxes, a worker, the
scheduler, Flower, the desk and the ingest door, fed the sample events — plus, against the same store, a
second ingest door with tokens (to be refused) and the metrics endpoint.  Requests go to the doors (a
request id of the caller's, one that is not sane, a form post, a dry run, a wrong token), then everything
is stopped with SIGTERM (so the shutdown words are written too), and every line of every log is parsed:
stdout and stderr of each process, no exceptions.  Then the fields: the ingest's request lines (method,
path, status, client, count, first key, request id), the refusal and the 415, the worker's attempt lines
(the Celery task id), Celery's and Flower's own lines, the desk's request lines."""
from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.fixtures.pipeline import ROOT, wait_until
from tests.fixtures.ports import free_port

pytestmark = pytest.mark.integration

EXAMPLES = ROOT / "examples"
TASK_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _example(name: str, **changes) -> dict:
    return {**json.loads((EXAMPLES / name).read_text()), **changes}


def _read_until(process: subprocess.Popen, marker: str, timeout: float) -> str:
    """The process's stdout until ``marker`` shows (AssertionError when it exits or times out first)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and marker.encode() not in seen:
        if select.select([process.stdout], [], [], 0.5)[0]:
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break  # EOF: the demo exited
            seen += chunk
    text = seen.decode(errors="replace")
    assert marker in text, f"no {marker!r} from the demo:\n" + text[-3000:]
    return text


def _spawn(env: dict, log: Path, *argv: str) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "worker.cli", *argv], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _lines(path: Path) -> list[dict]:
    """Every line of ``path`` as JSON: fails naming the first line that is not one JSON object."""
    parsed = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        try:
            value = json.loads(line)
        except ValueError:
            raise AssertionError(f"{path.name} line {number} is not JSON: {line[:300]!r}") from None
        assert isinstance(value, dict), f"{path.name} line {number}: {line[:300]!r}"
        assert {"time", "level", "logger", "msg"} <= value.keys(), f"{path.name} line {number}: {value}"
        parsed.append(value)
    return parsed


@pytest.fixture
def json_run(tmp_path):
    """The demo (left running) with LOG_FORMAT=json, and its ports; stopped (SIGTERM) by the test."""
    from worker.store.embedded import stop

    unset = ("REDIS_URL", "TRADEMAX_SECRET", "TRADEMAX_API_KEY", "KACHING_BASE_URL", "STOCKTRIM_BASE_URL",
             "STOCK2SHOP_BASE_URL", "SENTRY_DSN", "INGEST_TOKENS_FILE", "INGEST_HMAC_SECRETS", "LOG_LEVEL")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(LOG_FORMAT="json", WMS_RELAY_VAR_DIR=str(tmp_path / "var"))
    ports = {name: free_port() for name in ("flower", "desk", "ingest")}
    demo = subprocess.Popen([sys.executable, "-m", "worker.cli", "demo",
                             "--flower-port", str(ports["flower"]),
                             "--desk-port", str(ports["desk"]), "--ingest-port", str(ports["ingest"])],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        yield {"demo": demo, "env": env, "ports": ports, "var": tmp_path / "var", "tmp": tmp_path}
    finally:
        _stop(demo)
        demo.stdout.close()
        stop(tmp_path / "var")


def test_every_line_of_every_process_is_json_with_the_fields(json_run):
    demo, env, ports, tmp = json_run["demo"], json_run["env"], json_run["ports"], json_run["tmp"]
    _read_until(demo, "Everything is running", timeout=240)
    ingest = f"http://127.0.0.1:{ports['ingest']}/v1/events/"
    desk = f"http://127.0.0.1:{ports['desk']}"

    # The demo's door (open on loopback): a caller's request id is echoed, an insane one replaced.
    event = _example("receipt.create.json", transaction_id="JSON-LOGS-1")
    mine = requests.post(ingest + "receipt.create", json=event, headers={"X-Request-ID": "wms-abc.123"},
                         timeout=30)
    assert (mine.status_code, mine.headers["X-Request-ID"]) == (202, "wms-abc.123")
    other = requests.post(ingest + "receipt.create", json=event, headers={"X-Request-ID": "two words"},
                          timeout=30)
    made = other.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    form = requests.post(ingest + "receipt.create", data={"a": "b"}, timeout=30)
    assert form.status_code == 415
    dry = requests.post(ingest + "receipt.create?dry_run=true", json=_example("invalid-receipt.json"),
                        timeout=30)
    assert (dry.status_code, dry.json()["dry_run"]) == (422, True)
    page = requests.get(desk + "/sign-in", headers={"X-Request-ID": "desk-req-1"}, timeout=30)
    assert (page.status_code, page.headers["X-Request-ID"]) == (200, "desk-req-1")

    # A guarded door and the metrics endpoint on the same (embedded) store.
    guarded_env = {**env, "INGEST_TOKENS_FILE": str(tmp / "tokens")}
    subprocess.run([sys.executable, "-m", "worker.cli", "ingest", "add-token", "nw-wms"], cwd=ROOT,
                   env=guarded_env, capture_output=True, timeout=60, check=True)
    guarded_port, metrics_port = free_port(), free_port()
    guarded = _spawn(guarded_env, tmp / "ingest-guarded.log", "ingest", "--port", str(guarded_port))
    metrics = _spawn(env, tmp / "metrics.log", "metrics", "--port", str(metrics_port))
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{guarded_port}/healthz"), 60, "the guarded door")
        refused = requests.post(f"http://127.0.0.1:{guarded_port}/v1/events/receipt.create", json=event,
                                headers={"Authorization": "Bearer wmsr_" + "x" * 43}, timeout=30)
        assert refused.status_code == 401
        wait_until(lambda: _answers(f"http://127.0.0.1:{metrics_port}/metrics"), 60, "the metrics endpoint")
    finally:
        _stop(guarded)
        _stop(metrics)
    ledger = _ledger(env)
    wait_until(lambda: getattr(ledger.get("receipt.create", "JSON-LOGS-1"), "state", None) == "delivered", 60,
               "the receipt to be delivered")
    _stop(demo)  # SIGTERM: the demo stops every process it started, each writing its last words

    logs = [*sorted((json_run["var"] / "demo").glob("*.log")), tmp / "ingest-guarded.log",
            tmp / "metrics.log"]
    names = {path.name for path in logs}
    assert {"worker.log", "scheduler.log", "flower.log", "desk.log", "ingest.log", "sandbox.log",
            "demo.log"} <= names
    lines = {path.name: _lines(path) for path in logs}  # every line of every log, or a failure naming it

    requests_seen = [line for line in lines["ingest.log"] if line["msg"] == "request"]
    [line] = [r for r in requests_seen if r["request_id"] == "wms-abc.123"]
    named = ("method", "path", "status", "client", "count", "first_key", "operation")
    assert {k: line[k] for k in named} == {
        "method": "POST", "path": "/v1/events/receipt.create", "status": 202, "client": "anonymous",
        "count": 1, "first_key": "JSON-LOGS-1", "operation": "receipt.create"}
    assert line["remote"] == "127.0.0.1" and isinstance(line["latency_ms"], float)
    assert [r["status"] for r in requests_seen if r["request_id"] == made] == [202]
    [unsupported] = [r for r in requests_seen if r["status"] == 415]
    assert unsupported["method"] == "POST" and unsupported["level"] == "INFO"
    [dry_line] = [r for r in requests_seen if r.get("dry_run") is True]
    assert (dry_line["status"], dry_line["n_invalid"]) == (422, 1)
    [refusal] = [r for r in lines["ingest-guarded.log"] if r["msg"] == "request" and r["status"] == 401]
    assert (refusal["reason"], refusal["level"], refusal["client"]) == ("unknown_token", "WARNING", "-")
    assert any(line["msg"].startswith("wms-relay ingest: listening on http://")
               for line in lines["ingest.log"])

    attempts = [line for line in lines["worker.log"] if line["msg"] == "attempt"]
    in_tasks = [a for a in attempts if not str(a["key"]).startswith("batch:")]  # batches: the flow keeper's
    assert len(in_tasks) >= 9
    assert all(TASK_ID.match(a["task_id"]) and a["task"] == f"{a['destination']}.{a['operation']}"
               for a in in_tasks), in_tasks
    [receipt] = [a for a in in_tasks if a["key"] == "JSON-LOGS-1"]
    assert receipt["outcome"] == "delivered" and receipt["status"] == 200
    celery = [line for line in lines["worker.log"] if line["logger"].startswith("celery.")]
    assert any(line["msg"].endswith(" ready.") for line in celery)
    assert any("Warm shutdown" in line["msg"] for line in celery)  # written past logging by Celery

    assert any(line["logger"].startswith("flower.") and "Visit me at" in line["msg"]
               for line in lines["flower.log"])
    [sign_in] = [line for line in lines["desk.log"] if line["msg"] == "request"
                 and line["request_id"] == "desk-req-1"]
    assert (sign_in["method"], sign_in["path"], sign_in["status"], sign_in["user"]) == (
        "GET", "/sign-in", 200, None)
    assert any(line["msg"].startswith("Metrics on http://") for line in lines["metrics.log"])
    assert any(line["msg"].startswith("sandbox listening on http://") for line in lines["sandbox.log"])


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _ledger(env: dict):
    from worker.delivery.relay import build_relay
    from worker.settings import Settings

    return build_relay(Settings.from_env(env), sends=False).ledger
