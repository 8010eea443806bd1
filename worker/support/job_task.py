"""The desk's bulk job as a Celery task (``tasks.support_jobs``: its name, its queue, its one argument):
each run is one slice of the job (``worker.support.bulk_jobs.run_slice``) with this worker's stores and
publisher, acting as the desk acted (``via="desk"``, the person who started it as the actor); a job with
more to do is published again at the end of its slice.

The worker's app loads this module (``worker.celery``: ``include``), so ``wms-relay worker`` and ``celery
-A worker worker`` both run jobs."""
from __future__ import annotations

import os
import threading
import uuid

from tasks.support_jobs import QUEUE, TASK
from worker.celery import app


def _publish_job(args: list) -> None:
    app.send_task(TASK, args=args, queue=QUEUE)


@app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=0, typing=False)
def run_bulk_job(self, /, *args, **kwargs) -> str:
    from tasks.support_jobs import argument_problem
    from worker.delivery.relay import process_relay
    from worker.store.audit_log import AuditLog
    from worker.store.bulk_jobs import BulkJobStore
    from worker.support.actions import SupportTools
    from tasks.publishing import celery_publisher
    from worker.support.bulk_jobs import publish, run_slice

    problem = argument_problem(list(args), kwargs)
    if problem is not None:  # the screen lets none of these through; say so rather than fail
        return f"refused: {problem}"
    job_id = args[0]["job_id"]
    relay = process_relay()
    tools = SupportTools(ledger=relay.ledger, dead_letters=relay.dead_letters, schedule=relay.schedule,
                         publish=celery_publisher(app), dispatch_waiters=relay.dispatch_waiters,
                         clock=relay.clock, audit=AuditLog(relay.redis, relay.clock), via="desk")
    jobs = BulkJobStore(relay.redis, relay.clock)
    owner = f"{os.getpid()}:{threading.get_ident()}:{self.request.id or 'direct'}:{uuid.uuid4().hex[:8]}"
    outcome = run_slice(tools, jobs, job_id, owner=owner, lease_seconds=relay.settings.desk_job_lease_seconds)
    if outcome == "more":
        publish(jobs, _publish_job, job_id)
    return outcome
