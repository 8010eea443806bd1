"""Serving a web process: waitress (a production WSGI server in pure Python, threaded — the work is I/O
against Redis; no fork, so no Redis connection is ever shared between processes), on loopback unless the
process has credentials to ask for.

``refuse_exposure`` is the one rule for every web door: an address other machines can reach needs the
process's credentials (the desk's users file, the ingest tokens); loopback is for one machine's own use."""
from __future__ import annotations

import ipaddress
import logging
from typing import Callable

from worker.settings import SettingsError

DEFAULT_THREADS = 8


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1 or ``localhost``; anything else (``0.0.0.0``, ``""``, a LAN address) is open."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def refuse_exposure(host: str, *, has_credentials: bool, what: str, setting: str) -> None:
    """Stop start-up (SettingsError naming ``setting``) for a door other machines can reach that has no
    credentials to ask for."""
    if not is_loopback(host) and not has_credentials:
        raise SettingsError(f"{setting} must name at least one user to run {what} on "
                            f"{host or 'every address'}, which other machines can reach; or use "
                            "--host 127.0.0.1")


def serve(app: Callable, host: str, port: int, *, name: str, threads: int = DEFAULT_THREADS,
          announce: Callable[[str], None] = print) -> None:
    """Serve ``app`` until SIGINT/SIGTERM; ``announce`` gets one line with the address first."""
    from waitress import create_server

    server = create_server(app, host=host, port=port, threads=threads, ident=name,
                           # One line per request would be the access log: waitress keeps none, and its
                           # own log says only what went wrong.
                           clear_untrusted_proxy_headers=True)
    bound = server.effective_port if hasattr(server, "effective_port") else port
    shown = f"[{host}]" if ":" in host else host
    announce(f"{name} listening on http://{shown}:{bound}/")
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" chatter under load
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
