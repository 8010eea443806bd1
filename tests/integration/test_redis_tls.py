"""A store reached over TLS — managed Redis speaks TLS — works like a plain one, screen included:
``REDIS_URL=rediss://...`` with a private CA (REDIS_SSL_CA_CERTS) and a client certificate
(REDIS_SSL_CERTFILE, REDIS_SSL_KEYFILE), and a Sentinel over TLS (``sentinel://...&ssl=true``).  In
each, a real worker and scheduler over TLS deliver an event enqueued over TLS, and a malformed raw
message pushed onto a queue becomes a ``malformed_message`` dead letter while the same worker carries on
(before, a rediss:// broker skipped the screen).  Without the CA the client refuses the server's
certificate; without a client certificate the server refuses the client.

The embedded valkey-server is built without TLS (tests/fixtures/tls_proxy.py), so TLS is terminated by a
small proxy in front of it, with certificates made by openssl for the test."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.fixtures.pipeline import ROOT, make_pipeline, wait_until
from tests.fixtures.tls_proxy import TlsProxy, make_certificates
from worker.destinations.table import delivery_ref
from worker.store.dead_letters import DeadLetters
from tests.fixtures.ports import free_port
from worker.store.embedded import HOST, server_binary

pytestmark = pytest.mark.integration

EXAMPLE = json.loads((ROOT / "examples" / "receipt.create.json").read_text())


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    try:
        return make_certificates(tmp_path_factory.mktemp("tls"))
    except FileNotFoundError as exc:
        pytest.skip(f"{exc} (.ci/run installs it)")


def cli(env: dict, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "worker.cli", *argv], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def deliver_and_screen(pipeline, key: str) -> None:
    """An event enqueued and delivered over TLS; a malformed message screened into a dead letter."""
    worker = pipeline.start_worker()
    done = cli(pipeline.env, "enqueue", "receipt.create", "-", stdin=json.dumps({**EXAMPLE,
                                                                                "transaction_id": key}))
    assert done.returncode == 0, done.stdout + done.stderr
    pipeline.wait_for_state("receipt.create", key, "delivered", timeout=90)
    pipeline.redis().lpush("trademax.receipt", b"not a celery message over tls")
    letters = DeadLetters(pipeline.redis(), delivery_ref=delivery_ref)
    letter = wait_until(lambda: next((x for x in letters.list() if x.reason == "malformed_message"), None),
                        60, "the malformed letter")
    assert letter.event["queue"] == "trademax.receipt"
    assert worker.poll() is None, pipeline.logs()
    status = cli(pipeline.env, "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["dead_letters"]["count"] >= 1, status.stderr


def test_rediss_with_a_private_ca_and_a_client_certificate(redis_server, sandbox, certificates, tmp_path):
    proxy = TlsProxy(certificates, redis_server.port, require_client_cert=True)
    try:
        pipeline = make_pipeline(redis_server, sandbox(), tmp_path)
        pipeline.env.update(REDIS_URL=f"rediss://:{redis_server.password}@{HOST}:{proxy.port}/0",
                            REDIS_SSL_CA_CERTS=str(certificates.ca),
                            REDIS_SSL_CERTFILE=str(certificates.client_cert),
                            REDIS_SSL_KEYFILE=str(certificates.client_key))
        pipeline.start_scheduler()
        try:
            deliver_and_screen(pipeline, "R-TLS-1")
        finally:
            pipeline.stop()
        assert proxy.handshakes >= 3  # enqueue, status, the worker's and scheduler's connections

        without_ca = {k: v for k, v in pipeline.env.items() if k != "REDIS_SSL_CA_CERTS"}
        refused = cli(without_ca, "status")
        assert refused.returncode == 3 and "certificate verify failed" in refused.stderr, refused.stderr
        client_files = ("REDIS_SSL_CERTFILE", "REDIS_SSL_KEYFILE")
        without_cert = {k: v for k, v in pipeline.env.items() if k not in client_files}
        before = proxy.refused
        assert cli(without_cert, "status").returncode == 3
        assert proxy.refused > before  # the server side refused a client without a certificate
    finally:
        proxy.stop()


def test_sentinel_over_tls(redis_server, sandbox, certificates, tmp_path):
    """One Sentinel, behind TLS, monitoring the primary at the address the clients reach over TLS."""
    primary = TlsProxy(certificates, redis_server.port, plain_too=True)  # Sentinel monitors it in plain
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text("\n".join([
        f"port {port}", f"bind {HOST}", f'dir "{tmp_path}"', f'logfile "{tmp_path / "sentinel.log"}"',
        f"sentinel monitor relay {HOST} {primary.port} 1",
        f'sentinel auth-pass relay "{redis_server.password}"',
    ]) + "\n")
    sentinel = subprocess.Popen([str(server_binary()), str(conf), "--sentinel"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    front = TlsProxy(certificates, port)  # the clients speak TLS only, to the Sentinel too
    try:
        pipeline = make_pipeline(redis_server, sandbox(), tmp_path)
        pipeline.env.update(
            REDIS_URL=f"sentinel://:{redis_server.password}@{HOST}:{front.port}/0?master_name=relay&ssl=true",
            REDIS_SSL_CA_CERTS=str(certificates.ca))
        wait_until(lambda: cli(pipeline.env, "store", "status").returncode == 0, 60, "the Sentinel to answer")
        pipeline.start_scheduler()
        try:
            deliver_and_screen(pipeline, "R-TLS-SENTINEL-1")
        finally:
            pipeline.stop()
        assert front.handshakes >= 3 and primary.handshakes >= 3  # both hops were TLS
    finally:
        front.stop()
        primary.stop()
        sentinel.kill()
        sentinel.wait()
