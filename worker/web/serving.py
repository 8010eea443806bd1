"""Serving a wms-relay web app: waitress (a production WSGI server, pure Python, threaded — no fork, so no
Redis connection is ever shared between processes), and the one rule every web process keeps: an address
other machines can reach needs credentials."""
from __future__ import annotations

import ipaddress
import sys

from worker.settings import SettingsError


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for ``0.0.0.0``, ``""`` and any other name."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def refuse_exposure(address: str, has_credentials: bool, what: str, variables: str) -> None:
    """Raise a SettingsError naming ``variables`` if ``address`` is reachable from other machines and
    no credentials are configured."""
    if not is_loopback(address) and not has_credentials:
        raise SettingsError(f"{variables} must be set to run {what} on {address or 'every address'}, which "
                            "other machines can reach; or listen on 127.0.0.1")


def serve(app, *, host: str, port: int, name: str, threads: int = 8, max_body_bytes: int | None = None,
          announce=sys.stderr) -> None:
    """Serve ``app`` with waitress until interrupted; print ``NAME: listening on http://HOST:PORT`` once
    the socket is bound (port 0 picks a free port, and the line says which)."""
    from waitress import create_server

    options = {"threads": threads, "ident": "wms-relay", "clear_untrusted_proxy_headers": True}
    if max_body_bytes is not None:
        options["max_request_body_size"] = max_body_bytes
    server = create_server(app, host=host, port=port, **options)
    shown = f"[{server.effective_host}]" if ":" in str(server.effective_host) else server.effective_host
    print(f"{name}: listening on http://{shown}:{server.effective_port}", file=announce, flush=True)
    try:
        server.run()
    finally:
        server.close()
