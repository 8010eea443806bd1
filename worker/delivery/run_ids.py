"""Ids unique to one run of a delivery — a task's owner name, the request-id base of a send's recording —
drawn without the kernel's random source per delivery.

``uuid.uuid4()`` reads 16 bytes of ``os.urandom`` (a ``getrandom`` system call, which lets go of the
interpreter's lock: with 16–64 threads each one can hand the lock to another thread); a worker drew two
per delivered event only to be unique (issue 21).  :func:`run_id` is a random token drawn once per
process (again in a forked child) and a counter: unique across processes, across a restart that reuses
the pid and the thread's ident (a redelivered message after a crash must not find the dead run's owner
name again: worker.delivery.pipeline treats its own name's claim as "not interrupted"), and within the
process, whatever thread asks (``next`` of an ``itertools.count`` is atomic in CPython).
"""
from __future__ import annotations

import itertools
import os
import uuid

_process_token = uuid.uuid4().hex
_runs = itertools.count(1)


def run_id(length: int = 32) -> str:
    """``<the process's token, its first length characters>.<a counter>``: never the same twice in this
    process, and never another process's (``length`` 8 — 32 random bits — where a pid and a thread ident
    already set processes apart)."""
    return f"{_process_token[:length]}.{next(_runs)}"


def _after_fork_in_child() -> None:
    global _process_token, _runs
    _process_token, _runs = uuid.uuid4().hex, itertools.count(1)


os.register_at_fork(after_in_child=_after_fork_in_child)
