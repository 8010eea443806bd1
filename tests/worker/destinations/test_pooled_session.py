"""The clients' session (worker.destinations.transport.PooledSession) goes a shorter way than
``requests.Session.request`` (issue 21: half of a call's Python) — and must send exactly what requests
sends: the same prepared request (method, URL with its query, headers in their order, body) for every
shape of call our clients make, the same bytes on a real socket, the same exceptions."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from worker.destinations.transport import PooledSession, build_session

CALLS = [  # (method, url, params, data, headers): what the four clients send
    ("POST", "http://wms.example/api/v1/dispatch", None, b'{"a":1,"signature":"x"}',
     {"User-Agent": "wms-relay/1", "Accept": "application/json", "Content-Type": "application/json"}),
    ("GET", "http://wms.example/api/v1/inventory/A%201/stock",
     [("warehouse_id", "nw"), ("a[0]", "x y"), ("a[1]", "å&=")],
     None, {"User-Agent": "wms-relay/1", "Accept": "application/json"}),
    ("get", "https://kaching.example/v1/stock", {"account": "acme", "empty": "", "dropped": None}, None,
     {"User-Agent": "wms-relay/1", "Accept": "application/json", "Authorization": None}),
    ("DELETE", "http://wms.example/api/v1/dispatch/7?x=1", [("api_key", "k")], None,
     {"User-Agent": "wms-relay/1"}),
    ("PATCH", "http://user:pw@wms.example/api/", None, "ä text", {"X-Token": "t", "Accept": "*/*"}),
    ("PUT", "http://wms.example/api/", None, None, None),
]


def through_requests(session: requests.Session, method, url, params, data,
                     headers) -> requests.PreparedRequest:
    """What ``Session.request`` prepares for these arguments."""
    return session.prepare_request(requests.Request(method=method.upper(), url=url, headers=headers,
                                                    data=data or {}, params=params or {}))


@pytest.mark.parametrize("method, url, params, data, headers", CALLS)
def test_the_short_way_prepares_what_requests_prepares(method, url, params, data, headers):
    session = build_session()
    assert isinstance(session, PooledSession)
    ours = session.prepare_plain(method, url, params=params, data=data, headers=headers)
    theirs = through_requests(session, method, url, params, data, headers)
    assert (ours.method, ours.url, ours.body) == (theirs.method, theirs.url, theirs.body)
    assert list(ours.headers.items()) == list(theirs.headers.items())  # the order too


class Recording(BaseHTTPRequestHandler):
    """Keeps each request as it came off the socket: request line, headers in order, body."""

    protocol_version = "HTTP/1.1"
    seen: list = []
    peers: list = []

    def _any(self):
        self.peers.append(self.client_address)
        length = int(self.headers.get("Content-Length") or 0)
        self.seen.append((self.requestline, list(self.headers.items()), self.rfile.read(length)))
        body = b'{"ok":true}'
        self.send_response(302 if self.path.endswith("/moved") else 200)
        self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _any

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recording)
    Recording.seen, Recording.peers = [], []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", Recording.seen
    httpd.shutdown()
    httpd.server_close()


def plain_requests_session() -> requests.Session:
    """``build_session``'s settings on a plain ``requests.Session`` (its ``request`` the long way)."""
    built = build_session()
    session = requests.Session()
    session.trust_env, session.cookies = False, built.cookies
    session.mount("http://", built.get_adapter("http://x"))
    return session


@pytest.mark.parametrize("method, url, params, data, headers", [c for c in CALLS if "@" not in c[1]])
def test_the_same_bytes_go_on_the_wire(server, method, url, params, data, headers):
    base, seen = server
    path = url.split("/", 3)[3]
    answers = []
    for session in (build_session(), plain_requests_session()):
        answers.append(session.request(method, f"{base}/{path}", params=params, data=data, headers=headers,
                                       timeout=(2, 2), allow_redirects=False))
    assert len(seen) == 2 and seen[0] == seen[1]
    ours, theirs = answers
    assert (ours.status_code, ours.content, dict(ours.headers)["Content-Length"]) == \
        (theirs.status_code, theirs.content, "11")


def test_a_redirect_is_answered_not_followed_and_the_connection_is_reused(server):
    base, seen = server
    session = build_session()
    moved = session.request("POST", f"{base}/api/moved", data=b"{}", timeout=(2, 2), allow_redirects=False)
    assert moved.status_code == 302 and len(seen) == 1  # not followed
    session.request("GET", f"{base}/api/x", timeout=(2, 2), allow_redirects=False)
    assert len(seen) == 2 and Recording.peers[0] == Recording.peers[1]  # one connection: back in the pool


def test_requests_exceptions_come_out_as_before():
    session = build_session()
    with pytest.raises(requests.ConnectionError):
        session.request("GET", "http://127.0.0.1:9/api", timeout=(1, 1), allow_redirects=False)
    with pytest.raises(requests.exceptions.InvalidURL):
        session.request("GET", "http://[::1/api", timeout=(1, 1), allow_redirects=False)


def test_anything_else_takes_the_long_way(server):
    """Redirects followed, or a session someone gave cookies or auth: Session.request decides."""
    base, seen = server
    session = build_session()
    followed = session.request("POST", f"{base}/api/moved", data=b"{}", timeout=(2, 2))
    assert followed.status_code == 200 and len(seen) == 2 and followed.history
    session.auth = ("user", "pw")
    session.request("GET", f"{base}/api/x", timeout=(2, 2), allow_redirects=False)
    assert ("Authorization", "Basic dXNlcjpwdw==") in seen[-1][1]
