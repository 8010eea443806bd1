"""The desk's side of the bulk jobs (``worker.support.bulk_jobs``): start one, and read one back — from any
desk process, since the job, its progress and its reports are in the store and the workers run it.

A small selection (up to ``INLINE_LIMIT`` targets) is done before the page answers; a larger one is
published on the worker's support queue and its page (``/jobs/<id>``) refreshes itself while a worker
works through it.  A desk process that stops (or a replica that did not start it) changes nothing: the job
goes on, and any desk shows its progress.  The audit log keeps every single action for good."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from worker.store.bulk_jobs import BulkJobStore, JobRecord
from worker.store.heartbeats import Heartbeats
from worker.support.bulk_jobs import start_job, state_in_words


@dataclass(frozen=True)
class JobView:
    """What the job page shows: the record, where it stands in words, the reports kept (the first 500)."""

    record: JobRecord
    said: str
    reports: list

    def __getattr__(self, name: str):  # the page reads the record's fields (total, counts, action...)
        return getattr(self.record, name)

    @property
    def interrupted(self) -> bool:
        return self.said.startswith("interrupted")


class DeskJobs:
    """Bulk jobs as the desk starts and shows them: ``tools`` act (via="desk"), ``publish_job(args)``
    publishes the job task (``tasks.support_jobs``) with the desk's publisher app."""

    def __init__(self, tools, redis_client, publish_job: Callable[[list], None], clock) -> None:
        self._tools = tools
        self._redis = redis_client
        self._store = BulkJobStore(redis_client, clock)
        self._publish_job = publish_job
        self._clock = clock

    def run(self, action: str, actor: str, targets: Sequence[str], *, reason: str = "") -> str:
        """Start a job (done now when small); its id."""
        return start_job(self._tools, self._store, self._publish_job, action=action, actor=actor,
                         targets=targets, reason=reason)

    def record(self, action: str, actor: str, report) -> str:
        """Keep an action already done on one target (its ActionReport) as a finished job, so its page
        reads like any other job's (the dispatch id form); its id."""
        from worker.support.bulk_jobs import LEASE_SECONDS, new_job_id

        job_id, owner = new_job_id(), f"desk-record-{report.target}"
        self._store.create(job_id, action=action, actor=actor, via="desk", params={}, targets=[report.target])
        self._store.claim(job_id, owner, LEASE_SECONDS)
        self._store.advance(job_id, owner, 0, report.status, report.to_dict(), LEASE_SECONDS)
        return job_id

    def resume(self, job_id: str) -> bool:
        """Publish an unfinished job's task again (a person pressed "Go on")."""
        from worker.support.bulk_jobs import publish

        job = self._store.get(job_id)
        return job is not None and not job.finished and publish(self._store, self._publish_job, job_id)

    def get(self, job_id: str) -> JobView | None:
        record = self._store.get(job_id)
        if record is None:
            return None
        now = self._clock()
        alive = len(Heartbeats(self._redis, self._clock).alive("worker"))
        from worker.support.actions import ActionReport

        reports = [ActionReport(**report) for report in self._store.reports(job_id)]
        return JobView(record, state_in_words(record, now, alive), reports)

    def recent(self, limit: int = 20) -> list[JobRecord]:
        return self._store.recent(limit)
