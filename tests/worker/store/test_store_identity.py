"""The embedded store's password goes to no one but the store (issue 23, item 2).

On main every process reconnected to the remembered 127.0.0.1 port and sent ``AUTH`` with the password
before knowing who listened there: a local account that took the port while the store was down (a crash, or
``wms-relay store stop``) collected it.  Now the store listens on a unix socket in its 0700 data directory
and on no port.  Here an impostor takes the old port — and tries the socket's path — while the store is
down, as another account (``nobody``) when the tests run as root, else as this account on the port only;
then a client of the store reconnects, the support commands look for the store, ``store stop`` runs, and
the service starts it again.  The impostor receives nothing, and cannot put a socket where ours was."""
from __future__ import annotations

import os
import select
import signal
import socket
import stat
import tempfile
import time
from pathlib import Path

import pytest
import redis

from tests.fixtures.ports import free_port
from worker.cli import main
from worker.store import embedded

NOBODY = 65534
AS_ROOT = os.geteuid() == 0


class Impostor:
    """A forked child listening on ``port`` (and, as another account, trying to bind ``path``): it keeps
    every byte any client sends it, and answers nothing."""

    def __init__(self, port: int, path: Path, *, as_uid: int | None) -> None:
        self.port, self.path = port, path
        ready_r, ready_w = os.pipe()
        data_r, data_w = os.pipe()
        stop_r, self._stop_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: only os and socket calls, then _exit
            os.close(ready_r)
            os.close(data_r)
            os.close(self._stop_w)
            try:
                self._run(ready_w, data_w, stop_r, as_uid)
            finally:
                os._exit(0)
        os.close(ready_w)
        os.close(data_w)
        os.close(stop_r)
        self._data_r = data_r
        with os.fdopen(ready_r, "rb") as ready:
            self.said = ready.readline().decode().strip()  # "listening; unix: <what happened>"
        assert self.said.startswith("listening"), self.said

    def _run(self, ready_w: int, data_w: int, stop_r: int, as_uid: int | None) -> None:
        if as_uid is not None:
            os.setgroups([])
            os.setgid(as_uid)
            os.setuid(as_uid)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        unix = "not tried (same account)"
        if as_uid is not None:
            try:
                taken = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    os.unlink(self.path)
                except OSError:
                    pass
                taken.bind(str(self.path))
                taken.listen(64)
                unix = "bound"
            except OSError as exc:
                unix = f"refused ({type(exc).__name__})"
        os.write(ready_w, f"listening; unix: {unix}\n".encode())
        os.close(ready_w)
        got = b""
        while True:
            readable, _, _ = select.select([listener, stop_r], [], [], 0.1)
            if stop_r in readable:
                break
            if listener in readable:
                conn, _ = listener.accept()
                conn.settimeout(0.5)
                try:
                    got += b"<connection>" + conn.recv(65536)
                except OSError:
                    pass
                conn.close()
        os.write(data_w, got)
        os.close(data_w)

    def finish(self) -> bytes:
        os.close(self._stop_w)
        chunks = []
        while chunk := os.read(self._data_r, 65536):
            chunks.append(chunk)
        os.close(self._data_r)
        os.waitpid(self.pid, 0)
        return b"".join(chunks)


@pytest.fixture
def checkout(monkeypatch):
    """A checkout whose parents any account may pass through (as most are), the store started in it."""
    base = Path(tempfile.mkdtemp(prefix="wms-relay-identity-"))
    os.chmod(base, 0o755)
    var = base / "var"
    for name in ("REDIS_URL", "SENTRY_DSN", "LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WMS_RELAY_VAR_DIR", str(var))
    yield var
    embedded.stop(var)


@pytest.mark.parametrize("how", ["store stop", "crash"])
def test_no_password_reaches_whoever_holds_the_old_port_while_the_store_is_down(checkout, capsys, how):
    var = checkout
    url = embedded.ensure_running(var)
    password = embedded.checkout_password(var)
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)  # a process's pool
    client.set("wms:test:kept", "yes")
    old_port = var / "valkey" / "port"  # main remembered a port; the socket store has none
    port = int(old_port.read_text()) if old_port.exists() else free_port()
    pid = embedded.whereabouts(var)["pid"]
    if how == "store stop":
        assert main(["store", "stop"]) == 0
    else:
        os.kill(pid, signal.SIGKILL)
        while embedded._alive(pid):
            time.sleep(0.01)
    capsys.readouterr()

    impostor = Impostor(port, var / "valkey" / "valkey.sock", as_uid=NOBODY if AS_ROOT else None)
    try:
        with pytest.raises(redis.ConnectionError):
            client.ping()  # the pool reconnects: to our socket, or to nothing
        assert embedded.running_url(var) is None
        assert main(["status"]) == 3  # a support command looks for the store
        assert main(["store", "status"]) == 3
        main(["store", "stop"])  # stopping while down opens no window either
        again = embedded.ensure_running(var)  # the service starts it again
        assert redis.Redis.from_url(again).get("wms:test:kept") == b"yes"
        try:
            found_again = client.get("wms:test:kept")  # the old client's pool finds the store again
        except redis.ConnectionError as exc:
            found_again = exc
    finally:
        got = impostor.finish()
    capsys.readouterr()
    assert password.encode() not in got
    assert got == b"", got[:200]  # nothing connected to the port at all
    if AS_ROOT:  # another account cannot put a socket where ours was
        assert impostor.said.endswith("unix: refused (PermissionError)"), impostor.said
    assert found_again == b"yes"


def test_the_store_listens_on_no_port_and_its_socket_is_the_owners_only(checkout):
    var = checkout
    url = embedded.ensure_running(var)
    assert url.startswith("unix://:") and url.endswith("/valkey/valkey.sock?db=0")
    config = redis.Redis.from_url(url, decode_responses=True).config_get("*")
    assert config["port"] == "0" and config["unixsocketperm"] == "700"
    sock = var / "valkey" / "valkey.sock"
    assert stat.S_ISSOCK(sock.stat().st_mode) and sock.stat().st_mode & 0o077 == 0
    assert (var / "valkey").stat().st_mode & 0o777 == 0o700
    with pytest.raises(redis.AuthenticationError):  # the password stays a second lock
        redis.Redis(unix_socket_path=str(sock)).get("wms:probe")
