"""The connections a support command works with, built from Settings: the relay's stores (ledger, retry
schedule, dead letters), the publisher app (``worker.broker.publisher_app``: publishes tasks on exactly the
Redis the settings name, never starting one), and on top the tools the support actions act with
(``worker.support.actions.SupportTools``).

A command never starts a store (``StoreNotFound`` when there is none to read: exit code 3), and needs no
destination's credentials.  ``Workplace.store`` says which store it is, for the command to
print."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from celery import Celery

from worker.settings import Settings
from worker.support.actions import SupportTools

if TYPE_CHECKING:  # a type only: the relay is built when a command opens its workplace
    from worker.delivery.relay import Relay


@dataclass
class Workplace:
    settings: Settings
    store: str  # worker.store.connection.describe: which store, without the password
    relay: Relay  # built with sends=False: no destination client
    app: Celery
    tools: SupportTools


@contextmanager
def workplace(settings: Settings, *, via: str = "cli") -> Iterator[Workplace]:
    """Open the stores and the app for one command (or the desk: ``via="desk"``); closes their
    connections afterwards."""
    from worker.delivery.relay import build_relay
    from worker.broker.publisher_app import publisher_app
    from tasks.publishing import celery_publisher
    from worker.store.connection import describe
    from worker.store.audit_log import AuditLog

    relay = build_relay(settings, sends=False)
    app = publisher_app(settings)
    tools = SupportTools(ledger=relay.ledger, dead_letters=relay.dead_letters, schedule=relay.schedule,
                         publish=celery_publisher(app), dispatch_waiters=relay.dispatch_waiters,
                         clock=relay.clock, audit=AuditLog(relay.redis, relay.clock), via=via)
    try:
        yield Workplace(settings, describe(settings), relay, app, tools)
    finally:
        app.close()
        relay.redis.close()
