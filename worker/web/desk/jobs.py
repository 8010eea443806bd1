"""Actions on many targets at once ("all 40,000 matching"): a job that works through them one support
action at a time, in a thread of the desk process, so the page that started it can show progress instead
of waiting minutes for an answer.  Small selections (``INLINE_LIMIT``) run before the page answers.

Each target is one call of the same support action the CLI uses; a target someone else settled meanwhile
is skipped with that person's name, as in the CLI.  Jobs live in the desk process that runs them (the
last ``KEPT`` of them); the audit log keeps every single action for good."""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Sequence

INLINE_LIMIT = 50
SHOWN = 500  # reports kept to show (the counts cover every target)
KEPT = 50


@dataclass
class BulkJob:
    job_id: str
    action: str
    actor: str
    total: int
    dry_run: bool = False
    reports: list = field(default_factory=list)  # the support actions' ActionReports, first SHOWN
    counts: dict = field(default_factory=lambda: {"done": 0, "skipped": 0, "failed": 0})
    finished: bool = False
    error: str = ""
    started_at: float = field(default_factory=time.time)

    @property
    def processed(self) -> int:
        return sum(self.counts.values())

    def take(self, report) -> None:
        self.counts[report.status] += 1
        if len(self.reports) < SHOWN:
            self.reports.append(report)


class BulkJobs:
    def __init__(self) -> None:
        self._jobs: "OrderedDict[str, BulkJob]" = OrderedDict()
        self._lock = threading.Lock()

    def run(self, action: str, actor: str, targets: Sequence[str], act: Callable, *,
            dry_run: bool = False) -> BulkJob:
        """Act on every target: at once when there are few, else in a background thread."""
        job = BulkJob(secrets.token_hex(8), action, actor, len(targets), dry_run=dry_run)
        with self._lock:
            self._jobs[job.job_id] = job
            while len(self._jobs) > KEPT:
                self._jobs.popitem(last=False)
        if len(targets) <= INLINE_LIMIT:
            self._work(job, targets, act)
        else:
            threading.Thread(target=self._work, args=(job, list(targets), act), daemon=True,
                             name=f"desk-job-{job.job_id}").start()
        return job

    @staticmethod
    def _work(job: BulkJob, targets: Sequence[str], act: Callable) -> None:
        try:
            for target in targets:
                job.take(act(target))
        except Exception as exc:  # noqa: BLE001 — Redis went away mid-job: the page says where it stopped
            job.error = f"stopped after {job.processed} of {job.total}: {type(exc).__name__}: {exc}"
        finally:
            job.finished = True

    def get(self, job_id: str) -> BulkJob | None:
        with self._lock:
            return self._jobs.get(job_id)
