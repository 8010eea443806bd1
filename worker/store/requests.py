"""The store-call rule: no command that changes state is ever re-sent blind after a timeout.

A call to Redis that times out (the server stalled, e.g. SIGSTOP or a long fsync) or loses its connection
after sending may or may not have run.  redis-py resends such calls by default (three retries, on
ConnectionError and TimeoutError), and ``deliver`` runs an event again once the store answers: a claim
resent so was recorded twice and looked "interrupted" (a relative stock adjustment parked ``uncertain``
without ever being sent), and a transition resent so was refused the second time (a spurious "claim had
passed to another worker" and a duplicate attempt entry).  The rule, for every store module:

1. **Reads** (GET, HGETALL, ZRANGE...) may be resent freely.
2. **Plain writes** are idempotent by construction — SET / HSET / ZADD / SADD / DEL of a given value —
   so a resend lands the same state.
3. **Every Lua script that changes state and whose reply matters, or whose rerun would not land the same
   state** (the ledger's accept, claim, transition, attempt log, a person's fill-in of a result, the
   doors' admit — in every destination's ledger, the fan-out's accepts included; a dead letter's id, its
   take/discard, its write and indexing, which append to the search's terms index, and its purge;
   StockTrim's forecast turn; a batch of attempt counts for the metrics; flow control's batch
   add/take/settle, circuit report and probe, gate admit, rate-limit take and hold, parking release, pause
   and resume) carries a **request id**: the script stores its reply under ``<namespace>:request:<id>``
   (``wms:request:<id>``, or the destination's namespace
   ``wms:kaching:request:<id>``; kept :data:`REPLY_TTL_SECONDS`) and a second run with that id returns the
   stored reply without doing anything.  A resend — by redis-py, or by our own code once the store is
   back — is then a *replay*, never a second execution.
4. The request id is fixed per logical call.  Within :func:`replayable` (``deliver`` wraps the part after a
   send in one), the ids are ``<base>:<n>`` for the n-th such call, so running the same code path again
   after an outage replays every store call the first run made and carries on where it stopped.
5. Socket timeouts are explicit (``worker.store.connection``): a stalled store fails a call within
   seconds instead of hanging a worker thread; the retry above makes that safe.

Scripts that are idempotent by nature (the stock turn, in each destination's namespace: same owner →
same answer; the retry schedule's ZADD/HSET; taking dispatch waiters, which are rescheduled anyway; the
Stock2Shop login lock's compare-and-delete; taking back an admission the door answered 503 for) need no
request id.  A ``SET NX`` (Stock2Shop's login lock, the ingest door's replay guard) is not a script: its
caller writes its own owner id and looks for it when told "not set" (a resend of a SET that ran).

**Fresh ids without a system call** (:func:`fresh_id`, issue 21): a request id outside a replayable block,
a delivery's nonce, a task run's owner tag were ``uuid4().hex`` — ``os.urandom``, a ``getrandom`` system
call that releases the GIL, four times per delivered event; with 16–64 worker threads each release can
hand the interpreter to another thread.  What the ids need is uniqueness, not unpredictability (none is a
secret or a token anyone guesses against: a replay reply, a lease owner, a nonce for request-id bases): 64
random bits drawn once per process (and drawn again in a forked child, whose counter would otherwise repeat
its parent's) and a 64-bit counter.  Two processes collide only if their draws match (p ≈ n² / 2⁶⁵ for n
processes alive within a reply's 10 minutes); one process never repeats.

    <namespace>:request:<id>    string: the JSON reply of the script run with that id (expires after 10 min)
"""
from __future__ import annotations

import itertools
import os
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

REPLY_TTL_SECONDS = 600


class _FreshIds:
    """This process's random prefix and counter (see "Fresh ids" above)."""

    def __init__(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()  # next() on it is atomic under the GIL: no lock needed

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


_ids = _FreshIds()
# A forked child (Celery's prefork pool, multiprocessing) starts with its parent's prefix and counter.
os.register_at_fork(after_in_child=_ids.redraw)


def fresh_id() -> str:
    """32 hex digits, unique across this process's threads and across processes (a random 64-bit prefix
    per process + a counter) — what ``uuid4().hex`` gave, without a system call per id."""
    return _ids.next()


def fresh_tag(random_digits: int = 8) -> str:
    """``<the first random_digits of this process's prefix>.<the counter>``: a short id for a task run's
    owner name, never the same twice in this process and, by its random part, not a dead process's either —
    a restart that reuses the pid and the thread's ident (a container's PID 1) must not name the crashed
    run's owner again for a redelivered message (worker.delivery.pipeline takes a claim under its own name
    as "not interrupted").  The counter alone would."""
    return f"{_ids.prefix[:random_digits]}.{next(_ids.counter)}"


_scope: ContextVar[list | None] = ContextVar("wms_store_request_scope", default=None)


@contextmanager
def replayable(base: str) -> Iterator[None]:
    """Within this block the n-th request id is ``<base>:<n>``: run the block again with the same base
    and every state-changing script replays its first reply (see rule 4)."""
    token = _scope.set([base, 0])
    try:
        yield
    finally:
        _scope.reset(token)


def request_id() -> str:
    """A fresh id for one state-changing call (or the next of the current :func:`replayable` block)."""
    scope = _scope.get()
    if scope is None:
        return fresh_id()
    scope[1] += 1
    return f"{scope[0]}:{scope[1]}"


def reply_key(namespace: str, rid: str) -> str:
    return f"{namespace}:request:{rid}"


def replaying(body: str) -> str:
    """A Lua script body (which may ``return`` anywhere) made to replay its reply by request id.

    KEYS: the script's own keys, then LAST the reply key (:func:`reply_key`).  The reply is kept as JSON
    (cjson), which carries the strings, integers, false and arrays our scripts answer with."""
    return f"""
local function run()
{body}
end
local seen = redis.call('GET', KEYS[#KEYS])
if seen then return cjson.decode(seen) end
local reply = run()
redis.call('SET', KEYS[#KEYS], cjson.encode(reply), 'EX', {REPLY_TTL_SECONDS})
return reply
"""
