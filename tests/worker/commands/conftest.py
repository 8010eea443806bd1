"""What the command tests start from: ``wms-relay`` run in this process (``cli``) with none of the
variables a developer's shell may have set (``cleared``), and — where a test asks for ``env`` (or
``store``, ``relay``) — an environment naming this test's own valkey-server as the store."""
from __future__ import annotations

import json

import pytest

from worker.cli import main
from worker.delivery.relay import build_relay
from worker.settings import Settings

# Each would change what a command does or prints (credentials, Sentry, Flower's password, log format, the
# retry limit, the ingest's tokens).
CLEARED = ("TRADEMAX_API_KEY", "TRADEMAX_SECRET", "SENTRY_DSN", "FLOWER_BASIC_AUTH", "LOG_FORMAT",
           "LOG_LEVEL", "RETRY_MAX_ATTEMPTS", "INGEST_TOKENS_FILE")


class Cli:
    """``cli("dead", "list")`` runs ``wms-relay dead list``: (exit code, stdout, stderr);
    ``cli.json("status")`` adds ``--json``, expects exit 0 and parses what it printed."""

    def __init__(self, capsys) -> None:
        self._capsys = capsys

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = self._capsys.readouterr()
        return code, out, err

    def json(self, *argv: str):
        code, out, err = self(*argv, "--json")
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def cleared(monkeypatch) -> None:
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cli(cleared, capsys) -> Cli:
    return Cli(capsys)


@pytest.fixture
def env(cleared, redis_server, monkeypatch, tmp_path):
    """The environment the commands read: REDIS_URL of this test's server, a var/ of its own."""
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("WMS_RELAY_VAR_DIR", str(tmp_path / "var"))
    return redis_server


@pytest.fixture
def store(env):
    """A client of this test's store (text replies)."""
    return env.client(decode_responses=True)


@pytest.fixture
def relay(env):
    """A relay on this test's store that sends nothing (as the support commands build theirs)."""
    return build_relay(Settings(redis_url=env.url), redis_client=env.client(), sends=False)
