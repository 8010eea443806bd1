"""The desk's bulk jobs outlive the desk (issue 22.10), with real processes: a bulk retry of 120 dead letters
is started from one desk process, that desk is killed (SIGKILL) at once, another desk process is started,
and it shows the job's progress until a worker has finished it — every letter retried through the support
action (audited as done on the desk, by the person who started it) and delivered by the worker."""
from __future__ import annotations

import os
import re
import signal
from collections import Counter

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
LEASE = 3.0  # DESK_JOB_LEASE_SECONDS for the kill test's workers


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


def test_a_job_whose_worker_is_killed_shows_as_interrupted_and_goes_on_where_it_stopped(
        redis_server, sandbox, tmp_path):
    """A bulk discard of 3,000 letters; the worker running it is SIGKILLed mid-job: the page says
    interrupted and from which item it goes on; the scheduler publishes it again and a new worker finishes
    it — every letter discarded once, and in the audit log exactly once, as done by olga (3,000 entries,
    none skipped, none failed), whatever moment the kill came at.  The workers hold the job for
    DESK_JOB_LEASE_SECONDS=3 (the default, 20, only makes the test wait longer for the lapse)."""
    from worker.destinations.table import delivery_ref
    from worker.store.bulk_jobs import BulkJobStore
    from worker.store.dead_letters import DeadLetters

    total = 3000
    pipeline = make_pipeline(redis_server, sandbox(), tmp_path, DESK_JOB_LEASE_SECONDS=str(LEASE))
    client = redis_server.client()
    letters = DeadLetters(client, delivery_ref=delivery_ref)
    for n in range(total):
        letters.add("receipt.create", f"R-{n}", {"transaction_id": f"R-{n}"}, "permanent", ["refused"])
    from worker.web.desk.users import UsersFile

    UsersFile(tmp_path / "desk-users").add("olga", "operator", "olga-password-1")
    desk = None
    try:
        pipeline.start_scheduler()
        worker = pipeline.start_worker()
        desk = Desk({**pipeline.env, "DESK_USERS_FILE": str(tmp_path / "desk-users")}, tmp_path / "desk.log")
        person = signed_in(desk.url, "olga", "olga-password-1")
        token = csrf_of(person.get(desk.url + "dead-letters", timeout=30).text)
        started = person.post(desk.url + "dead-letters/act", timeout=120, allow_redirects=False, data={
            "csrf_token": token, "action": "discard", "all_matching": "1", "status": "open", "q": "",
            "operation": "", "destination": "", "reason": "", "age": "", "why": "duplicates"})
        job_id = started.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
        jobs = BulkJobStore(client)
        wait_until(lambda: (job := jobs.get(job_id)) and job.processed >= 50, 60, "the job to be under way",
                   interval=0.02)
        pipeline.kill(worker)  # SIGKILL, mid-job
        at_kill = jobs.get(job_id)
        assert not at_kill.finished, "the job finished before the worker was killed: make it longer"
        assert at_kill.lease_seconds == LEASE
        # Whether the kill came between a letter's discard and its progress record (that letter closed,
        # not counted): the case the audit log used to lose (or double) an entry in.
        print(f"killed at item {at_kill.next}: {total - letters.count() - at_kill.processed} letter(s) "
              "closed beyond the progress record")

        def said():
            return re.sub(r"\s+", " ", person.get(desk.url + f"jobs/{job_id}", timeout=30).text)

        page = wait_until(lambda: "Interrupted: the worker working on it stopped" in (p := said()) and p, 60,
                          "the page to say the job was interrupted")
        assert f"it goes on from item {at_kill.next + 1} " in page
        assert jobs.get(job_id).processed == at_kill.processed  # nothing moved meanwhile

        pipeline.start_worker()
        wait_until(lambda: jobs.get(job_id).finished, 120, "a new worker to finish the job")
        assert letters.count() == 0
        audit = AuditLog(client).page(AuditFilter(action="discard"), limit=total + 10)[0]
        per_letter = Counter((entry.target, entry.actor, entry.status, entry.via) for entry in audit)
        # Every letter's discard in the log once — none missing (a kill between the discard and a separate
        # audit write), none twice (the resumed job finding it discarded and logging that too).
        assert {target for target, *_ in per_letter} == {f"dl-{n}" for n in range(1, total + 1)}
        assert len(audit) == total and set(per_letter.values()) == {1}
        assert {(actor, status, via) for _, actor, status, via in per_letter} == {("olga", "done", "desk")}
        job = jobs.get(job_id)  # the letter the killed worker had discarded counts done, not skipped
        assert job.state == "finished" and job.counts == {"done": total, "skipped": 0, "failed": 0}
        assert 'data-state="finished"' in said()
    finally:
        if desk is not None:
            desk.stop()
        pipeline.stop()
