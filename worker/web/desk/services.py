"""What the desk's pages work with: the support workplace (the same stores and support actions as the
``wms-relay`` CLI, acting ``via="desk"``), the users file, the settings and the bulk jobs.  Every import
of the relay's own modules that the pages need is made here (and in ``signing_view``), so a
reorganisation of ``worker/`` is ported in two places."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

# The support layer, shared with the CLI: one implementation of every action and every view (the read
# models live in worker/support/, never in worker/commands/: the desk imports no command module).
from worker.encoding import iso_time, split_event_ref  # noqa: F401
from worker.store.audit_log import AuditFilter  # noqa: F401
from worker.store.dead_letter_search import (  # noqa: F401
    LetterQuery, all_matching_ids, has_identifier, search, search_walk,
)
from worker.store.ledger import FINAL_STATES, OPEN_STATES  # noqa: F401
from worker.store.sign_ins import FAILURE_WINDOW as SIGN_IN_FAILURE_WINDOW, SignIns  # noqa: F401
from worker.support.actions import (  # noqa: F401
    DONE, FAILED, SKIPPED, ActionReport, discard_letter, discard_retry, find_letter, resolve_uncertain,
    retry_letter, run_retry_now, tally,
)
from worker.support.dispatch_ids import (  # noqa: F401
    Refused as DispatchIdRefused, set_dispatch_id, unknown_id_of,
)
from worker.support.event_view import (  # noqa: F401
    describe, next_step, timeline, unmapped_artno, with_liveness,
)
from worker.support.retry_view import scheduled  # noqa: F401
from worker.support.status_report import collect, needs_a_person  # noqa: F401
from worker.support.status_words import configuration_line, flow_line, report_now  # noqa: F401
from worker.support.workplace import Workplace, workplace  # noqa: F401
from worker.web.desk.config import DeskSettings
from worker.web.desk.jobs import DeskJobs
from worker.web.desk.users import UsersFile


@dataclass
class DeskServices:
    place: Workplace  # acting via="desk"
    users: UsersFile
    settings: DeskSettings
    # publish_job(args): publishes the bulk job task (tasks.support_jobs); default: with the place's app
    publish_job: Callable[[list], None] | None = None

    @cached_property
    def jobs(self) -> DeskJobs:
        """The bulk jobs: kept in the store, run by the workers, shown by any desk process."""
        publish = self._publish_with_app if self.publish_job is None else self.publish_job
        return DeskJobs(self.tools, self.redis, publish, self.now)

    def _publish_with_app(self, args: list) -> None:
        from tasks.support_jobs import QUEUE, TASK

        self.place.app.send_task(TASK, args=args, queue=QUEUE)

    @property
    def relay(self):
        return self.place.relay

    @property
    def tools(self):
        """The SupportTools: the actions' stores, publisher and audit log."""
        return self.place.tools

    @property
    def redis(self):
        return self.place.relay.redis

    def now(self) -> float:
        return self.place.relay.clock()

    @cached_property
    def sign_ins(self) -> SignIns:
        """The sign-in limits and counts (names kept as HMACs under the desk's session key)."""
        return SignIns(self.redis, self.settings.secret_key, clock=self.now)

    def audit(self, *, actor: str, action: str, message: str = "", target: str = "") -> None:
        """Record a desk event that is not a support action (sign-in, sign-out)."""
        self.tools.audit.record(actor=actor, action=action, message=message, target=target, status="done",
                                via="desk")

    def status_report(self) -> dict:
        """``wms-relay status``'s report: the workers and the scheduler come from their heartbeats in the
        store (no ping over the broker, so no page waits for one)."""
        return collect(self.place)
