"""Every command says which store it reads, and no support command starts one: run from the wrong
directory (no REDIS_URL, no embedded server for that directory) each exits 3 and says how to point it at
the store, and no server or data directory appears there.  ``wms-relay store status|stop`` show and stop
the embedded server."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import redis

from worker.store import embedded
from worker.destinations.table import delivery_ref
from worker.store.dead_letters import DeadLetters

NAMING_A_STORE = ("REDIS_URL", "WMS_RELAY_VAR_DIR")
SUPPORT_COMMANDS = [
    ["status"], ["event", "receipt.create", "R-1"], ["dead", "list"], ["dead", "show", "dl-1"],
    ["dead", "retry", "--all"], ["dead", "discard", "dl-1", "--reason", "x"], ["retries", "list"],
    ["retries", "run-now", "--all"], ["uncertain", "list"], ["store", "status"],
]


@pytest.fixture
def checkout(cleared, tmp_path, monkeypatch):
    """A checkout whose embedded server runs (under checkout/var) and holds one dead letter; the
    environment names no store.  Stopped (or killed) at the end."""
    for name in NAMING_A_STORE:
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "checkout"
    root.mkdir()
    url = embedded.ensure_running(root / "var")
    client = redis.Redis.from_url(url)
    DeadLetters(client, delivery_ref=delivery_ref).add("receipt.create", "R-1", {"transaction_id": "R-1"},
                                                       "permanent", ["refused"])
    client.close()
    yield root
    if not embedded.stop(root / "var"):
        pid = embedded.whereabouts(root / "var")["pid"]
        if pid:
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("argv", SUPPORT_COMMANDS, ids=lambda argv: " ".join(argv[:2]))
def test_a_support_command_in_the_wrong_directory_exits_3_and_starts_nothing(
        checkout, tmp_path, monkeypatch, cli, argv):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = cli(*argv)
    assert code == 3, (out, err)
    assert f"no embedded server is running under {elsewhere / 'var'}" in err
    assert "WMS_RELAY_VAR_DIR" in err and "REDIS_URL" in err
    assert "No dead letters" not in out and "Nothing needs a person" not in out
    assert list(elsewhere.iterdir()) == []  # no var/, no server


def test_enqueue_and_check_in_the_wrong_directory_start_nothing(checkout, tmp_path, monkeypatch, cli):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    example = Path(__file__).parents[3] / "examples" / "receipt.create.json"
    code, _, err = cli("enqueue", "receipt.create", str(example))
    assert code == 3 and "no embedded server is running under" in err
    code, out, _ = cli("check", "--skip-trademax")
    assert code == 1 and "FAIL  Redis: no store to read" in out
    assert list(elsewhere.iterdir()) == []


def test_the_right_directory_or_var_dir_finds_the_store_and_says_which(
        checkout, tmp_path, monkeypatch, cli):
    monkeypatch.chdir(checkout)
    code, out, _ = cli("dead", "list")
    assert code == 0
    assert out.splitlines()[0] == f"Store: embedded server under {checkout / 'var'}"
    assert "R-1" in out
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WMS_RELAY_VAR_DIR", str(checkout / "var"))
    code, out, _ = cli("status", "--json")
    assert code == 0 and json.loads(out)["store"] == f"embedded server under {checkout / 'var'}"
    assert json.loads(out)["dead_letters"]["count"] == 1
    code, out, _ = cli("dead", "show", "dl-1", "--json")
    assert code == 0 and json.loads(out)["store"] == f"embedded server under {checkout / 'var'}"


def test_redis_url_is_named_without_its_password(redis_server, tmp_path, monkeypatch, cli):
    for name in NAMING_A_STORE:
        monkeypatch.delenv(name, raising=False)
    password = redis_server.password  # every test server requires one
    assert password and f":{password}@" in redis_server.url
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("retries", "list")
    assert code == 0
    assert out.splitlines()[0] == f"Store: redis://:***@127.0.0.1:{redis_server.port}/0 (REDIS_URL)"
    code, out, _ = cli("store", "status", "--json")
    report = json.loads(out)
    assert code == 0 and report["answers"] and report["server"]["maxmemory_policy"] == "noeviction"
    assert password not in out
    code, _, err = cli("store", "stop")
    assert code == 2 and "stops only the embedded server" in err
    assert redis_server.client().ping()


def test_store_status_and_stop(checkout, monkeypatch, cli):
    monkeypatch.chdir(checkout)
    code, out, _ = cli("store", "status", "--json")
    report = json.loads(out)
    assert code == 0 and report["answers"] and report["embedded"]["running"]
    assert report["embedded"]["data_dir"] == str(checkout / "var" / "valkey")
    assert report["server"]["aof_enabled"] and report["server"]["maxmemory_policy"] == "noeviction"
    code, out, _ = cli("store", "stop")
    assert code == 0 and f"its data stays in {checkout / 'var' / 'valkey'}" in out
    code, out, _ = cli("store", "status")
    assert code == 3 and "Not running" in out and "support commands never do" in out
    code, out, _ = cli("store", "stop")
    assert code == 0 and "It was not running" in out
