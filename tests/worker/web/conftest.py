"""The ingest app on fakeredis (the queues are its lists): what the routes do, without processes."""
from __future__ import annotations

import json
from pathlib import Path

import fakeredis
import pytest

from tests.fixtures.queues import queued_messages
from worker.delivery.relay import build_relay
from worker.settings import Settings
from worker.web.ingest import create_app

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
NOW = 1_700_000_000.0
HMAC_SECRET = "hmac-secret-" + "x" * 24


def example(operation: str, **changes) -> dict:
    return {**json.loads((EXAMPLES / f"{operation}.json").read_text()), **changes}


class Store(fakeredis.FakeRedis):
    """fakeredis, and the seam to make it go away mid-request: with ``fail_after_pipelines`` set, the
    server disconnects once that many pipelines have run (the door admits a request's events a chunk per
    pipeline)."""

    fail_after_pipelines: int | None = None

    def __init__(self, *, server: fakeredis.FakeServer, **kwargs) -> None:
        super().__init__(server=server, **kwargs)
        self.fake_server = server

    def pipeline(self, *args, **kwargs):
        pipe = super().pipeline(*args, **kwargs)
        run, store = pipe.execute, self

        def execute(*a, **kw):
            result = run(*a, **kw)
            if store.fail_after_pipelines is not None:
                store.fail_after_pipelines -= 1
                if store.fail_after_pipelines <= 0:
                    store.fake_server.connected = False
            return result

        pipe.execute = execute
        return pipe


class Door:
    """One ingest app: its Flask test client, the store behind it and what it queued."""

    def __init__(self, tmp_path: Path, **settings) -> None:
        self.server = fakeredis.FakeServer()
        self.store = Store(server=self.server, decode_responses=True)
        self.settings = Settings(**settings)
        self.now = NOW
        self.relay = build_relay(self.settings, redis_client=self.store, sends=False, clock=lambda: self.now)
        self.app = create_app(self.settings, relay=self.relay, clock=lambda: self.now)
        self.client = self.app.test_client()

    @property
    def queued(self) -> list[dict]:
        return queued_messages(self.store)

    def post(self, operation: str, body, *, headers=None, content_type="application/json"):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return self.client.post(f"/v1/events/{operation}", data=data, content_type=content_type,
                                headers=headers or {})


@pytest.fixture
def door(tmp_path) -> Door:
    """Open (no credentials configured), as on loopback."""
    return Door(tmp_path)


@pytest.fixture
def tokens_file(tmp_path) -> Path:
    return tmp_path / "ingest-tokens"


@pytest.fixture
def guarded(tmp_path, tokens_file):
    """Tokens and an HMAC secret configured; returns (door, {client: token})."""
    from worker.web.ingest.tokens import add_token

    tokens = {"nw-wms": add_token(tokens_file, "nw-wms"),
              "stock-only": add_token(tokens_file, "stock-only", ["stock.adjust"])}
    return Door(tmp_path, ingest_tokens_file=tokens_file, ingest_hmac_secrets=f"signer:{HMAC_SECRET}"), tokens
