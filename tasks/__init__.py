"""The WMS contract: thin Celery tasks (one module per destination resource, each registering the tasks
of its rows of the operation table), the marshmallow schemas of the WMS events (``tasks.schemas``),
validation (``tasks.events``) and the short task summary Flower shows (``tasks.summary``).  Importing this
package connects to nothing.

Imports point down (``worker.destinations``, ``worker.encoding``...), with one exception: a task, when
it runs, calls the delivery pipeline (``tasks.base`` → ``worker.delivery``), which itself validates with
``tasks.events``.  That import is deferred to the task's body, so importing a task module never imports
the pipeline; ``tests/test_import_layers.py`` allows exactly this one upward edge."""
