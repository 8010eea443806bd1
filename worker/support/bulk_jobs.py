"""The desk's actions on many targets at once ("all 40,000 matching"), as jobs any worker runs and any desk
shows: one support action per target (``worker.support.actions``: atomic, audited — a target someone else
settled meanwhile is skipped with that person's name, as in the CLI), progress kept in the store
(``worker.store.bulk_jobs``).

- :func:`start_job` writes the job (who, what, why, the targets) and publishes its task
  (``tasks.support_jobs``) on the worker's support queue; a small one (``inline``) is run at once by the
  caller instead, so the page that started it answers with the result.
- :func:`run_slice` is what the task does: it claims the job (one worker at a time: a lease in the store),
  works through targets from where the job stands, recording each report as it goes, for at most
  ``SLICE_SECONDS`` — then lets the job go and publishes it again, so no task holds a worker (or its warm
  shutdown) for long, and a redelivered message finds the job where the last slice left it.
- A worker killed mid-slice leaves a lapsed lease: the job shows as *interrupted*.  It goes on when its
  message is delivered again (Celery on Redis redelivers an unacknowledged message after the visibility
  timeout) or when the scheduler publishes it again (:func:`resume_interrupted`, once its lease is
  :func:`resume_after` overdue) — from the target after the last one recorded.  The target a killed
  worker was acting on may have been acted on: acted on again, never twice — a letter that worker closed
  is counted done (below), anything else someone settled is skipped with their name.

**Every item in the audit log exactly once, whenever a worker dies.**  Each action is called with its
``job_item`` (``job <id> #<index>``).  A dead letter's retry or discard — the one store change that is the
action — appends its audit entry in the letter's own close script and marks the letter ``closed_in`` that
item; every other report's entry goes into the store in the same script as the item's progress record
(``BulkJobStore.advance``).  So a worker killed between the action and its progress record leaves either
nothing done, or a letter closed with its entry in: the worker that takes the job over acts on that item
again, finds the letter closed by this very item and records it done without a second entry (a retry
whose worker died after the take but before the ledger heard of it — the event still dead there, this
letter still its newest — goes on from the take).  Why not the
other way round (the resume writing the entries its dead holder did not): the taker-over cannot tell from
the store which of "done by the dead worker" and "done by someone else meanwhile" happened unless the
action itself marks it — and a mark written with the action is as cheap as the entry itself.  Left as
before: the ledger and schedule actions (resolve, run now, discard a retry) done by a worker that then died
before its progress record are found settled by the taker-over and logged skipped (their scripts are the
delivery path's; the ledger history keeps who did it).

The lease (``DESK_JOB_LEASE_SECONDS``, default 20 s) is the worker's setting; each claim keeps its length in
the job, so the scheduler publishes a job again half a lease after its claim lapsed (10 s by default)
without knowing the workers' settings.
"""
from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from typing import Callable, Sequence

from tasks.support_jobs import job_message
from worker.destinations.table import split_delivery_ref
from worker.store.bulk_jobs import BulkJobStore, JobRecord
from worker.support.actions import (
    FAILED, ActionReport, SupportTools, discard_letter, discard_retry, resolve_uncertain, retry_letter,
    run_retry_now,
)

log = logging.getLogger("wms_relay.jobs")

INLINE_LIMIT = 50
SLICE_SECONDS = 10.0
# A claim lasts this long past the last target recorded: longer than any one support action takes (a
# publish gives up after 30 s only when the broker stalls — then another worker may go on, and this one's
# next record is refused: the action itself is atomic).
LEASE_SECONDS = 20.0  # the default of the setting DESK_JOB_LEASE_SECONDS
# The scheduler publishes an unfinished job again this long after its claim lapsed (or its last publish):
# half the lease its last worker claimed it with (this, for the default lease).
RESUME_AFTER_SECONDS = LEASE_SECONDS / 2


def resume_after(job: JobRecord) -> float:
    """How long after its claim lapsed the scheduler publishes ``job`` again: half its last lease."""
    return (job.lease_seconds or LEASE_SECONDS) / 2


def _resolve(delivered: bool) -> Callable[..., ActionReport]:
    def act(tools: SupportTools, ref: str, *, actor: str, reason: str, job_item: str) -> ActionReport:
        found = split_delivery_ref(ref)
        if found is None:
            return ActionReport(ref, FAILED, "not a delivery ref", "wms-relay uncertain list")
        destination, operation, key = found
        return resolve_uncertain(tools, operation, key, delivered=delivered, actor=actor, reason=reason,
                                 destination=destination.name, job_item=job_item)

    return act


# What a job may do to each target: the support action, called as act(tools, target, actor=, reason=,
# job_item=).
ACTIONS: dict[str, Callable[..., ActionReport]] = {
    "retry": lambda tools, t, *, actor, reason, job_item: retry_letter(
        tools, t, actor=actor, reason=reason, job_item=job_item),
    "discard": lambda tools, t, *, actor, reason, job_item: discard_letter(
        tools, t, actor=actor, reason=reason, job_item=job_item),
    "run now": lambda tools, t, *, actor, reason, job_item: run_retry_now(
        tools, t, actor=actor, job_item=job_item),
    "discard retry": lambda tools, t, *, actor, reason, job_item: discard_retry(
        tools, t, actor=actor, reason=reason, job_item=job_item),
    "resolve: delivered": _resolve(True),
    "resolve: resend": _resolve(False),
}


