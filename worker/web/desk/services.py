"""What the desk's pages work with: the support workplace (the same stores and support actions as the
``wms-relay`` CLI, acting ``via="desk"``), the users file, the settings, a background view of the workers
that answer, and the bulk jobs.  Every import of the relay's own modules that the pages need is made here
(and in ``signing_view``), so a reorganisation of ``worker/`` is ported in two places."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

# The support layer, shared with the CLI: one implementation of every action and every view.
from worker.commands.event import next_step, timeline  # noqa: F401
from worker.commands.retries import scheduled  # noqa: F401
from worker.commands.status import collect, needs_a_person, workers_seen  # noqa: F401
from worker.encoding import iso_time, split_event_ref  # noqa: F401
from worker.store.audit_log import AuditFilter  # noqa: F401
from worker.store.dead_letter_search import (  # noqa: F401
    LetterQuery, all_matching_ids, has_identifier, search, search_walk,
)
from worker.store.ledger import FINAL_STATES, OPEN_STATES  # noqa: F401
from worker.support.actions import (  # noqa: F401
    DONE, FAILED, SKIPPED, ActionReport, discard_letter, discard_retry, find_letter, resolve_uncertain,
    retry_letter, run_retry_now, tally,
)
from worker.support.desk import Workplace, workplace  # noqa: F401
from worker.support.event_view import describe  # noqa: F401
from worker.web.desk.config import DeskSettings
from worker.web.desk.jobs import BulkJobs
from worker.web.desk.users import UsersFile

PING_EVERY_SECONDS = 15.0
PING_TIMEOUT_SECONDS = 1.0


class WorkerWatch:
    """Which workers answer a ping, asked in the background every ``every`` seconds, so no page waits
    for the ping's timeout.  None until the first answer is in."""

    def __init__(self, celery_app, every: float = PING_EVERY_SECONDS) -> None:
        self._app, self._every = celery_app, every
        self._seen: list[str] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="desk-worker-watch", daemon=True)

    def start(self) -> "WorkerWatch":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._seen = workers_seen(self._app, PING_TIMEOUT_SECONDS)
            self._stop.wait(self._every)

    def __call__(self) -> list[str] | None:
        return self._seen


@dataclass
class DeskServices:
    place: Any  # worker.support.desk.Workplace, acting via="desk"
    users: UsersFile
    settings: DeskSettings
    workers: Callable[[], list[str] | None]
    jobs: BulkJobs = field(default_factory=BulkJobs)

    @property
    def relay(self):
        return self.place.relay

    @property
    def desk(self):
        """The SupportDesk: the actions' stores, publisher and audit log."""
        return self.place.desk

    @property
    def redis(self):
        return self.place.relay.redis

    def now(self) -> float:
        return self.place.relay.clock()

    def audit(self, *, actor: str, action: str, message: str = "", target: str = "") -> None:
        """Record a desk event that is not a support action (sign-in, sign-out)."""
        self.desk.audit.record(actor=actor, action=action, message=message, target=target, status="done",
                               via="desk")

    def status_report(self) -> dict:
        """``wms-relay status``'s report, with the workers seen by the background ping."""
        return collect(self.place, PING_TIMEOUT_SECONDS, workers=self.workers() or [])


def wait_for_first_ping(watch: WorkerWatch, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while watch() is None and time.monotonic() < deadline:
        time.sleep(0.05)
