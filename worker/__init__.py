"""wms-relay's I/O shell: settings, Redis, the Trademax client, the ledger, retries, dead letters, the
Celery app (``worker.celery``, so ``celery -A worker ...`` works), the sandbox and the ``wms-relay`` CLI.

Importing this package connects to nothing."""
__version__ = "0.1.0"
