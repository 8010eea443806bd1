"""The connections a support command works with, built from Settings: the relay's stores (ledger, retry
schedule, dead letters), a Celery app to publish tasks and ask workers, and the support desk of
``worker.support.actions`` on top.

The Celery app here is built from the Settings passed in (not the process-wide ``worker.celery.app``,
which configures itself from the environment once): each command talks to exactly the Redis its
settings name, and never starts one (``StoreNotFound`` when there is none to read: exit code 3).  It
needs no destination's credentials.  ``Workplace.store`` says which store it is, for the command to
print."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from celery import Celery

from worker.settings import Settings
from worker.support.actions import SupportDesk


@dataclass
class Workplace:
    settings: Settings
    store: str  # worker.store.connection.describe: which store, without the password
    relay: object  # worker.delivery.relay.Relay (sends=False)
    app: Celery
    desk: SupportDesk


def control_app(settings: Settings) -> Celery:
    """A Celery app for publishing and ``control.ping``, configured like the service's."""
    from worker.celery_config import celery_config
    from worker.store.connection import store_url

    app = Celery("wms_relay_support", set_as_current=False)
    app.conf.update(celery_config(settings, broker_url=store_url(settings)))
    return app


@contextmanager
def workplace(settings: Settings, *, via: str = "cli") -> Iterator[Workplace]:
    """Open the stores and the app for one command (or the desk: ``via="desk"``); closes their
    connections afterwards."""
    from worker.delivery.relay import build_relay
    from tasks.publishing import celery_publisher
    from worker.store.connection import describe
    from worker.store.audit_log import AuditLog

    relay = build_relay(settings, sends=False)
    app = control_app(settings)
    desk = SupportDesk(ledger=relay.ledger, dead_letters=relay.dead_letters, schedule=relay.schedule,
                       publish=celery_publisher(app), dispatch_waiters=relay.dispatch_waiters,
                       clock=relay.clock, audit=AuditLog(relay.redis, relay.clock), via=via)
    try:
        yield Workplace(settings, describe(settings), relay, app, desk)
    finally:
        app.close()
        relay.redis.close()
