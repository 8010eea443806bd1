"""Thin Celery tasks, one module per Trademax resource, and the marshmallow schemas of the WMS events
(``tasks.schemas``, ``tasks.events``).  Importing this package connects to nothing."""
