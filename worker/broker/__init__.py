"""The broker side of the worker: how the service talks to Celery's broker (Redis), and what our
Celery/kombu transport changes of kombu's Redis transport.

``celery_config``: Celery's configuration built from Settings, and the transports and channels it names
(every popped message screened, one redis-py client per channel).  ``unacked``: the unacknowledged-message
bookkeeping of ``task_acks_late`` (kombu's keys and data, one write per message) those channels use.
"""
