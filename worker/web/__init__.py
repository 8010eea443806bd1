"""The web processes: the support desk (``desk/``, people in browsers) and the WMS ingest API (``ingest/``,
machines).  Separate processes with separate auth; both call the same support / admission code as the CLI.
``serving`` is what they share: the production WSGI server and the refusal to listen in the open without
credentials."""
