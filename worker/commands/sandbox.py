"""``wms-relay sandbox``: run the local fake Trademax (worker.sandbox) until interrupted."""
from __future__ import annotations

import argparse
import sys

from worker.settings import Settings

DESCRIPTION = """\
Run a local fake Trademax on HOST:PORT for demos, tests and benchmarks. The API is served under /api/
(base URL http://HOST:PORT/api/) and verifies requests signed with TRADEMAX_API_KEY / TRADEMAX_SECRET
(both required in the environment).

Sandbox-only endpoints (unsigned; real Trademax has none):
  GET  /_sandbox/state      what was applied: dispatches, receipts, stock, stock_adjustments,
                            package_data, line_locks
  GET  /_sandbox/requests   every API request seen (params without signature, status, error_code,
                            injected fault); kept until reset
  GET  /_sandbox/faults     the current fault plan
  POST /_sandbox/faults     change it at run time, e.g. {"fail_rate": 1.0} ... {"fail_rate": 0}
  POST /_sandbox/reset      forget state and requests; faults back to the command-line values

Sandbox conventions: an artno starting with UNKNOWN answers 404 / error_code 1; a repeated
transaction_id on dispatch or receipt creation answers 400 / error_code 452 with the original record.
"""


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sandbox", help="run a local fake Trademax (signatures, state, fault injection)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault draws (repeatable runs)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so that building the CLI's parser stays cheap.
    from worker.sandbox.control import ready_line
    from worker.sandbox.faults import FaultPlan
    from worker.sandbox.trademax.server import SandboxServer

    settings = Settings.from_env().require_trademax_credentials()
    try:
        plan = FaultPlan(
            latency_ms=args.latency_ms, fail_rate=args.fail_rate, throttle_rate=args.throttle_rate,
            timeout_after_apply_rate=args.timeout_after_apply_rate, stall_seconds=args.stall_seconds,
        )
    except ValueError as exc:
        print(f"wms-relay sandbox: {exc}", file=sys.stderr)
        return 2
    server = SandboxServer((args.host, args.port), keys={settings.trademax_api_key: settings.trademax_secret},
                           plan=plan, seed=args.seed)
    try:
        print(ready_line(server.base_url), flush=True)
        server.serve_forever()
    finally:
        server.server_close()
    return 0