def new_job_id() -> str:
    return secrets.token_hex(8)


def start_job(tools: SupportTools, jobs: BulkJobStore, publish_job: Callable[[list], None], *, action: str,
              actor: str, targets: Sequence[str], reason: str = "", inline: bool | None = None) -> str:
    """Write the job and publish its task (or, ``inline`` — default: up to INLINE_LIMIT targets — run it
    here and now); returns its id.  ``publish_job(args)`` publishes the job task with ``args``."""
    if action not in ACTIONS:
        raise ValueError(f"no bulk action {action!r} (known: {', '.join(ACTIONS)})")
    if not targets:
        raise ValueError("a job needs at least one target")
    job_id = new_job_id()
    jobs.create(job_id, action=action, actor=actor, via=tools.via, params={"reason": reason},
                targets=list(targets))
    if inline if inline is not None else len(targets) <= INLINE_LIMIT:
        run_slice(tools, jobs, job_id, owner=f"{tools.via}-{os.getpid()}-{threading.get_ident()}",
                  seconds=float("inf"))
    else:
        publish(jobs, publish_job, job_id)
    return job_id


def publish(jobs: BulkJobStore, publish_job: Callable[[list], None], job_id: str) -> bool:
    """Publish the job's task; False (logged) when the broker refused: the scheduler publishes it later."""
    try:
        publish_job(job_message(job_id))
    except Exception as exc:  # noqa: BLE001 — any broker failure: the job waits for resume_interrupted
        log.warning("job %s not published (%s: %s): the scheduler will", job_id, type(exc).__name__, exc)
        return False
    jobs.mark_published(job_id)
    return True


def run_slice(tools: SupportTools, jobs: BulkJobStore, job_id: str, *, owner: str,
              seconds: float = SLICE_SECONDS, clock: Callable[[], float] = time.monotonic,
              lease_seconds: float = LEASE_SECONDS) -> str:
    """Claim the job (for ``lease_seconds`` past each item recorded) and act on its targets for up to
    ``seconds``; returns "finished", "more" (let go, to be published again), or why nothing was done
    ("busy", "gone", "failed", "lost")."""
    verdict, position = jobs.claim(job_id, owner, lease_seconds)
    if verdict != "ok":
        return "finished" if verdict == "finished" else verdict
    job = jobs.get(job_id)
    act = ACTIONS.get(job.action) if job is not None else None
    if act is None:
        jobs.release(job_id, owner, failed=f"no bulk action {job.action if job else '?'!r}")
        return "failed"
    reason = job.params.get("reason") or ""
    deadline = clock() + seconds
    index = int(position)
    while True:
        batch = jobs.targets(job_id, index, 100)
        if not batch:  # the list ended before ``total`` (it cannot, but never loop on it)
            jobs.release(job_id, owner, failed=f"its targets end at {index} of {job.total}")
            return "failed"
        for target in batch:
            report = act(tools, target, actor=job.actor, reason=reason, job_item=f"job {job_id} #{index}")
            said = jobs.advance(job_id, owner, index, report.status, report.to_dict(), lease_seconds,
                                audit=report.unwritten)
            if said == "finished":
                return "finished"
            if said == "lost":  # another worker took it over (this one was too slow): it goes on there
                log.warning("job %s: lost to another worker at target %d", job_id, index)
                return "lost"
            index += 1
            if clock() >= deadline:
                jobs.release(job_id, owner)
                return "more"


def resume_interrupted(jobs: BulkJobStore, publish_job: Callable[[list], None], now: float) -> int:
    """The scheduler's chore: publish again every unfinished job nobody works on — its claim lapsed, and
    neither the lapse nor its last publish nor its last progress is less than :func:`resume_after` ago —
    so no job is stuck because a worker died or a message was lost.  A spare copy is harmless: the claim
    lets one worker work."""
    resumed = 0
    for job in jobs.unfinished():
        quiet_since = max(job.lease_until, job.published_at or 0.0, job.updated_at)
        if job.lease_until < now and now - quiet_since >= resume_after(job):
            if publish(jobs, publish_job, job.job_id):
                log.info("job %s (%s by %s) published again at %d of %d", job.job_id, job.action,
                         job.actor, job.next, job.total)
                resumed += 1
    return resumed


def state_in_words(job: JobRecord, now: float, workers_alive: int) -> str:
    """What the job page says of where the job stands."""
    if job.state == "finished":
        return "finished"
    if job.state == "failed":
        return f"stopped: {job.error}"
    if job.interrupted(now):
        stopped = round(now - job.lease_until)
        alone = "" if workers_alive else " — no worker is alive now: start one"
        return (f"interrupted: the worker working on it stopped {stopped} s ago; it goes on from item "
                f"{job.next + 1} when a worker takes it up again (the scheduler publishes it within "
                f"{resume_after(job):g} s){alone}")
    if job.state == "queued" and not workers_alive:
        return "waiting for a worker: none is alive now (start one: `wms-relay worker`)"
    return "working" if job.state == "running" else "waiting for a worker to take it up"
