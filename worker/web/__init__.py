"""The web processes: the support desk (``desk/``, people in browsers), which calls the same support
actions as the CLI.  ``serving`` is what every web process shares (Flower's launch uses its loopback rule
too): the production WSGI server and the refusal to listen in the open without credentials."""
