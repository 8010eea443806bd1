"""The web doors hold against idle and slow clients (issue 23.3): with waitress's defaults (100
connections, idle ones closed after 120 s) ~100 sockets that sent a request line and nothing more stopped
both doors — `/healthz` and real POSTs timed out.  Here 500 idle sockets (half of them a request line and
no more) are held open against the real ingest process and the real desk while real POSTs and
`/healthz` still answer; and an idle socket is closed by the door after WEB_CHANNEL_TIMEOUT_SECONDS."""
from __future__ import annotations

import json
import os
import re
import socket
import time

import pytest
import requests

from benchmarks._harness import Desk
from tests.fixtures.pipeline import ROOT, wait_until
from tests.integration.test_ingest_http import ingest  # noqa: F401  (the real ingest process, a fixture)

pytestmark = pytest.mark.integration

IDLE = 500
PASSWORD = "under-load-" + "p" * 16


def hold_idle(url: str, count: int, path: str) -> list[socket.socket]:
    """``count`` connections to the door at ``url``: every other one sends a request line and the start of
    its headers, and then nothing; the rest send nothing at all."""
    host, port = url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
    held = []
    for n in range(count):
        held.append(socket.create_connection((host, int(port)), timeout=10))
        if n % 2 == 0:
            held[-1].sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\n".encode())
    return held


def open_ones(held: list[socket.socket]) -> int:
    """How many of ``held`` the door has not closed (nothing to read yet, no end of stream)."""
    count = 0
    for sock in held:
        sock.setblocking(False)
        try:
            count += sock.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            count += 1
        except OSError:
            pass
    return count


def close_all(held: list[socket.socket]) -> None:
    for sock in held:
        sock.close()


def test_500_idle_sockets_leave_the_ingest_door_answering(ingest):  # noqa: F811  (the fixture above)
    url, token = ingest["url"], ingest["token"]
    event = json.loads((ROOT / "examples" / "stock.adjust.json").read_text())
    held = hold_idle(url, IDLE, "/v1/events/stock.adjust")
    try:
        for n in range(3):
            health = requests.get(f"{url}/healthz", timeout=10)
            assert health.status_code == 200
            posted = requests.post(f"{url}/v1/events/stock.adjust", json={**event, "event_id": f"load-{n}"},
                                   headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert posted.status_code == 202, posted.text[:300]
        assert open_ones(held) == IDLE  # all held open meanwhile: the door answered beside them
    finally:
        close_all(held)


def test_500_idle_sockets_leave_the_desk_answering(redis_server, tmp_path):
    from worker.web.desk.users import UsersFile

    UsersFile(tmp_path / "desk-users").add("dora", "viewer", PASSWORD)
    env = {**os.environ, "REDIS_URL": redis_server.url, "WMS_RELAY_VAR_DIR": str(tmp_path / "var"),
           "DESK_USERS_FILE": str(tmp_path / "desk-users")}
    env.pop("SENTRY_DSN", None)
    desk = Desk(env, tmp_path / "desk.log")
    try:
        held = hold_idle(desk.url, IDLE, "/sign-in")
        try:
            for _ in range(3):
                assert requests.get(desk.url + "healthz", timeout=10).status_code == 200
                session = requests.Session()
                form = session.get(desk.url + "sign-in", timeout=10).text
                token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
                signed_in = session.post(desk.url + "sign-in", timeout=10,
                                         data={"name": "dora", "password": PASSWORD, "csrf_token": token})
                assert signed_in.status_code == 200 and signed_in.url.rstrip("/") == desk.url.rstrip("/")
            assert open_ones(held) == IDLE
        finally:
            close_all(held)
    finally:
        desk.stop()


def test_an_idle_socket_is_closed_after_the_channel_timeout(redis_server, tmp_path):
    env = {**os.environ, "REDIS_URL": redis_server.url, "WMS_RELAY_VAR_DIR": str(tmp_path / "var"),
           "WEB_CHANNEL_TIMEOUT_SECONDS": "2"}
    env.pop("SENTRY_DSN", None)
    desk = Desk(env, tmp_path / "desk.log")
    try:
        held = hold_idle(desk.url, 40, "/sign-in")
        try:
            started = time.monotonic()
            wait_until(lambda: open_ones(held) == 0, 30, "the desk to close the idle sockets")
            assert time.monotonic() - started >= 1.5  # closed for idling, not refused
            assert requests.get(desk.url + "healthz", timeout=10).status_code == 200
        finally:
            close_all(held)
    finally:
        desk.stop()
