"""``wms-relay ingest [--host H] [--port 8081]``: the HTTP door for the WMS (the Procfile's ``ingest``).

``POST /v1/events/OPERATION`` with one event, a JSON array or JSON lines; each event is validated and
admitted as ``wms-relay enqueue`` does and answered with its key and state.  The contract is served at
``/openapi.json``; ``docs/events.md`` shows curl examples.  Callers prove who they are with a bearer token
(INGEST_TOKENS_FILE) or an HMAC signature (INGEST_HMAC_SECRETS); with neither configured the door is open,
and so it refuses any address but loopback.

``wms-relay ingest add-token CLIENT [--operations OP,OP]`` makes a token for one WMS client, prints it once
and keeps only its hash in INGEST_TOKENS_FILE (a running door notices within seconds)."""
from __future__ import annotations

import argparse
import logging
import sys

from worker.settings import Settings, SettingsError

DEFAULT_PORT = 8081


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ingest", help="the HTTP door for the WMS (and add-token)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"listen port (default {DEFAULT_PORT}; 0: any free port, printed at start)")
    p.add_argument("--threads", type=int, default=8, help="request threads (default 8)")
    p.set_defaults(handler=run)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    add = actions.add_parser("add-token", help="make a bearer token for a WMS client (printed once)")
    add.add_argument("client", help="the client's name, e.g. nw-wms (letters, digits, _.@-)")
    add.add_argument("--operations", help="comma-separated operations it may send (default: all)")
    add.set_defaults(handler=run_add_token)


def run(args: argparse.Namespace) -> int:
    from worker.observe.logs import configure
    from worker.web.ingest import create_app
    from worker.web.ingest.tokens import TokenFileError
    from worker.web.serving import DoorLimits, refuse_exposure, serve

    settings = Settings.from_env()
    configure(settings)
    try:
        app = create_app(settings)
    except TokenFileError as exc:
        raise SettingsError(str(exc)) from None
    keeper = app.extensions["wms_relay_ingest"].keeper
    refuse_exposure(args.host, has_credentials=keeper.has_credentials, what="the ingest door",
                    credentials="INGEST_TOKENS_FILE (with at least one token), INGEST_HMAC_SECRETS or "
                                "INGEST_WEBHOOK_SECRETS")
    if keeper.is_open:
        logging.getLogger("wms_relay.ingest").warning(
            "no INGEST_TOKENS_FILE, INGEST_HMAC_SECRETS or INGEST_WEBHOOK_SECRETS: open to any caller on "
            "loopback only.")
    try:
        # waitress refuses (413, plain text) a body of twice the cap before reading it; between the two,
        # the app answers its own JSON 413.
        serve(app, host=args.host, port=args.port, name="wms-relay ingest", threads=args.threads,
              max_body_bytes=2 * settings.ingest_max_body_bytes, limits=DoorLimits.from_settings(settings))
    except OSError as exc:
        print(f"wms-relay ingest: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    return 0


def run_add_token(args: argparse.Namespace) -> int:
    from tasks.events import OPERATIONS
    from worker.web.ingest.tokens import TokenFileError, add_token

    settings = Settings.from_env()
    if settings.ingest_tokens_file is None:
        print("wms-relay: set INGEST_TOKENS_FILE to the file that keeps the tokens' hashes (the ingest "
              "process reads the same variable)", file=sys.stderr)
        return 2
    operations = [op.strip() for op in (args.operations or "").split(",") if op.strip()]
    unknown = [op for op in operations if op not in OPERATIONS]
    if unknown:
        print(f"wms-relay: unknown operation(s) {', '.join(unknown)}; one of: {', '.join(OPERATIONS)}",
              file=sys.stderr)
        return 2
    try:
        token = add_token(settings.ingest_tokens_file, args.client, operations or None)
    except (TokenFileError, OSError) as exc:
        print(f"wms-relay: {exc}", file=sys.stderr)
        return 2
    scope = ", ".join(operations) if operations else "every operation"
    print(token)
    print(f"Token for {args.client} ({scope}) added to {settings.ingest_tokens_file}. It is shown only now: "
          "give it to the WMS (header `Authorization: Bearer TOKEN`); the file keeps its hash only.",
          file=sys.stderr)
    return 0
