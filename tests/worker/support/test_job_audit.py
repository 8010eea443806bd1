"""A desk bulk job's items in the audit log exactly once, whatever moment its worker dies at
(worker.support.bulk_jobs, "Every item in the audit log exactly once"): a dead letter's close appends the
entry in its own script; every other report's entry goes in with the item's progress record; a taken-over
item its dead worker closed is done, not skipped, and not logged twice.

The worker's death is the one thing played here: its action is called, its progress record is not (what a
SIGKILL between the two leaves); tests/integration/test_desk_bulk_jobs.py kills a real worker."""
from __future__ import annotations

import pytest

from tests.worker.support.test_actions import Published, ScriptedTrademax, refused_receipt
from worker.delivery.relay import build_relay
from worker.settings import Settings
from worker.store.audit_log import AuditLog
from worker.store.bulk_jobs import BulkJobStore
from worker.store.requests import replayable
from worker.support.actions import DONE, SKIPPED, SupportTools, discard_letter, retry_letter
from worker.support.bulk_jobs import ACTIONS, LEASE_SECONDS, resume_after, resume_interrupted, run_slice


@pytest.fixture
def relay(store_client, clock):
    return build_relay(Settings(), redis_client=store_client, client=ScriptedTrademax(), clock=clock,
                       sends=False)


@pytest.fixture
def tools(relay, clock):
    return SupportTools(ledger=relay.ledger, dead_letters=relay.dead_letters, schedule=relay.schedule,
                        publish=Published(), dispatch_waiters=relay.dispatch_waiters, clock=clock,
                        audit=AuditLog(relay.redis, clock), via="desk")


def entries(tools) -> list[tuple[str, str, str, str]]:
    """(actor, action, target, status) of every audit entry, oldest first."""
    return [(e.actor, e.action, e.target, e.status) for e in reversed(tools.audit.page(limit=1000)[0])]


def job_of(relay, clock, action: str, targets: list[str]) -> tuple[BulkJobStore, str]:
    jobs = BulkJobStore(relay.redis, clock)
    jobs.create("j1", action=action, actor="olga", via="desk", params={"reason": "duplicates"},
                targets=targets)
    return jobs, "j1"


@pytest.mark.parametrize("action,act,status", [("discard", discard_letter, "discarded"),
                                               ("retry", retry_letter, "retried")])
def test_a_letter_closed_by_a_worker_that_died_before_recording_it_is_done_once_in_the_log(
        relay, tools, clock, action, act, status):
    letters = [refused_receipt(relay, f"R-{n}") for n in range(3)]
    jobs, job_id = job_of(relay, clock, action, letters)
    assert jobs.claim(job_id, "w1", LEASE_SECONDS)[0] == "ok"
    # w1 acts on item 0 and is killed before its progress record: the letter is closed, its entry is in.
    assert act(tools, letters[0], actor="olga", reason="duplicates", job_item=f"job {job_id} #0").audited
    assert relay.dead_letters.get(letters[0]).status == status
    assert entries(tools) == [("olga", action, letters[0], DONE)]
    clock.advance(LEASE_SECONDS + resume_after(jobs.get(job_id)))
    assert run_slice(tools, jobs, job_id, owner="w2") == "finished"  # the worker that takes it over
    job = jobs.get(job_id)
    assert job.counts == {"done": 3, "skipped": 0, "failed": 0}
    assert entries(tools) == [("olga", action, letter, DONE) for letter in letters]  # each once, in order
    assert "by this job before its worker stopped" in jobs.reports(job_id)[0]["message"]
    if action == "discard":
        assert relay.ledger.get("receipt.create", "R-0").state == "discarded"


def test_a_retry_whose_worker_died_between_the_take_and_the_ledger_goes_on_from_there(relay, tools, clock):
    letters = [refused_receipt(relay, f"R-{n}") for n in range(2)]
    jobs, job_id = job_of(relay, clock, "retry", letters)
    assert jobs.claim(job_id, "w1", LEASE_SECONDS)[0] == "ok"
    entry = tools.audit.pending(actor="olga", action="retry", target=letters[0], operation="receipt.create",
                                key="R-0", reason="duplicates", status=DONE, via="desk")
    # w1 takes item 0's letter (its entry with it) and is killed before it reopens the event in the ledger.
    assert relay.dead_letters.take(letters[0], actor="olga", reason="duplicates", audit=entry,
                                   job_item=f"job {job_id} #0") is not None
    assert relay.ledger.get("receipt.create", "R-0").state == "dead"
    clock.advance(LEASE_SECONDS + resume_after(jobs.get(job_id)))
    assert run_slice(tools, jobs, job_id, owner="w2") == "finished"
    assert jobs.get(job_id).counts == {"done": 2, "skipped": 0, "failed": 0}
    assert relay.ledger.get("receipt.create", "R-0").state != "dead"
    assert sorted(m["event"]["transaction_id"] for m in tools.publish) == ["R-0", "R-1"]
    assert entries(tools) == [("olga", "retry", letter, DONE) for letter in letters]


def test_a_retry_that_went_on_and_failed_again_is_not_retried_a_second_time(relay, tools, clock):
    from tests.worker.support.test_actions import example, refused, run

    (letter,) = [refused_receipt(relay, "R-0")]
    jobs, job_id = job_of(relay, clock, "retry", [letter])
    assert jobs.claim(job_id, "w1", LEASE_SECONDS)[0] == "ok"
    assert retry_letter(tools, letter, actor="olga", reason="duplicates", job_item=f"job {job_id} #0").audited
    # w1 dies before its progress record; meanwhile the retried event is refused again: a newer letter.
    assert run(relay, "receipt.create", example("receipt.create", transaction_id="R-0"), refused()) == "dead"
    assert relay.dead_letters.latest_for("receipt.create", "R-0").letter_id != letter
    clock.advance(LEASE_SECONDS + resume_after(jobs.get(job_id)))
    assert run_slice(tools, jobs, job_id, owner="w2") == "finished"
    assert jobs.get(job_id).counts["done"] == 1 and len(tools.publish) == 1  # not published a second time
    assert relay.ledger.get("receipt.create", "R-0").state == "dead"
    assert entries(tools) == [("olga", "retry", letter, DONE)]


