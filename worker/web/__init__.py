"""wms-relay's HTTP processes: ``ingest`` (the WMS's door, machines) and the support ``desk`` (people).
Separate processes with separate auth; both serve through :mod:`worker.web.serving`."""
