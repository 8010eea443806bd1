"""``wms-relay sandbox``: run one local fake API (worker.sandbox) until interrupted."""
from __future__ import annotations

import argparse
import sys

from worker.destinations.declared import DECLARATIONS
from worker.settings import Settings

APIS = tuple(declared.name for declared in DECLARATIONS)

DESCRIPTION = """\
Run a local fake API on HOST:PORT for demos, tests and benchmarks (--api, default trademax). It checks
credentials exactly like the real API, keeps state, refuses what the real API refuses and injects faults.
Credentials come from the same variables the relay's clients use (all required for the chosen API):

""" + "\n".join(f"  {d.name:<11} {', '.join(v.name for v in d.credentials)}" for d in DECLARATIONS) + """

Its base URL is http://HOST:PORT/ (Trademax's http://HOST:PORT/api/); what each fake answers: its module,
worker/sandbox/<api>/api.py, and docs/destinations.md.

Sandbox-only endpoints (unauthenticated; the real APIs have none):
  GET  /_sandbox/state      what was applied; always {"stock": {"<location>": {"<product>": qty}}, ...}
  GET  /_sandbox/requests   every API request seen (params without credentials, status, error_code,
                            injected fault); kept until reset
  GET  /_sandbox/faults     the current fault plan
  POST /_sandbox/faults     change it at run time, e.g. {"fail_rate": 1.0} ... {"fail_rate": 0}
  POST /_sandbox/reset      forget state and requests; faults back to the command-line values

Sandbox conventions (docs/destinations.md says why): a Trademax artno, a ka-ching stock location or a
StockTrim productId starting with UNKNOWN does not exist; a repeated Trademax transaction_id answers 452
(with the original record as data, unless --duplicate-without-data); a Trademax dispatch updated without
draft=true is published, and a published one refuses every change (400, error_code 1).  ka-ching answers an
import to a stock location that does not exist 200 "initiated" and lists its values under "failed" in its
state; Stock2Shop answers 200 to every queued product and lists under "ignored" a new one without a title
and one whose product/variant relation differs from what it holds.
"""


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sandbox", help="run a local fake Trademax, ka-ching, StockTrim or Stock2Shop (auth, state, faults)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--api", choices=APIS, default="trademax",
                        help="which API to fake (default trademax)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--latency-ms", type=_non_negative, default=0.0, help="added to every API request")
    parser.add_argument("--fail-rate", type=_rate, default=0.0, help="fraction answered 500, not applied")
    parser.add_argument("--throttle-rate", type=_rate, default=0.0,
                        help="fraction answered 429 with Retry-After: 1, not applied")
    parser.add_argument("--timeout-after-apply-rate", type=_rate, default=0.0,
                        help="fraction applied and then left unanswered for --stall-seconds")
    parser.add_argument("--stall-seconds", type=_non_negative, default=35.0,
                        help="how long those stall (default 35: past the default 30 s read timeout)")
    parser.add_argument("--duplicate-without-data", action="store_true",
                        help="trademax: a 452 (request duplication) answers with an empty data, so without "
                             "the dispatch's or receipt's id (a switch; also POST /_sandbox/faults "
                             '{"duplicate_without_data": 1})')
    parser.add_argument("--initiated-fewer", action="store_true",
                        help="kaching: an import's last value is not parsed (not applied, listed under "
                             'failed) and "Import of N ... initiated" counts the others (a switch; also POST '
                             '/_sandbox/faults {"initiated_fewer": 1})')
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault draws (repeatable runs)")
    parser.add_argument("--token-ttl", type=_non_negative, default=3600.0,
                        help="stock2shop: seconds a token lives after authenticate "
                             "(default 3600; 0: forever)")
    parser.add_argument("--max-rps", type=_non_negative, default=1.0,
                        help="stock2shop: requests per second per client above which it answers 429 "
                             "(default 1; 0: no limit)")
    parser.set_defaults(handler=run)


def build_api(api: str, settings: Settings, args: argparse.Namespace):
    """The SandboxApi for ``--api``, its credentials from ``settings`` (SettingsError names a missing one):
    the destination builds its own (``Destination.sandbox``)."""
    from worker.destinations.table import DESTINATIONS

    settings.require_credentials(api)
    return DESTINATIONS[api].sandbox(settings, args)


def run(args: argparse.Namespace) -> int:
    # Imported here so that building the CLI's parser stays cheap.
    from worker.observe.logs import announce, configure
    from worker.sandbox.control import ready_line
    from worker.sandbox.faults import FaultPlan
    from worker.sandbox.server import SandboxServer
    from worker.web.serving import stop_on_sigterm

    settings = Settings.from_env()
    api = build_api(args.api, settings, args)
    configure(settings)
    try:
        plan = FaultPlan(
            latency_ms=args.latency_ms, fail_rate=args.fail_rate, throttle_rate=args.throttle_rate,
            timeout_after_apply_rate=args.timeout_after_apply_rate, stall_seconds=args.stall_seconds,
            duplicate_without_data=1.0 if args.duplicate_without_data else 0.0,
            initiated_fewer=1.0 if args.initiated_fewer else 0.0,
        )
    except ValueError as exc:
        print(f"wms-relay sandbox: {exc}", file=sys.stderr)
        return 2
    server = SandboxServer((args.host, args.port), api, plan=plan, seed=args.seed)
    stop_on_sigterm()
    try:
        announce(ready_line(server.base_url), logger="wms_relay.sandbox")
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: a clean stop
        pass
    finally:
        server.server_close()
    return 0