def test_a_letter_someone_else_closed_meanwhile_is_skipped_and_logged_once_as_skipped(relay, tools, clock):
    letters = [refused_receipt(relay, f"R-{n}") for n in range(2)]
    jobs, job_id = job_of(relay, clock, "discard", letters)
    discard_letter(tools, letters[0], actor="bob", reason="mine")  # bob, from the CLI, no job
    assert run_slice(tools, jobs, job_id, owner="w1") == "finished"
    assert jobs.get(job_id).counts == {"done": 1, "skipped": 1, "failed": 0}
    assert entries(tools) == [("bob", "discard", letters[0], DONE), ("olga", "discard", letters[0], SKIPPED),
                              ("olga", "discard", letters[1], DONE)]


def test_another_items_close_of_the_letter_is_not_taken_for_this_items(relay, tools, clock):
    """Two jobs over one letter: the second finds it closed by the first job's item, not its own."""
    (letter,) = [refused_receipt(relay, "R-0")]
    jobs, _ = job_of(relay, clock, "discard", [letter])
    jobs.create("j2", action="discard", actor="olga", via="desk", params={"reason": "again"},
                targets=[letter])
    assert run_slice(tools, jobs, "j1", owner="w1") == "finished"
    assert run_slice(tools, jobs, "j2", owner="w2") == "finished"
    assert jobs.get("j2").counts["skipped"] == 1
    assert entries(tools) == [("olga", "discard", letter, DONE), ("olga", "discard", letter, SKIPPED)]


def test_a_report_without_a_close_goes_in_with_the_items_progress_record_and_only_with_it(
        relay, tools, clock):
    jobs, job_id = job_of(relay, clock, "run now", ["receipt.create:R-9", "receipt.create:R-8"])
    assert jobs.claim(job_id, "w1", LEASE_SECONDS)[0] == "ok"
    report = ACTIONS["run now"](tools, "receipt.create:R-9", actor="olga", reason="",
                                job_item=f"job {job_id} #0")
    assert report.status == SKIPPED and report.unwritten is not None
    assert entries(tools) == []  # handed to the job, not written yet: a kill here leaves nothing behind
    assert jobs.advance(job_id, "w0", 0, report.status, report.to_dict(), LEASE_SECONDS,
                        audit=report.unwritten) == "lost"  # not the owner: nothing recorded, no entry
    assert entries(tools) == []
    with replayable("advance-once"):  # the same call resent (a timeout): replayed, not appended twice
        assert jobs.advance(job_id, "w1", 0, report.status, report.to_dict(), LEASE_SECONDS,
                            audit=report.unwritten) == "ok"
    with replayable("advance-once"):
        assert jobs.advance(job_id, "w1", 0, report.status, report.to_dict(), LEASE_SECONDS,
                            audit=report.unwritten) == "ok"
    assert entries(tools) == [("olga", "run-now", "receipt.create:R-9", SKIPPED)]
    assert jobs.get(job_id).next == 1


def test_a_close_resent_after_a_timeout_appends_its_entry_once(relay, tools):
    letter = refused_receipt(relay, "R-0")
    entry = tools.audit.pending(actor="olga", action="discard", target=letter, status=DONE)
    for _ in range(2):  # the same call resent (redis-py after a timeout): replayed, not run twice
        with replayable("close-once"):
            closed = relay.dead_letters.discard(letter, actor="olga", reason="dup", audit=entry,
                                                job_item="j #0")
            assert closed is not None and closed.status == "discarded"
    assert entries(tools) == [("olga", "discard", letter, DONE)]
    assert relay.dead_letters.closed_in(letter) == "j #0"
    assert relay.dead_letters.discard(letter, actor="bob", reason="x", audit=entry) is None  # not open
    assert entries(tools) == [("olga", "discard", letter, DONE)]


def test_a_dry_run_in_the_cli_is_still_not_audited(relay, tools):
    letter = refused_receipt(relay, "R-0")
    assert discard_letter(tools, letter, actor="olga", reason="dup", dry_run=True).status == DONE
    assert retry_letter(tools, letter, actor="olga", dry_run=True).status == DONE
    assert entries(tools) == []


def test_the_lease_is_the_workers_and_the_scheduler_resumes_half_a_lease_after_it_lapsed(relay, tools, clock):
    letters = [refused_receipt(relay, f"R-{n}") for n in range(2)]
    jobs, job_id = job_of(relay, clock, "discard", letters)
    assert resume_after(jobs.get(job_id)) == LEASE_SECONDS / 2 == 10  # never claimed: the default's half
    assert jobs.claim(job_id, "w1", 4.0)[0] == "ok"  # a worker with DESK_JOB_LEASE_SECONDS=4, then killed
    assert jobs.get(job_id).lease_seconds == 4.0 and resume_after(jobs.get(job_id)) == 2.0
    published = []
    clock.advance(4.0 + 1.9)
    assert resume_interrupted(jobs, published.append, clock()) == 0
    clock.advance(0.2)
    assert resume_interrupted(jobs, published.append, clock()) == 1
