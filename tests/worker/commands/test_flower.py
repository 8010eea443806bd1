"""``wms-relay flower``: never reachable from other machines without a password; with FLOWER_BASIC_AUTH set,
Flower itself demands it."""
from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.pipeline import wait_until
from worker.cli import main
from worker.commands.flower import check_exposure, valid_basic_auth
from tests.fixtures.ports import free_port
from worker.web.serving import is_loopback
from worker.settings import SettingsError

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("address, loopback", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                               ("127.0.0.2", True), ("0.0.0.0", False), ("", False),
                                               ("10.1.2.3", False), ("flower.example.com", False)])
def test_only_loopback_addresses_count_as_private(address, loopback):
    assert is_loopback(address) is loopback


def test_a_public_address_needs_a_well_formed_password():
    check_exposure("127.0.0.1", "")                       # local only: no password needed
    check_exposure("0.0.0.0", "ops:s3cret,viewer:other")  # public, with passwords
    for auth in ("", "ops", "ops:", ":s3cret", "ops:s3cret,viewer"):
        with pytest.raises(SettingsError, match="FLOWER_BASIC_AUTH"):
            check_exposure("0.0.0.0", auth)
    assert valid_basic_auth("a:b,c:d") and not valid_basic_auth("a:b,")


def test_the_command_refuses_to_start_on_a_public_address_without_a_password(monkeypatch, capsys):
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # never reached: it stops before
    assert main(["flower", "--address", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "give it FLOWER_BASIC_AUTH" in err and "0.0.0.0" in err and "--address 127.0.0.1" in err


def test_flower_demands_the_password_from_flower_basic_auth(shared_redis_server, tmp_path):
    port = free_port()
    env = {**os.environ, "REDIS_URL": shared_redis_server.url, "FLOWER_BASIC_AUTH": "ops:flower-pw-1",
           "WMS_RELAY_VAR_DIR": str(tmp_path / "var")}
    log = open(tmp_path / "flower.log", "wb")
    flower = subprocess.Popen([sys.executable, "-m", "worker.cli", "flower", "--port", str(port)], cwd=ROOT,
                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api/workers"

    def status(auth: str | None) -> int | None:
        request = urllib.request.Request(url)
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None

    try:
        wait_until(lambda: status(None) is not None or flower.poll() is not None, 60, "Flower to listen")
        assert flower.poll() is None, (tmp_path / "flower.log").read_text()
        assert status(None) == 401
        assert status("ops:wrong") == 401
        assert status("ops:flower-pw-1") == 200
    finally:
        os.killpg(flower.pid, signal.SIGTERM)
        flower.wait(timeout=30)
        log.close()
    assert b"flower-pw-1" not in (tmp_path / "flower.log").read_bytes()


def test_the_task_list_shows_the_argument_summary_and_the_events_state():
    from flower.views.tasks import TASK_COLUMNS

    from worker.commands.flower import TASKS_COLUMNS

    slugs = TASKS_COLUMNS.split(",")
    assert set(slugs) <= set(TASK_COLUMNS) and slugs[:3] == ["name", "args", "result"]
