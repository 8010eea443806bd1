"""Single sign-on at the real desk process (waitress), behind a reverse proxy written here: the proxy connects
from 127.0.0.2 (DESK_TRUSTED_PROXIES) and sets X-Forwarded-Email / X-Forwarded-Groups on every request it
passes on, as oauth2-proxy does; a client reaching the desk directly (from 127.0.0.1) with a forged header is
not signed in; an action through the proxy needs the CSRF token and is audited under the proxy's person.
The desk's JSON request lines name the person and how they were signed in."""
from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import requests

from benchmarks._harness import Desk
from tests.fixtures.pipeline import ROOT

pytestmark = pytest.mark.integration

PERSON, GROUPS = "pat@example.com", "staff,wms-operators"


class SignOnProxy(ThreadingHTTPServer):
    """Forwards every request to the desk from 127.0.0.2, with the signed-in person's headers set (any the
    client sent are replaced)."""

    def __init__(self, desk_url: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        parts = urlsplit(desk_url)
        self.desk = (parts.hostname, parts.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(BaseHTTPRequestHandler):
    server: SignOnProxy

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("x-forwarded-email", "x-forwarded-groups", "connection")}
        headers.update({"X-Forwarded-Email": PERSON, "X-Forwarded-Groups": GROUPS})
        upstream = http.client.HTTPConnection(*self.server.desk, timeout=30, source_address=("127.0.0.2", 0))
        upstream.request(self.command, self.path, body=body or None, headers=headers)
        answer = upstream.getresponse()
        payload = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        upstream.close()

    do_GET = do_POST = _forward

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def desk_behind_proxy(redis_server, tmp_path):
    env = {**os.environ, "REDIS_URL": redis_server.url, "WMS_RELAY_VAR_DIR": str(tmp_path / "var"),
           "LOG_FORMAT": "json", "DESK_USERS_FILE": str(tmp_path / "desk-users"),
           "DESK_TRUSTED_PROXY_HEADER": "X-Forwarded-Email", "DESK_TRUSTED_PROXIES": "127.0.0.2",
           "DESK_TRUSTED_GROUPS_HEADER": "X-Forwarded-Groups",
           "DESK_GROUP_ROLES": "wms-support=viewer,wms-operators=operator"}
    env.pop("SENTRY_DSN", None)
    desk = Desk(env, tmp_path / "desk.log")  # no users file at all: the proxy's groups give the role
    proxy = SignOnProxy(desk.url)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        yield desk, proxy, tmp_path / "desk.log", env
    finally:
        proxy.shutdown()
        proxy.server_close()
        desk.stop()


def test_the_proxys_person_is_signed_in_and_a_forged_header_is_not(desk_behind_proxy):
    desk, proxy, log, env = desk_behind_proxy
    through = requests.Session()
    page = through.get(proxy.url + "/", timeout=30)
    assert page.status_code == 200 and PERSON in page.text and "operator" in page.text
    audit = through.get(proxy.url + "/audit", timeout=30).text
    assert "sign-in" in audit and "by the trusted proxy" in audit

    direct = requests.get(desk.url, headers={"X-Forwarded-Email": PERSON, "X-Forwarded-Groups": GROUPS},
                          allow_redirects=False, timeout=30)
    assert direct.status_code == 302 and "/sign-in" in direct.headers["Location"]

    # An action through the proxy still needs the page's CSRF token, and is done as the proxy's person.
    enqueued = subprocess.run([sys.executable, "-m", "worker.cli", "enqueue", "receipt.create",
                               str(ROOT / "examples" / "invalid-receipt.json")], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
    assert enqueued.returncode == 1, enqueued.stdout + enqueued.stderr  # 1: the event is a dead letter
    listing = through.get(proxy.url + "/dead-letters", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', listing).group(1)
    letter = re.search(r'name="ids" value="([^"]+)"', listing).group(1)
    form = {"action": "discard", "ids": letter, "why": "a test event"}
    assert through.post(proxy.url + "/dead-letters/act", data=form, timeout=30).status_code == 400
    done = through.post(proxy.url + "/dead-letters/act", data={**form, "csrf_token": token}, timeout=30)
    assert done.status_code == 200 and "1 done" in done.text, done.text[:500]
    entries = through.get(proxy.url + "/audit", timeout=30).text
    assert re.search(r"pat@example\.com.{0,400}discard", entries, flags=re.S), entries[-3000:]

    desk.stop()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    requests_seen = [line for line in lines if line["msg"] == "request"]
    signed_on = [line for line in requests_seen if line.get("sign_on") == "proxy"]
    assert len(signed_on) >= 5 and all(line["user"] == PERSON for line in signed_on)
    [ignored] = [line for line in requests_seen if line.get("sign_on") == "ignored"]
    assert (ignored["status"], ignored["user"], ignored["remote"]) == (302, None, "127.0.0.1")
