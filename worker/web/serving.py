"""Serving a wms-relay web process: waitress (a production WSGI server in pure Python, threaded — the work
is I/O against Redis; no fork, so no Redis connection is ever shared between processes), and the one rule
every door keeps (the ingest door, the support desk, Flower): an address other machines can reach needs
credentials; loopback is for one machine's own use."""
from __future__ import annotations

import ipaddress
import logging
import re
import sys
from typing import TextIO

from worker.settings import SettingsError

DEFAULT_THREADS = 8


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for ``0.0.0.0``, ``""`` and any other name."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def refuse_exposure(address: str, *, has_credentials: bool, what: str, credentials: str,
                    address_option: str = "--host") -> None:
    """Stop start-up with a SettingsError naming ``credentials`` (what to configure) when ``address`` is
    reachable from other machines and no credentials are configured; ``address_option`` is the command's
    flag for the address (the other way out: loopback)."""
    if not is_loopback(address) and not has_credentials:
        raise SettingsError(f"{what} would listen on {address or 'every address'}, which other machines can "
                            f"reach, without credentials: give it {credentials}, or use {address_option} "
                            "127.0.0.1")


_LISTENING = re.compile(r"listening on (https?://[^\s\"]+)")


def listening_url(line: str) -> str | None:
    """The URL in a web process's ready line, text or JSON (None in any other line)."""
    found = _LISTENING.search(line)
    return found.group(1) if found else None


def serve(app, *, host: str, port: int, name: str, threads: int = DEFAULT_THREADS,
          max_body_bytes: int | None = None, announce: TextIO | None = None) -> None:
    """Serve ``app`` with waitress until interrupted (SIGINT, or SIGTERM turned into one).  Once the socket
    is bound, prints one line ``NAME: listening on http://HOST:PORT/`` to ``announce`` (stdout unless
    given: the process's one line of output, its logs go to stderr; port 0 picks a free port, and the
    line says which; a JSON line with LOG_FORMAT=json) — scripts and tests wait for it
    (:func:`listening_url` reads it)."""
    from waitress import create_server

    from worker.observe.logs import announce as say_ready

    options = {"threads": threads, "ident": "wms-relay", "clear_untrusted_proxy_headers": True}
    if max_body_bytes is not None:
        options["max_request_body_size"] = max_body_bytes
    server = create_server(app, host=host, port=port, **options)
    shown = f"[{server.effective_host}]" if ":" in str(server.effective_host) else server.effective_host
    say_ready(f"{name}: listening on http://{shown}:{server.effective_port}/", announce or sys.stdout)
    # waitress keeps no access log; its own log says what went wrong, not its "task queue depth" chatter.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
