"""``wms-relay desk [--host 127.0.0.1] [--port 8080]``: the support desk, a web page for support staff
(``worker.web.desk``), served by waitress.  ``wms-relay desk add-user NAME --role viewer|operator``
adds a user to DESK_USERS_FILE (or changes their role and password).

The desk refuses to listen on an address other machines can reach while the users file names nobody.
Behind TLS (a reverse proxy; docs/operations.md), set DESK_PUBLIC_URL=https://... so its cookies are
Secure.  The process also needs REDIS_URL (as every support command), not the Trademax credentials; with
REDIS_URL unset it reads the embedded server the worker started (waiting up to 30 s for it at start),
and never starts one."""
from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys

from worker.commands.presenting import complain, friendly_errors, say
from worker.settings import Settings

DEFAULT_PORT = 8080


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("desk", help="run the support desk web app (add-user: add a desk user)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"listen port (default {DEFAULT_PORT}; 0: any free port, named in the first line)")
    p.add_argument("--threads", type=int, default=8, help="request threads (default 8)")
    p.set_defaults(handler=run)
    sub = p.add_subparsers(dest="desk_command", metavar="ACTION")
    add = sub.add_parser("add-user", help="add a desk user, or change a user's role and password")
    add.add_argument("name", help="the user's sign-in name")
    add.add_argument("--role", choices=("viewer", "operator"), required=True,
                     help="viewer: sees everything; operator: also retries, discards, resolves")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input (first line) instead of asking")
    add.set_defaults(handler=run_add_user)


def _desk_settings(settings: Settings):
    from worker.web.desk.config import DeskSettings

    return DeskSettings.from_env(os.environ, settings.var_dir)


def run_add_user(args: argparse.Namespace) -> int:
    from worker.web.desk.users import UsersFile

    settings = Settings.from_env()
    users_file = _users_path(settings)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {args.name}: ")
        if password != getpass.getpass("Again: "):
            complain("the two passwords differ; nothing changed.")
            return 2
    try:
        new = UsersFile(users_file).add(args.name, args.role, password)
    except ValueError as exc:
        complain(f"{exc}; nothing changed.")
        return 2
    say(f"{'Added' if new else 'Updated'} desk user {args.name} ({args.role}) in {users_file}.")
    return 0


def _users_path(settings: Settings):
    from worker.web.desk.config import users_file_of

    return users_file_of(os.environ, settings.var_dir)


# How long the desk waits for a store that is not running yet (the worker starts the embedded one).
STORE_WAIT_SECONDS = 30.0


@friendly_errors
def run(args: argparse.Namespace) -> int:
    from worker.observe.logs import configure
    from worker.support.workplace import workplace
    from worker.web.desk.app import create_app
    from worker.store.connection import StoreNotFound, store_url, wait_for_store
    from worker.web.desk.services import DeskServices
    from worker.web.desk.users import UsersFile
    from worker.web.serving import DoorLimits, refuse_exposure, serve, stop_on_sigterm

    settings = Settings.from_env()
    desk_settings = _desk_settings(settings)
    users = UsersFile(desk_settings.users_file)
    signs_on = bool(desk_settings.trusted_proxy_header)  # single sign-on through a trusted proxy
    refuse_exposure(args.host, has_credentials=bool(users.users()) or signs_on, what="the support desk",
                    credentials=f"at least one user in DESK_USERS_FILE ({desk_settings.users_file}; "
                                "`wms-relay desk add-user`) or a trusted sign-on proxy "
                                "(DESK_TRUSTED_PROXY_HEADER)")
    configure(settings)
    stop_on_sigterm()  # also while it waits for the store; serve() ends on it, the with-block closes
    try:
        store_url(settings)
    except StoreNotFound:  # started with the service (honcho): give the worker time to start the store
        logging.getLogger("wms_relay.desk").info(
            "waiting up to %g s for the store (the desk never starts one)...", STORE_WAIT_SECONDS)
        wait_for_store(settings, STORE_WAIT_SECONDS)
    with workplace(settings, via="desk") as place:
        app = create_app(DeskServices(place=place, users=users, settings=desk_settings))
        if not users.users() and not signs_on:
            logging.getLogger("wms_relay.desk").warning(
                "No desk users yet: add one with `wms-relay desk add-user NAME --role operator` (writes %s).",
                desk_settings.users_file)
        serve(app, host=args.host, port=args.port, name="wms-relay desk", threads=args.threads,
              limits=DoorLimits.from_settings(settings))
    return 0
