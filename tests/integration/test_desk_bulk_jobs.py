"""The desk's bulk jobs outlive the desk (issue 22.10), with real processes: a bulk retry of 120 dead letters
is started from one desk process, that desk is killed (SIGKILL) at once, another desk process is started,
and it shows the job's progress until a worker has finished it — every letter retried through the support
action (audited as done on the desk, by the person who started it) and delivered by the worker."""
from __future__ import annotations

import os
import re
import signal

import pytest

from benchmarks._harness import Desk
from tests.fixtures.desk_client import csrf_of, signed_in
from tests.fixtures.pipeline import make_pipeline, wait_until
from tests.worker.support.test_actions import ScriptedTrademax, example, refused
from worker.delivery.pipeline import deliver
from worker.delivery.relay import build_relay
from worker.settings import Settings
from worker.store.audit_log import AuditFilter, AuditLog

pytestmark = pytest.mark.integration
LETTERS = 120


def test_a_bulk_retry_goes_on_when_its_desk_dies_and_another_desk_shows_it(redis_server, sandbox, tmp_path):
    pipeline = make_pipeline(redis_server, sandbox(), tmp_path)
    relay = build_relay(Settings(redis_url=redis_server.url), redis_client=redis_server.client(), sends=False)
    relay.client = ScriptedTrademax(*[refused() for _ in range(LETTERS)])
    for n in range(LETTERS):
        event = example("receipt.create", transaction_id=f"R-BULK-{n}")
        assert deliver(relay, "receipt.create", event, owner="test") == "dead"
    from worker.web.desk.users import UsersFile

    UsersFile(tmp_path / "desk-users").add("olga", "operator", "olga-password-1")
    desk_env = {**pipeline.env, "DESK_USERS_FILE": str(tmp_path / "desk-users"), "DESK_SECRET_KEY": "s" * 40}
    first = second = None
    try:
        pipeline.start_scheduler()
        pipeline.start_worker()
        first = Desk(desk_env, tmp_path / "desk-1.log")
        person = signed_in(first.url, "olga", "olga-password-1")
        token = csrf_of(person.get(first.url + "dead-letters", timeout=30).text)
        started = person.post(first.url + "dead-letters/act", timeout=60, allow_redirects=False, data={
            "csrf_token": token, "action": "retry", "all_matching": "1", "status": "open", "q": "",
            "operation": "", "destination": "", "reason": "", "age": "", "why": "Trademax fixed order_type"})
        assert started.status_code == 303, started.text[:500]
        job_path = started.headers["Location"].split("/", 3)[-1] if "://" in started.headers["Location"] \
            else started.headers["Location"].lstrip("/")
        os.killpg(first.process.pid, signal.SIGKILL)  # the desk that started it is gone
        first.process.wait(timeout=30)

        second = Desk(desk_env, tmp_path / "desk-2.log")
        other = signed_in(second.url, "olga", "olga-password-1")
        seen = []

        def finished():
            page = re.sub(r"\s+", " ", other.get(second.url + job_path, timeout=30).text)
            seen.append(page)
            return "120 done, 0 skipped, 0 failed." in page and 'data-state="finished"' in page

        wait_until(finished, 120, "the job to finish, as the second desk shows it")
        assert "Started by olga" in seen[-1]
        assert relay.dead_letters.count() == 0
        for n in (0, LETTERS - 1):
            pipeline.wait_for_state("receipt.create", f"R-BULK-{n}", "delivered")
        audit = AuditLog(relay.redis).page(AuditFilter(actor="olga", action="retry"), limit=500)[0]
        assert len(audit) == LETTERS and {(e.via, e.status) for e in audit} == {("desk", "done")}
    finally:
        for desk in (first, second):
            if desk is not None:
                desk.stop()
        pipeline.stop()
