"""The Celery app: ``celery -A worker ...`` finds it here.

The app is configured lazily, on first use of its configuration (Celery's ``on_configure`` signal), from
``Settings.from_env()``: importing this module (or ``tasks``) connects to nothing and starts nothing.
Only then is the broker URL resolved, which starts the embedded valkey-server when REDIS_URL is unset: this
app is the service's (the worker, Flower, ``celery -A worker``); support commands build their own
(``worker.broker.publisher_app``), which never starts a server."""
from __future__ import annotations

from celery import Celery
from celery.signals import celeryd_init

from worker.broker.celery_config import celery_config
from worker.broker.green_pool import GreenPoolTimers
from worker.destinations.table import TASK_MODULES
from worker.observe.heartbeat import heartbeat_step
from worker.observe.task_events import BatchedTaskEvents
from worker.settings import Settings

# The task modules come from the operation table: one per destination resource; and the desk's bulk job
# (its own queue, tasks.support_jobs), whose task runs support's actions (a name here, not an import: the
# worker loads it when it starts).
app = Celery("wms_relay", include=[*TASK_MODULES, "worker.support.job_task"])


def _store_client():
    """The worker's own Redis client for its heartbeat (a worker may start the embedded server)."""
    from worker.store.connection import connect

    return connect(Settings.from_env(), start=True)


def _configuration() -> str:
    """What the worker records of its destinations' configuration with each beat (never a secret)."""
    from worker.observe.configuration import recorded_text

    return recorded_text(Settings.from_env())


def _probe_files(node_name: str):
    """The worker's liveness and readiness files under WMS_RELAY_VAR_DIR (``wms-relay health --liveness``)."""
    from worker.observe.probe_files import ProbeFiles

    return ProbeFiles(Settings.from_env().var_dir, "worker", node_name)


# wms:heartbeat:worker (status, `wms-relay health`), the destinations' configuration (status,
# metrics) and the probe files (`health worker --liveness`).
app.steps["consumer"].add(heartbeat_step(_store_client, configuration=_configuration,
                                         probe_files=_probe_files))
# Celery's task events (Flower's view) published a few times a second, not after each event.
app.steps["consumer"].add(BatchedTaskEvents)
# Under gevent (no event loop): visibility sweep, acks' flush, refill (worker.broker.green_pool).
app.steps["consumer"].add(GreenPoolTimers)


@app.on_configure.connect
def _configure_from_settings(sender: Celery, **_: object) -> None:
    from worker.store.connection import store_url  # deferred: may start the embedded server

    settings = Settings.from_env()
    sender.conf.update(celery_config(settings, broker_url=store_url(settings, start=True)))


@celeryd_init.connect
def _start_sentry_in_worker(**_: object) -> None:
    """Sentry with its Celery integration in every worker, however started (``wms-relay worker`` or
    ``celery -A worker worker``).  No-op without SENTRY_DSN, and when it is running already."""
    from worker.observe.sentry import start

    start(Settings.from_env(), celery=True)
