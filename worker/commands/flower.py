"""``wms-relay flower``: Flower, the operators' live view of workers and tasks.

Basic auth comes from FLOWER_BASIC_AUTH (``user:password[,user2:password2]``), which Flower reads from the
environment itself, so the password never appears on a command line.  Flower refuses to start on a
non-loopback address without it.  What operators see there, and what they do in the CLI instead, is in
the README ("Watching it: Flower").

The task list shows the columns an operator needs first: the task name, its argument summary (operation,
key, order_no/artno: ``tasks.summary``), and its result — the event's state after the task
(``delivered``, ``retrying``, ``dead``...), which says more than Celery's state (SUCCESS for every task
that returned, whatever became of its event)."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from worker.settings import Settings, SettingsError, valid_basic_auth
from worker.web.serving import refuse_exposure

# Flower's ``tasks_columns``: slugs of the /tasks page's columns, in order (Flower hides args and result by
# default).
TASKS_COLUMNS = "name,args,result,state,received,runtime,worker,uuid"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("flower", help="run Flower (basic auth from FLOWER_BASIC_AUTH)")
    p.add_argument("--address", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5555, help="listen port (default 5555)")
    p.set_defaults(handler=run)


def check_exposure(address: str, basic_auth: str) -> None:
    """Refuse a Flower reachable from other machines without a password (and a malformed one anywhere)."""
    if basic_auth and not valid_basic_auth(basic_auth):
        raise SettingsError("FLOWER_BASIC_AUTH must be user:password (comma-separated for several users), "
                            "with neither part empty")
    refuse_exposure(address, has_credentials=bool(basic_auth), what="Flower",
                    credentials="FLOWER_BASIC_AUTH (user:password)", address_option="--address")


def run(args: argparse.Namespace) -> int:
    from worker.observe.logs import configure

    settings = Settings.from_env()
    check_exposure(args.address, settings.flower_basic_auth)
    from worker.celery import app

    # Flower's lines (and Tornado's) through our formatter: Tornado leaves logging alone with
    # --logging=none (its own setup would add a handler of its format), and configure() sets LOG_LEVEL.
    configure(settings)
    if not settings.flower_basic_auth:
        logging.getLogger("wms_relay.flower").warning("Flower without a password: on loopback only.")
    app.start(argv=["flower", f"--address={args.address}", f"--port={args.port}",
                    f"--tasks_columns={TASKS_COLUMNS}", "--logging=none"])
    # Flower's SIGTERM handler ends its loop by raising SystemExit.  When that lands while Flower starts,
    # its thread pool is never shut down, and the interpreter waits for the pool's idle thread at exit —
    # for ever (as PID 1 too: tests/integration/test_pid1_sigterm.py).  Flower keeps nothing to save here
    # (no --persistent), so the process ends now, its output flushed.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
