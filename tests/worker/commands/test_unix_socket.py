"""REDIS_URL=unix:///path/to.sock works for the broker and the stores: ``wms-relay enqueue`` records the
event in the ledger and puts its task message on the queue through the socket, and ``status`` reads both
back; a malformed raw message taken off a queue through the socket is screened into a dead letter, as on
redis:// (kombu's own socket transport skipped the screen) — a real valkey-server listening on a socket
only."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis
from kombu import Connection
from kombu.transport.virtual import Empty

from worker.broker.celery_config import SocketTransport, celery_config
from worker.cli import main
from worker.settings import Settings
from worker.destinations.table import delivery_ref
from worker.store.dead_letters import DeadLetters
from worker.store.embedded import server_config, start_server_process

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def socket_server(tmp_path):
    sock = tmp_path / "valkey.sock"
    conf = tmp_path / "valkey.conf"
    conf.write_text(server_config(port=0, data_dir=tmp_path, pidfile=None, logfile=tmp_path / "valkey.log")
                    + f'unixsocket "{sock}"\nunixsocketperm 700\n')
    process = start_server_process(conf, detach=False)
    client = redis.Redis(unix_socket_path=str(sock))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except (redis.ConnectionError, FileNotFoundError):
                assert time.monotonic() < deadline and process.poll() is None, "valkey did not start"
                time.sleep(0.05)
        yield sock, client
    finally:
        process.kill()
        process.wait()


def test_enqueue_and_status_through_a_unix_socket(socket_server, cleared, monkeypatch, tmp_path, capsys):
    sock, client = socket_server
    monkeypatch.setenv("REDIS_URL", f"unix://{sock}?db=0")
    monkeypatch.setenv("WMS_RELAY_VAR_DIR", str(tmp_path / "var"))
    assert main(["enqueue", "receipt.create", str(ROOT / "examples" / "receipt.create.json")]) == 0
    capsys.readouterr()
    assert client.llen("trademax.receipt") == 1  # the task message, published by kombu over the socket
    assert main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["queues"]["trademax.receipt"] == 1 and report["ledger"]["accepted"] == 1
    assert report["store"] == f"unix://{sock}?db=0 (REDIS_URL)"


def test_a_malformed_message_taken_through_the_socket_is_screened(socket_server):
    sock, client = socket_server
    config = celery_config(Settings(), f"unix://{sock}?db=0")
    assert config["broker_transport"] == "worker.broker.celery_config:SocketTransport"
    client.lpush("trademax.receipt", b"not a celery message")
    with Connection(config["broker_url"], transport=SocketTransport) as connection:
        with pytest.raises(Empty):  # screened: nothing for the worker, and the worker does not fail
            connection.default_channel._get("trademax.receipt")
    letters = DeadLetters(client, delivery_ref=delivery_ref).list()
    assert [(x.reason, x.event["queue"]) for x in letters] == [("malformed_message", "trademax.receipt")]
    assert client.llen("trademax.receipt") == 0
