"""The support queue's contract: a desk's bulk job ("retry all 40,000 matching") travels as the task
:data:`TASK` on the queue :data:`QUEUE`, which the worker consumes beside the delivery queues, with one
argument, ``{"job_id": "<hex>"}``: what to do and to which targets is in the store (``wms:job:<id>``,
``worker.store.bulk_jobs``), never in the message.  ``worker.support.job_task`` registers the task;
``worker.broker.celery_config`` declares the queue and routes the task; ``tasks.raw_messages`` screens what
arrives there.  Pure: names and the argument's check, nothing else."""
from __future__ import annotations

import re
from typing import Any

QUEUE = "support.jobs"
TASK = "support.bulk_job"
_JOB_ID = re.compile(r"^[0-9a-f]{16}$")


def job_message(job_id: str) -> list:
    """The task's arguments for job ``job_id``."""
    return [{"job_id": job_id}]


def argument_problem(args: Any, kwargs: Any) -> str | None:
    """Why ``args``/``kwargs`` are not the job task's one argument, or None when they are."""
    if kwargs or not (isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict)
                      and set(args[0]) == {"job_id"}):
        return f'{TASK} takes exactly one argument, {{"job_id": "<16 hex digits>"}}'
    if not (isinstance(args[0]["job_id"], str) and _JOB_ID.match(args[0]["job_id"])):
        return f"{TASK}'s job_id must be 16 lower-case hex digits"
    return None
