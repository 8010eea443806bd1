"""The desk's bulk jobs (worker.support.bulk_jobs over worker.store.bulk_jobs): one worker at a time works
on a job, a target is counted once, a job goes on from where it stopped, an interrupted one shows so and is
published again by the scheduler's chore; the desk publishes a large selection as a task on the support
queue and shows its progress from the store; the raw-message screen knows the job task and its queue."""
from __future__ import annotations

import base64
import json
import re
import time

from tests.fixtures.clock import Clock
from tests.worker.web.desk.test_desk_actions import dead_receipt, form_token
from tasks import support_jobs
from tasks.raw_messages import Malformed, Passed, screen
from worker.store.bulk_jobs import BulkJobStore
from worker.support.bulk_jobs import LEASE_SECONDS, RESUME_AFTER_SECONDS, resume_interrupted, run_slice


def test_one_owner_at_a_time_and_each_target_counted_once(store_client):
    clock = Clock()
    jobs = BulkJobStore(store_client, clock)
    jobs.create("a" * 16, action="discard", actor="olga", via="desk", params={}, targets=["t1", "t2"])
    assert jobs.claim("a" * 16, "w1", 60) == ("ok", 0)
    assert jobs.claim("a" * 16, "w2", 60) == ("busy", "w1")
    assert jobs.advance("a" * 16, "w2", 0, "done", {"target": "t1"}, 60) == "lost"  # not w2's
    assert jobs.advance("a" * 16, "w1", 0, "done", {"target": "t1"}, 60) == "ok"
    assert jobs.advance("a" * 16, "w1", 0, "done", {"target": "t1"}, 60) == "lost"  # index 0 is counted
    clock.advance(61)  # w1's lease lapses: interrupted, and w2 may go on from target 2
    assert jobs.get("a" * 16).interrupted(clock())
    assert jobs.claim("a" * 16, "w2", 60) == ("ok", 1)
    assert jobs.advance("a" * 16, "w2", 1, "skipped", {"target": "t2"}, 60) == "finished"
    job = jobs.get("a" * 16)
    assert (job.state, job.counts, job.processed) == ("finished", {"done": 1, "skipped": 1, "failed": 0}, 2)
    assert jobs.claim("a" * 16, "w3", 60) == ("finished", "")
    assert [r["target"] for r in jobs.reports("a" * 16)] == ["t1", "t2"]


def test_a_desk_job_is_published_run_by_slices_shown_interrupted_and_resumed(operator, desk_services, clock):
    for n in range(60):
        dead_receipt(desk_services, f"R-{n}")
    token = form_token(operator, "/dead-letters")
    form = {"csrf_token": token, "action": "discard", "all_matching": "1", "q": "", "status": "open",
            "operation": "", "destination": "", "reason": "", "age": "", "why": "duplicates"}
    job_path = operator.post("/dead-letters/act", data=form).headers["Location"]
    (message,) = desk_services.published_jobs  # the task's argument: the job's id, nothing else
    job_id = message[0]["job_id"]
    assert job_path.endswith(f"/jobs/{job_id}") and support_jobs.argument_problem(message, {}) is None
    page = operator.get(job_path).get_data(as_text=True)
    assert "0 of 60 so far" in page and desk_services.relay.dead_letters.count() == 60

    jobs = BulkJobStore(desk_services.redis, clock)
    ticks = iter(range(1000))  # a slice of 25 "seconds", one per target
    assert run_slice(desk_services.tools, jobs, job_id, owner="w1", seconds=25,
                     clock=lambda: next(ticks)) == "more"
    assert "25 of 60 so far" in operator.get(job_path).get_data(as_text=True)
    assert jobs.claim(job_id, "w2", LEASE_SECONDS)[0] == "ok"  # w2 takes it, then dies
    clock.advance(LEASE_SECONDS + 5)
    page = re.sub(r"\s+", " ", operator.get(job_path).get_data(as_text=True))
    assert "Interrupted: the worker working on it stopped 5 s ago; it goes on from item 26" in page
    assert "Go on now" in page
    operator.post(f"{job_path}/resume", data={"csrf_token": form_token(operator, job_path)})
    assert len(desk_services.published_jobs) == 2
    clock.advance(RESUME_AFTER_SECONDS)
    assert resume_interrupted(jobs, desk_services.published_jobs.append, clock()) == 1  # the scheduler's
    assert run_slice(desk_services.tools, jobs, job_id, owner="w3") == "finished"
    assert "60 done, 0 skipped, 0 failed" in operator.get(job_path).get_data(as_text=True)
    assert desk_services.relay.dead_letters.count() == 0
    assert resume_interrupted(jobs, desk_services.published_jobs.append, clock() + 3600) == 0


def raw(task: str, args: list, queue: str) -> bytes:
    body = base64.b64encode(json.dumps([args, {}, None]).encode()).decode()
    return json.dumps({"body": body, "content-encoding": "utf-8", "content-type": "application/json",
                       "headers": {"task": task, "id": "t-1"}, "properties": {"body_encoding": "base64"},
                       "queue": queue}).encode()


def test_the_screen_passes_a_job_message_on_its_queue_and_nothing_else_there():
    now = time.time()
    job = support_jobs.job_message("0123456789abcdef")
    passed = screen(raw(support_jobs.TASK, job, support_jobs.QUEUE), support_jobs.QUEUE, now=now)
    assert isinstance(passed, Passed)
    refused = [screen(raw(support_jobs.TASK, job, "trademax.receipt"), "trademax.receipt", now=now),
               screen(raw("trademax.receipt.create", [{}], support_jobs.QUEUE), support_jobs.QUEUE, now=now),
               screen(raw(support_jobs.TASK, [{"job_id": "../x"}], support_jobs.QUEUE), support_jobs.QUEUE,
                      now=now),
               screen(raw(support_jobs.TASK, [{"job_id": "0123456789abcdef", "targets": ["dl-1"]}],
                          support_jobs.QUEUE), support_jobs.QUEUE, now=now)]
    assert all(isinstance(verdict, Malformed) for verdict in refused)
    assert "travel on support.jobs only" in refused[0].problem
    assert "runs on trademax.receipt only" in refused[1].problem
    assert "16 lower-case hex digits" in refused[2].problem and "exactly one argument" in refused[3].problem
