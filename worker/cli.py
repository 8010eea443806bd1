"""The ``wms-relay`` command: one argparse tree; each subcommand lives in its own module under
``worker/commands/`` and contributes ``register(subparsers)``, which adds its parser and sets
``handler(args) -> int`` as the default.  Settings are read here, once, and passed in."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from worker import __version__

# One module per command family; add a line here when you add a module.  ``--help`` lists them in this
# order: support staff's commands first, then the service's processes, then the developers' tools.
COMMAND_MODULES = [
    "worker.commands.status",
    "worker.commands.event",
    "worker.commands.dead",
    "worker.commands.retries",
    "worker.commands.uncertain",
    "worker.commands.dispatch",
    "worker.commands.catalog",
    "worker.commands.enqueue",
    "worker.commands.validate",
    "worker.commands.check",
    "worker.commands.flow",
    "worker.commands.audit",
    "worker.commands.store",
    "worker.commands.health",
    "worker.commands.processes",
    "worker.commands.ingest",
    "worker.commands.desk_server",
    "worker.commands.flower",
    "worker.commands.metrics",
    "worker.commands.demo",
    "worker.commands.sandbox",
]


# Commands that must start fast — Kubernetes runs the probes every few seconds, each a new process: only
# their own module is imported and registered (every other module would cost ~0.3 s of CPU).
FAST_COMMANDS = {"health": "worker.commands.health"}


def _destinations_in_words() -> str:
    """``Trademax, ka-ching, StockTrim and Stock2Shop``: every destination in the table, in its order."""
    from worker.destinations.table import DESTINATIONS

    titles = [target.title for target in DESTINATIONS.values()]
    return titles[0] if len(titles) == 1 else f"{', '.join(titles[:-1])} and {titles[-1]}"


class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: an option it does not know is refused by the subcommand itself, with its own
    usage (``wms-relay dead list --limt 5`` shows ``dead list``'s options).  Plain argparse hands a
    subcommand's leftovers up to the top-level parser, whose usage names only the commands."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)} (`{self.prog} --help` lists its options)")
        return namespace, extras


def build_parser(modules: list[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    # The whole tree's description names every destination (it imports the table); a fast command's parser
    # (FAST_COMMANDS) goes without it.
    description = None
    if modules == COMMAND_MODULES:
        description = (f"Delivers warehouse events to {_destinations_in_words()}: validated, signed where "
                       "the API signs, exactly once per destination.")
    parser = argparse.ArgumentParser(prog="wms-relay", description=description)
    parser.add_argument("--version", action="version", version=f"wms-relay {__version__}")
    # Every subcommand's parser (and its own subcommands', which inherit the class) is a CommandParser.
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for name in modules:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "worker":  # WORKER_POOL=gevent: patched before any module imports socket
        from worker.commands.worker_pool import patch_before_imports

        patch_before_imports(argv)
    fast = FAST_COMMANDS.get(argv[0]) if argv else None
    parser = build_parser([fast] if fast else COMMAND_MODULES)
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        code = int(handler(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader stopped (``wms-relay status | head``): stop quietly, as a C tool killed by SIGPIPE
        # would.  Python's own flush at exit would raise again on the closed pipe, so stdout goes nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:
        from worker.settings import SettingsError  # here, not at the top: the probes never import settings

        if not isinstance(exc, SettingsError):
            raise
        print(_configuration_problem(args, f"configuration problem: {exc}"), file=sys.stderr)
        return 2


# The long-running processes (``wms-relay COMMAND`` with no action): with LOG_FORMAT=json every line they
# write is JSON, the one saying why they could not start included.
PROCESSES = ("worker", "scheduler", "ingest", "desk", "flower", "metrics", "sandbox")


def _configuration_problem(args: argparse.Namespace, text: str) -> str:
    from worker.observe.logs import json_line, json_mode

    process = args.command in PROCESSES and not getattr(args, "action", None) and \
        not getattr(args, "desk_command", None)
    if json_mode() or (process and (os.environ.get("LOG_FORMAT") or "").strip().lower() == "json"):
        return json_line(text)
    return f"wms-relay: {text}"


if __name__ == "__main__":
    sys.exit(main())
