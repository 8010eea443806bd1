"""``wms-relay metrics [--address 127.0.0.1] [--port 9464]``: a Prometheus endpoint (GET /metrics).

Its own small process: on every scrape it reads the store — events by state, dead letters open and the
oldest one's age and uncertain events (per destination), each destination's flow (on or off as the
workers recorded it, paused, circuit state, parked deliveries, pending batches), retries scheduled and
the most overdue, queue depths, workers alive, the scheduler's last tick, Redis memory, the version
(build_info) — and the attempt counts and destination latency the workers hand to the store every few
seconds.  It needs only the store, no destination's variables.  It never starts a store: until there is
one to read, a scrape says wms_relay_store_up 0.  Labels and values carry no event content and no
secret.  Example alert rules and the Grafana panels: docs/operations.md."""
from __future__ import annotations

import argparse
import logging
import signal
import threading

from worker.commands.presenting import described
from worker.settings import Settings

DEFAULT_PORT = 9464


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("metrics", help=f"serve Prometheus metrics (default 127.0.0.1:{DEFAULT_PORT})",
                              **described(__doc__))
    p.add_argument("--address", default="127.0.0.1", help="listen address (default 127.0.0.1; 0.0.0.0 in a "
                   "container)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"listen port (default {DEFAULT_PORT})")
    p.set_defaults(handler=run)


def serve(settings: Settings, address: str, port: int):
    """Start the endpoint in a background thread; returns (http server, thread)."""
    from prometheus_client import CollectorRegistry, start_http_server

    from worker.observe.metrics import StoreCollector
    from worker.store.connection import connect

    clients: list = []

    def client():
        if not clients:
            clients.append(connect(settings))  # StoreNotFound until the embedded server runs
        return clients[0]

    registry = CollectorRegistry()
    registry.register(StoreCollector(client, settings))
    return start_http_server(port, addr=address, registry=registry)


def run(args: argparse.Namespace) -> int:
    from worker.observe.logs import configure
    from worker.store.connection import describe

    settings = Settings.from_env()
    configure(settings)
    server, _ = serve(settings, args.address, args.port)
    logging.getLogger("wms_relay.metrics").info("Metrics on http://%s:%s/metrics (store: %s)", args.address,
                                                server.server_port, describe(settings))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    return 0
