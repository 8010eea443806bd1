"""The publisher app: a Celery app that publishes tasks and nothing else — for support actions (retry,
resend, run now).  (``wms-relay enqueue`` and the ingest door need none: each event's task message goes
onto its queue in the same store call as its ledger record, ``worker.delivery.admission``.)

It is built from the Settings passed in, configured like the service's (``worker.broker.celery_config``), and
its broker is exactly the Redis those settings name: it never starts the embedded server (the service's
app, ``worker.celery.app``, configures itself from the environment once and may start it).  It needs no
destination's credentials and loads no task module."""
from __future__ import annotations

from celery import Celery

from worker.broker.celery_config import celery_config
from worker.settings import Settings


def publisher_app(settings: Settings) -> Celery:
    """A Celery app for publishing, configured like the service's, on the store ``settings`` name."""
    from worker.store.connection import store_url

    app = Celery("wms_relay_support", set_as_current=False)
    app.conf.update(celery_config(settings, broker_url=store_url(settings)))
    return app
