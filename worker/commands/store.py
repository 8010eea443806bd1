"""``wms-relay store status|stop``: which store the commands read, whether it answers, and stopping the
embedded one.

    store status [--json]   the store (REDIS_URL without its password, or the embedded server under
                            WMS_RELAY_VAR_DIR), whether it answers, its memory and persistence settings;
                            exit code 0 when it answers, 3 when it does not (or none runs here)
    store stop              shut the embedded server down (SHUTDOWN: its data is flushed to disk first)

Support commands never start a server; the service processes (worker, scheduler, flower, ingest, demo) start
the embedded one when REDIS_URL is unset.  A server named by REDIS_URL is never stopped from here."""
from __future__ import annotations

import argparse

from worker.commands.presenting import complain, friendly_errors, described, print_json, say, say_store
from worker.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("store", help="which store the commands read; stop the embedded one",
                              **described(__doc__))
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])
    sub = p.add_subparsers(dest="store_command", metavar="ACTION")
    status = sub.add_parser("status", help="the store, whether it answers, memory and persistence")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=run_status)
    stop = sub.add_parser("stop", help="shut the embedded server down (its data stays on disk)")
    stop.add_argument("--json", action="store_true", help="print one JSON object")
    stop.set_defaults(handler=run_stop)


def server_facts(client) -> dict:
    """What the server says of itself: version, role, memory against its limit, persistence."""
    info = client.info()
    facts = {"version": info.get("valkey_version") or info.get("redis_version"), "role": info.get("role"),
             "used_memory": int(info.get("used_memory", 0)), "maxmemory": int(info.get("maxmemory", 0)),
             "maxmemory_policy": info.get("maxmemory_policy"), "aof_enabled": bool(info.get("aof_enabled"))}
    facts["memory_used_fraction"] = (round(facts["used_memory"] / facts["maxmemory"], 4)
                                     if facts["maxmemory"] else None)
    return facts


@friendly_errors
def run_status(args: argparse.Namespace) -> int:
    from worker.store import embedded
    from worker.store.connection import connect, describe, not_found_message

    settings = Settings.from_env()
    report: dict = {"store": describe(settings), "embedded": None, "answers": False, "server": None}
    if settings.redis_url is None:
        report["embedded"] = embedded.whereabouts(settings.var_dir)
    if settings.redis_url is not None or report["embedded"]["running"]:
        client = connect(settings)
        try:
            report["server"] = server_facts(client)
            report["answers"] = True
        finally:
            client.close()
    if args.json:
        print_json(report)
        return 0 if report["answers"] else 3
    say_store(report["store"])
    where = report["embedded"]
    if where is not None:
        say(f"  embedded server: {where['state']}" + (f", pid {where['pid']}" if where["pid"] else "")
            + (f", {where['url']}" if where["url"] else ""))
        say(f"  data: {where['data_dir']}  log: {where['log']}")
    server = report["server"]
    if server is None:
        say("Not running. `wms-relay worker` or `wms-relay scheduler` (or `make run`) starts the embedded "
            "server; support commands never do.")
        complain(not_found_message(settings))
        return 3
    limit = ("no maxmemory set" if not server["maxmemory"] else
             f"{_mib(server['maxmemory'])} ({server['memory_used_fraction']:.0%} used)")
    say(f"  answers: {server['version']} ({server['role']}), memory {_mib(server['used_memory'])} of {limit}")
    say(f"  persistence: appendonly {'yes' if server['aof_enabled'] else 'NO'}, "
        f"maxmemory-policy {server['maxmemory_policy']}")
    return 0


def _mib(size: int) -> str:
    return f"{size / 1048576:.1f} MiB"


@friendly_errors
def run_stop(args: argparse.Namespace) -> int:
    from worker.store import embedded
    from worker.store.connection import describe

    settings = Settings.from_env()
    if settings.redis_url:
        complain(f"REDIS_URL names {describe(settings)}: wms-relay stops only the embedded server it "
                 "starts. Stop that server the way it was started.")
        return 2
    stopped = embedded.stop(settings.var_dir)
    data_dir = embedded.whereabouts(settings.var_dir)["data_dir"]
    if args.json:
        print_json({"store": describe(settings), "stopped": stopped, "data_dir": data_dir})
        return 0
    say_store(describe(settings))
    say(f"Stopped it; its data stays in {data_dir}." if stopped else "It was not running: nothing to stop.")
    return 0
