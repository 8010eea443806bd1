"""The client against misbehaving sockets on 127.0.0.1: the real urllib3/requests exceptions for
"never sent" (transient) versus "sent, no answer" (outcome unknown), and no signature in what they say."""
from __future__ import annotations

import socket
import threading
import traceback

import pytest

from worker.errors import OutcomeUnknownError, TransientError
from worker.settings import Settings
from worker.destinations.trademax.client import TrademaxClient

SECRET = "transport-secret"


class RawServer:
    """Accepts connections on a free port and treats each with ``behaviour(conn, request_bytes)``."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                self.behaviour(self, conn, data)

    def close(self):
        self.release.set()
        self.listener.close()


@pytest.fixture
def raw_server():
    servers = []

    def start(behaviour):
        server = RawServer(behaviour)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def client_for(port: int, read_timeout: float = 5.0) -> TrademaxClient:
    settings = Settings(trademax_base_url=f"http://127.0.0.1:{port}/api/", trademax_api_key="key",
                        trademax_secret=SECRET, connect_timeout=2.0, read_timeout=read_timeout)
    return TrademaxClient(settings)


def assert_no_signature(error, sent: bytes):
    signature = sent.split(b"signature=")[1].split(b" ")[0].split(b"&")[0].decode()
    assert len(signature) == 64
    rendered = "".join(traceback.format_exception(error)) + repr(error)
    assert signature not in rendered and SECRET not in rendered


def test_connection_dropped_after_sending_is_outcome_unknown(raw_server):
    server = raw_server(lambda s, conn, data: None)  # read the request, close without a word
    with pytest.raises(OutcomeUnknownError) as caught:
        client_for(server.port).get_stock("123", "nw")
    assert caught.value.status is None and caught.value.operation == "get_stock"
    assert len(server.requests) == 1  # sent once: no transport-level resend
    assert_no_signature(caught.value, server.requests[0])


def test_truncated_body_is_outcome_unknown(raw_server):
    def truncate(s, conn, data):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"err")

    server = raw_server(truncate)
    with pytest.raises(OutcomeUnknownError):
        client_for(server.port).adjust_stock("123", {"warehouse_id": "nw", "quantity": 1, "type": "relative",
                                                     "reason": 2})
    assert len(server.requests) == 1


def test_read_timeout_is_outcome_unknown(raw_server):
    server = raw_server(lambda s, conn, data: s.release.wait(10))  # never answers
    with pytest.raises(OutcomeUnknownError) as caught:
        client_for(server.port, read_timeout=0.2).get_dispatch(1)
    assert "ReadTimeout" in caught.value.detail
    assert caught.value.latency_seconds >= 0.2
    assert_no_signature(caught.value, server.requests[0])


def test_refused_connection_is_transient():
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    with pytest.raises(TransientError) as caught:
        client_for(port).get_stock("123", "nw")
    assert caught.value.status is None and caught.value.retry_after is None
    rendered = "".join(traceback.format_exception(caught.value))
    assert "signature=[redacted]" in rendered  # the URL in urllib3's message, scrubbed
    assert SECRET not in rendered
    # ...and in every text attribute of the chained exceptions (urllib3's MaxRetryError keeps `_message`).
    chain, pending = [], [caught.value]
    while pending:
        exc = pending.pop()
        if exc is None or any(exc is seen for seen in chain):
            continue
        chain.append(exc)
        pending += [exc.__cause__, exc.__context__, getattr(exc, "reason", None)]
    texts = [v for exc in chain for v in vars(exc).values() if isinstance(v, str)]
    assert texts and not [t for t in texts if "signature=" in t and "signature=[redacted]" not in t]
