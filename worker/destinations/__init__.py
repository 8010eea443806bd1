"""The retail APIs events are delivered to, one package each (``trademax/``), behind one contract
(``worker.destinations.contract``): a table of operations whose rows say everything the relay needs —
the task that carries the event, its queue and schema, its idempotency key, how it is sent, whether it
needs a dispatch_id first, whether it may be resent after an unknown outcome.  ``worker.destinations.table``
gathers every destination's rows; queues, routes and task modules are built from it.

Importing this package (and the tables) imports no HTTP library: the clients are imported by whoever
sends (``worker.delivery.relay``)."""
