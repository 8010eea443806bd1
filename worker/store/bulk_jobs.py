"""The desk's bulk jobs in the store: what one person asked to be done to many targets ("retry all 40,000
matching"), and how far it got — readable from any desk process, worked through by any worker
(``worker.support.bulk_jobs`` runs them; the store only keeps them).

    wms:job:<id>           hash: action, actor, via, params (JSON), total, next (the index of the next
                           target), done, skipped, failed, state (queued | running | finished | failed),
                           created_at, started_at, updated_at, finished_at, published_at, owner (who works
                           on it now), lease_until (until when that claim holds), lease_seconds (the
                           claim's length, as its worker has it), error
    wms:job:<id>:targets   list: the targets (dead letter ids, delivery refs), in order
    wms:job:<id>:reports   list: the first SHOWN reports, JSON (the counts cover every target)
    wms:jobs               sorted set: job id -> created_at (the newest KEPT are kept; a finished job's keys
                           expire RETENTION_SECONDS after it finished)

One worker at a time works on a job: :meth:`BulkJobStore.claim` takes it for ``owner`` until
``lease_until`` (refused while another owner's lease holds), each :meth:`advance` records one target's
report — only for the owner, only at the index the job is at (a resent call, or a second worker, cannot
count a target twice) — and renews the lease; it appends the target's audit entry in the same step when
the action did not (``worker.store.audit_log.PendingEntry``), so a job's progress and the audit log never
disagree, whatever moment its worker dies at.  A worker killed mid-job leaves a lapsed lease: the job is
*interrupted* (:meth:`JobRecord.interrupted`) until someone claims it again and it goes on from ``next``.

Store-call rule (worker/store/requests.py): creating a job is one MULTI/EXEC of plain writes (a resend
deletes and writes the same lists again); claim, advance, release and fail are scripts with a request id.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from worker.encoding import text
from worker.store.audit_log import APPEND_LUA, PendingEntry
from worker.store.requests import replaying, reply_key, request_id

SHOWN = 500
KEPT = 200
RETENTION_SECONDS = 7 * 86400
QUEUED, RUNNING, FINISHED, FAILED = "queued", "running", "finished", "failed"

# KEYS: job, reply.  ARGV: owner, now, lease until, lease seconds.
_CLAIM = replaying("""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone', ''} end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'finished' or state == 'failed' then return {state, ''} end
local owner = redis.call('HGET', KEYS[1], 'owner') or ''
local lease = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0') or 0
if owner ~= '' and owner ~= ARGV[1] and lease > tonumber(ARGV[2]) then return {'busy', owner} end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'lease_until', ARGV[3], 'state', 'running',
           'updated_at', ARGV[2], 'lease_seconds', ARGV[4])
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[2])
return {'ok', redis.call('HGET', KEYS[1], 'next')}
""")

# KEYS: job, reports, targets, [audit stream,] reply.  ARGV: owner, index, status (done|skipped|failed),
# report, now, lease until, reports kept, retention seconds, [the audit entry: PendingEntry.args].  'lost'
# when the job is not this owner's or not at that index (nothing recorded, no entry appended).
_ADVANCE = replaying(APPEND_LUA + """
if (redis.call('HGET', KEYS[1], 'owner') or '') ~= ARGV[1] then return 'lost' end
if tonumber(redis.call('HGET', KEYS[1], 'next')) ~= tonumber(ARGV[2]) then return 'lost' end
if #KEYS == 5 then append_entry(KEYS[4], 9) end
redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
local after = redis.call('HINCRBY', KEYS[1], 'next', 1)
if redis.call('LLEN', KEYS[2]) < tonumber(ARGV[7]) then redis.call('RPUSH', KEYS[2], ARGV[4]) end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[5], 'lease_until', ARGV[6])
if after >= tonumber(redis.call('HGET', KEYS[1], 'total')) then
  redis.call('HSET', KEYS[1], 'state', 'finished', 'finished_at', ARGV[5], 'owner', '', 'lease_until', '0')
  for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[8]) end
  return 'finished'
