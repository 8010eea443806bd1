"""Serving a wms-relay web process: waitress (a production WSGI server in pure Python, threaded — the work
is I/O against Redis; no fork, so no Redis connection is ever shared between processes), and the one rule
every door keeps (the ingest door, the support desk, Flower): an address other machines can reach needs
credentials; loopback is for one machine's own use.

How a door holds against idle and slow clients (:func:`waitress_options`; docs/operations.md, "The web
doors under load").  waitress reads requests in one event loop and hands only *complete* requests to its
threads, so a client that sends half a request, or nothing, costs a socket, never a thread.  Sockets are
what it can run out of: at ``connection_limit`` open connections it stops accepting (new ones wait in the
kernel's backlog) until some close — with waitress's defaults (100, closed after 120 s idle) ~100 idle
clients stopped both doors for two minutes (issue 23.3).  So:

- ``connection_limit`` = WEB_CONNECTION_LIMIT (default 1,000: ten times waitress's; a WMS or a support
  team uses a handful, so 500 idle clients leave room for the real ones), with the process's open-file
  limit raised to fit it (each connection is a file descriptor, up to three with a large body);
- ``channel_timeout`` = WEB_CHANNEL_TIMEOUT_SECONDS (default 15 s): a connection with nothing received for
  that long and no request being answered is closed — a request line and no more, a kept-alive socket
  nobody uses; a request being answered is never cut, and a body arriving slowly is not idle;
- ``cleanup_interval``: the idle check runs every third of that timeout (at most every 5 s), so an idle
  socket goes within 1⅓ timeouts;
- ``asyncore_use_poll``: poll(), not select(), which cannot watch a descriptor numbered past 1,023.

What waitress cannot do — a deadline for a whole request (a client dripping one byte every few seconds
stays "active"), a limit per client address — a front proxy does; docs/operations.md says when one is
required."""
from __future__ import annotations

import ipaddress
import logging
import re
import signal
import sys
import threading
from dataclasses import dataclass
from typing import TextIO

from worker.settings import SettingsError

DEFAULT_THREADS = 8
# File descriptors a connection may hold (its socket; a request body and a response buffered to temporary
# files past waitress's in-memory thresholds), and those the process needs besides (store, logs, imports).
_DESCRIPTORS_PER_CONNECTION = 3
_DESCRIPTORS_BESIDES = 256

log = logging.getLogger("wms_relay.web")


@dataclass(frozen=True)
class DoorLimits:
    """How many connections a door holds, and how long an idle one stays (see the module docstring)."""

    connection_limit: int = 1000
    channel_timeout: int = 15

    @classmethod
    def from_settings(cls, settings) -> "DoorLimits":
        return cls(settings.web_connection_limit, settings.web_channel_timeout_seconds)

    @property
    def cleanup_interval(self) -> int:
        return max(1, min(5, self.channel_timeout // 3))


def waitress_options(limits: DoorLimits, *, threads: int, max_body_bytes: int | None = None) -> dict:
    """The keyword arguments of ``waitress.create_server`` for a door (pure: the test reads them)."""
    options = {"threads": threads, "ident": "wms-relay", "clear_untrusted_proxy_headers": True,
               "connection_limit": limits.connection_limit, "channel_timeout": limits.channel_timeout,
               "cleanup_interval": limits.cleanup_interval, "asyncore_use_poll": True}
    if max_body_bytes is not None:
        options["max_request_body_size"] = max_body_bytes
    return options


def fit_descriptors(limits: DoorLimits) -> DoorLimits:
    """Raise this process's open-file limit (its soft limit, up to the hard one) to fit
    ``limits.connection_limit``; where the hard limit is lower, a connection limit that fits it, with a
    warning naming both."""
    import resource

    wanted = limits.connection_limit * _DESCRIPTORS_PER_CONNECTION + _DESCRIPTORS_BESIDES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
        soft = ceiling
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return limits
    fits = max(10, (soft - _DESCRIPTORS_BESIDES) // _DESCRIPTORS_PER_CONNECTION)
    log.warning("the open-file limit (%d) fits %d connections, not WEB_CONNECTION_LIMIT=%d: raise the "
                "limit (ulimit -n, or the container's nofile) or lower the setting", soft, fits,
                limits.connection_limit)
    return DoorLimits(fits, limits.channel_timeout)


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


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt  # the serving loop ends as on Ctrl-C; its finally-blocks close what it opened


def stop_on_sigterm() -> None:
    """Make SIGTERM end this process's serving loop as Ctrl-C does (called from the main thread).

    A process with no handler of its own dies of SIGTERM's default action — except as PID 1 (a container
    without an init, ``docker run`` of our image with ``--entrypoint``, a Kubernetes ``command:``), where
    the kernel ignores a signal its process has no handler for: SIGTERM did nothing, and the process was
    killed after the grace period (tests/integration/test_pid1_sigterm.py)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


_LISTENING = re.compile(r"listening on (https?://[^\s\"]+)")


def listening_url(line: str) -> str | None:
    """The URL in a web process's ready line, text or JSON (None in any other line)."""
    found = _LISTENING.search(line)
    return found.group(1) if found else None


def serve(app, *, host: str, port: int, name: str, threads: int = DEFAULT_THREADS,
          max_body_bytes: int | None = None, announce: TextIO | None = None,
          limits: DoorLimits = DoorLimits()) -> None:
    """Serve ``app`` with waitress until interrupted (SIGINT, or SIGTERM: :func:`stop_on_sigterm`).
    Once the socket is bound, prints one line ``NAME: listening on http://HOST:PORT/`` to ``announce``
    (stdout unless given: the process's one line of output, its logs go to stderr; port 0 picks a free
    port, and the line says which; a JSON line with LOG_FORMAT=json) — scripts and tests wait for it
    (:func:`listening_url` reads it).  ``limits``: the door's connection limits
    (:meth:`DoorLimits.from_settings`), the open-file limit raised to fit them."""
    from waitress import create_server

    from worker.observe.logs import announce as say_ready

    options = waitress_options(fit_descriptors(limits), threads=threads, max_body_bytes=max_body_bytes)
    server = create_server(app, host=host, port=port, **options)
    shown = f"[{server.effective_host}]" if ":" in str(server.effective_host) else server.effective_host
    say_ready(f"{name}: listening on http://{shown}:{server.effective_port}/", announce or sys.stdout)
    # waitress keeps no access log; its own log says what went wrong, not its "task queue depth" chatter.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    stop_on_sigterm()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
