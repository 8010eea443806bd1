"""wms-relay's HTTP processes: ``ingest`` (the WMS's door, machines) and the support ``desk`` (people,
in browsers; the same support actions as the CLI).  Separate processes with separate auth; both serve
through :mod:`worker.web.serving`, whose loopback rule Flower's launch keeps too."""