end
return 'ok'
""")

# KEYS: job, reply.  ARGV: owner, now, state (queued: handed on to the next slice; failed), error.
_RELEASE = replaying("""
if (redis.call('HGET', KEYS[1], 'owner') or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', '', 'lease_until', '0', 'state', ARGV[3], 'updated_at', ARGV[2])
if ARGV[3] == 'failed' then redis.call('HSET', KEYS[1], 'error', ARGV[4], 'finished_at', ARGV[2]) end
return 1
""")


@dataclass(frozen=True)
class JobRecord:
    """One job as the store has it (counts, state, claim), for pages and the runner."""

    job_id: str
    action: str
    actor: str
    via: str
    params: dict
    total: int
    next: int
    counts: dict
    state: str
    created_at: float
    started_at: float | None
    updated_at: float
    finished_at: float | None
    published_at: float | None
    owner: str
    lease_until: float
    error: str
    lease_seconds: float | None = None  # the last claim's length (None: never claimed)

    @property
    def processed(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> bool:
        return self.state in (FINISHED, FAILED)

    def interrupted(self, now: float) -> bool:
        """Taken by a worker that stopped before it finished: its claim has lapsed."""
        return self.state == RUNNING and self.lease_until < now

    def to_dict(self, now: float) -> dict:
        return {"id": self.job_id, "action": self.action, "actor": self.actor, "via": self.via,
                "total": self.total, "processed": self.processed, **self.counts, "state": self.state,
                "interrupted": self.interrupted(now), "created_at": self.created_at,
                "started_at": self.started_at, "finished_at": self.finished_at, "error": self.error}


def _number(raw: Any, default: float | None = None) -> float | None:
    return float(raw) if raw not in (None, "") else default


class BulkJobStore:
    """The jobs in one Redis (any client: bytes or text replies)."""

    def __init__(self, redis_client, clock: Callable[[], float] = time.time, *, namespace: str = "wms"):
        self._redis = redis_client
        self._clock = clock
        self._ns = namespace
        self._claim = redis_client.register_script(_CLAIM)
        self._advance = redis_client.register_script(_ADVANCE)
        self._release = redis_client.register_script(_RELEASE)

    def _key(self, job_id: str) -> str:
        return f"{self._ns}:job:{job_id}"

    def _reply(self) -> str:
        return reply_key(self._ns, request_id())

    def create(self, job_id: str, *, action: str, actor: str, via: str, params: dict,
               targets: Sequence[str]) -> None:
        """Write a new job, queued (one transaction of plain writes: a resend lands the same job)."""
        now = self._clock()
        key = self._key(job_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(key, f"{key}:targets", f"{key}:reports")
        for start in range(0, len(targets), 1000):
            pipe.rpush(f"{key}:targets", *targets[start:start + 1000])
        pipe.hset(key, mapping={"action": action, "actor": actor, "via": via, "params": json.dumps(params),
                                "total": len(targets), "next": 0, "done": 0, "skipped": 0, "failed": 0,
                                "state": QUEUED, "created_at": f"{now:.3f}", "updated_at": f"{now:.3f}",
                                "owner": "", "lease_until": "0", "error": ""})
        pipe.zadd(f"{self._ns}:jobs", {job_id: now})
        pipe.execute()
        old = self._redis.zrange(f"{self._ns}:jobs", 0, -(KEPT + 1))
        if old:
            names = [text(i) for i in old]
            keys = [self._key(i) for i in names]
            self._redis.delete(*keys, *(f"{k}:targets" for k in keys), *(f"{k}:reports" for k in keys))
            self._redis.zrem(f"{self._ns}:jobs", *names)

    def get(self, job_id: str) -> JobRecord | None:
        raw = {text(k): text(v) for k, v in self._redis.hgetall(self._key(job_id)).items()}
        if not raw.get("action"):
            return None
        return JobRecord(
            job_id=job_id, action=raw["action"], actor=raw.get("actor", ""), via=raw.get("via", ""),
            params=json.loads(raw.get("params") or "{}"), total=int(raw.get("total") or 0),
            next=int(raw.get("next") or 0),
            counts={status: int(raw.get(status) or 0) for status in ("done", "skipped", "failed")},
            state=raw.get("state", QUEUED), created_at=_number(raw.get("created_at"), 0.0),
            started_at=_number(raw.get("started_at")), updated_at=_number(raw.get("updated_at"), 0.0),
            finished_at=_number(raw.get("finished_at")), published_at=_number(raw.get("published_at")),
            owner=raw.get("owner", ""), lease_until=_number(raw.get("lease_until"), 0.0),
            error=raw.get("error", ""), lease_seconds=_number(raw.get("lease_seconds")))

    def reports(self, job_id: str) -> list[dict]:
        """The first SHOWN targets' reports, in order."""
        return [json.loads(text(raw)) for raw in self._redis.lrange(f"{self._key(job_id)}:reports", 0, -1)]

    def targets(self, job_id: str, start: int, count: int) -> list[str]:
        return [text(t) for t in self._redis.lrange(f"{self._key(job_id)}:targets", start, start + count - 1)]

    def recent(self, limit: int = 50) -> list[JobRecord]:
        """The newest jobs first."""
        ids = [text(i) for i in self._redis.zrevrange(f"{self._ns}:jobs", 0, limit - 1)]
        return [job for job in map(self.get, ids) if job is not None]

    def unfinished(self) -> Iterable[JobRecord]:
        return (job for job in self.recent(KEPT) if not job.finished)

    def mark_published(self, job_id: str) -> None:
        """Its task message was published now (plain write)."""
        self._redis.hset(self._key(job_id), "published_at", f"{self._clock():.3f}")

    def claim(self, job_id: str, owner: str, lease_seconds: float) -> tuple[str, int | str]:
        """Take the job for ``owner``: ("ok", the index to go on from), ("busy", its owner), ("finished"|
        "failed", "") or ("gone", "")."""
        now = self._clock()
        verdict, detail = (text(part) for part in self._claim(keys=[self._key(job_id), self._reply()], args=[
            owner, f"{now:.3f}", f"{now + lease_seconds:.3f}", f"{lease_seconds:g}"]))
        return (verdict, int(detail)) if verdict == "ok" else (verdict, detail)

    def advance(self, job_id: str, owner: str, index: int, status: str, report: dict,
                lease_seconds: float, audit: PendingEntry | None = None) -> str:
        """Record target ``index``'s report (and append ``audit``, its audit entry, in the same step):
        "ok", "finished" (it was the last) or "lost" (the job is not ``owner``'s any more, or not at
        ``index``: nothing recorded, nothing appended)."""
        now = self._clock()
        key = self._key(job_id)
        return text(self._advance(
            keys=[key, f"{key}:reports", f"{key}:targets", *([audit.stream] if audit else []), self._reply()],
            args=[owner, index, status, json.dumps(report), f"{now:.3f}", f"{now + lease_seconds:.3f}", SHOWN,
                  RETENTION_SECONDS, *(audit.args() if audit else [])]))

    def release(self, job_id: str, owner: str, *, failed: str = "") -> bool:
        """``owner`` lets the job go: queued for its next slice, or ``failed`` (with that error)."""
        state = FAILED if failed else QUEUED
        return bool(self._release(keys=[self._key(job_id), self._reply()],
                                  args=[owner, f"{self._clock():.3f}", state, failed]))
