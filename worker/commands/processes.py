"""``wms-relay worker`` and ``wms-relay scheduler``: the two long-running processes of the Procfile."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

from worker.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("worker", help="run a Celery worker that delivers events",
                              description="Runs a Celery worker on every trademax.* queue with a pool "
                                          "sized for I/O: OS threads, or gevent's green threads "
                                          "(WORKER_POOL). `celery -A worker worker ...` also works.")
    p.add_argument("--concurrency", type=int, default=None,
                   help="threads (or green threads) in the pool (default: WORKER_CONCURRENCY, 16)")
    p.add_argument("--loglevel", default=None, help="Celery log level (default: LOG_LEVEL)")
    p.add_argument("--name", default=None, help="node name (default: relay-<pid>@<host>)")
    p.set_defaults(handler=run_worker)

    s = subparsers.add_parser("scheduler", help="move due retries back to their queues (run one or more)")
    s.add_argument("--interval", type=float, default=0.25, help="seconds between ticks (default 0.25)")
    s.add_argument("--sweep-interval", type=float, default=60.0,
                   help="seconds between stranded-event sweeps (default 60)")
    s.set_defaults(handler=run_scheduler)


def run_worker(args: argparse.Namespace) -> int:
    from worker.celery import app
    from tasks import support_jobs
    from worker.destinations.table import QUEUES
    from worker.observe.logs import celery_console_to_log, configure
    from worker.observe.sentry import start as start_sentry
    from worker.commands.worker_pool import require_patched

    from worker.destinations.table import configured

    settings = Settings.from_env()
    require_patched(settings.worker_pool)  # gevent: patched by worker.cli.main before any import
    for destination in configured(settings):  # a missing credential stops the start, naming it
        settings.require_credentials(destination.name)
    configure(settings)
    # Before the worker starts: the Celery integration wraps the task tracer it builds.
    start_sentry(settings, celery=True)
    # LOG_FORMAT=json: every line JSON — no banner (Celery's --quiet), its shutdown notices as log lines.
    quiet = ["--quiet"] if settings.log_format == "json" else []
    if quiet:
        celery_console_to_log()
    argv = [
        *quiet, "worker", "--pool", settings.worker_pool,
        "--concurrency", str(args.concurrency or settings.worker_concurrency),
        "--queues", ",".join((*QUEUES, support_jobs.QUEUE)),  # and the desk's bulk jobs
        "--loglevel", args.loglevel or settings.log_level,
        "--hostname", args.name or f"relay-{os.getpid()}@%h",
        "--task-events",
    ]
    app.worker_main(argv)
    return 0


def run_scheduler(args: argparse.Namespace) -> int:
    from worker.celery import app
    from worker.observe.logs import configure
    from worker.delivery.relay import build_relay
    from tasks.publishing import celery_publisher
    from worker.scheduling.compaction import Compaction
    from worker.scheduling.fault_probes import fault_probe_grants
    from worker.scheduling.scheduler import Scheduler
    from worker.scheduling.stranded import StrandedSweep
    from worker.observe.probe_files import ProbeFiles
    from worker.store.heartbeats import Heartbeats, node_name

    settings = Settings.from_env()
    configure(settings)
    relay = build_relay(settings, sends=False, start_store=True)
    for name in [*relay.ledger.drop_legacy_keys(), *relay.dead_letters.drop_legacy_indexes()]:
        logging.getLogger("wms_relay.scheduler").info("removed %s (an earlier version's, unused now)", name)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def batches(destination: str):
        return relay.flow.batches(destination) if relay.flow.batched(destination) else None

    sweep = StrandedSweep(relay.ledger, relay.schedule, broker=relay.redis, clock=relay.clock,
                          after_seconds=settings.stranded_after_seconds, batches=batches)
    from worker.destinations.table import configured

    jobs = [job for d in configured(settings)
            if (job := d.housekeeping(settings, redis=relay.redis, clock=relay.clock)) is not None]
    beats, name = Heartbeats(relay.redis, relay.clock), node_name("scheduler")
    jobs.append(fault_probe_grants(relay, name))  # a clock skew's probe: once a minute by this clock
    jobs.append(Compaction(relay.redis, detail_hours=settings.settled_detail_hours, clock=relay.clock))
    jobs.append(_bulk_job_resumer(app, relay))  # the desk's bulk jobs a dead worker left: published again
    files = ProbeFiles(settings.var_dir, "scheduler", name)  # `wms-relay health scheduler --liveness`

    def heartbeat() -> None:
        beats.beat("scheduler", name)
        files.ready()  # only once the store took the beat

    Scheduler(relay.schedule, celery_publisher(app, relay.clock), clock=relay.clock, sweep=sweep.sweep,
              sweep_interval=args.sweep_interval, housekeeping=jobs, heartbeat=heartbeat, alive=files.alive,
              purge=lambda: purge_closed_letters(relay, settings)).run(stop, interval=args.interval)
    files.leave()
    try:
        beats.leave("scheduler", name)
    except Exception as exc:  # noqa: BLE001 — the store is gone: the beat goes stale on its own
        logging.getLogger("wms_relay.scheduler").warning("heartbeat not removed (%s)", exc)
    return 0


def _bulk_job_resumer(app, relay):
    """The scheduler's chore for the desk's bulk jobs (worker.support.bulk_jobs.resume_interrupted)."""
    from tasks.support_jobs import QUEUE, TASK
    from worker.store.bulk_jobs import BulkJobStore
    from worker.support.bulk_jobs import resume_interrupted

    store = BulkJobStore(relay.redis, relay.clock)

    def resume_bulk_jobs() -> int:
        return resume_interrupted(store, lambda args: app.send_task(TASK, args=args, queue=QUEUE),
                                  relay.clock())

    return resume_bulk_jobs


def purge_closed_letters(relay, settings: Settings) -> int:
    """The scheduler's retention chore: delete dead letters closed more than DEAD_LETTER_RETENTION_DAYS
    ago (0: keep them)."""
    if settings.dead_letter_retention_days <= 0:
        return 0
    cutoff = relay.clock() - settings.dead_letter_retention_days * 86400.0
    purged = relay.dead_letters.purge_closed(cutoff)
    if purged:
        logging.getLogger("wms_relay.scheduler").info(
            "retention: deleted %d dead letters closed more than %g days ago", len(purged),
            settings.dead_letter_retention_days)
    return len(purged)
