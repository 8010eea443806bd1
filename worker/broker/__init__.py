"""The broker side of the worker: what our Celery/kombu transport changes of kombu's Redis transport.

``unacked``: the unacknowledged-message bookkeeping of ``task_acks_late`` (kombu's keys and data, one write
per message).  The transport and channel classes that use it are in ``worker.celery_config``.
"""
