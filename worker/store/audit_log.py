"""The audit log: every person's action, across all events, in one Redis stream — who, when, what, why,
and how it ended — whether done in the ``wms-relay`` CLI or on the support desk.

    wms:audit     stream, one entry per action: at, actor, action (retry, discard, resolve, run-now,
                  discard-retry, sign-in, sign-in-locked, sign-out, pause, resume), target (dl-12,
                  OPERATION:KEY, or a destination for pause/resume),
                  operation, key, reason, status (done, skipped, failed), message, via (cli, desk)

The event's own history (the ledger) and the dead letter keep the same facts for one event; this log is
the cross-cutting view ("what did bob do this morning?").  Dry runs are not actions and are not logged.
It is capped at ``MAX_ENTRIES`` (approximately: Redis trims whole nodes), a few hundred bytes an entry.

**With the action, not after it.**  An entry written in a store call of its own after the action leaves,
when the process dies between the two, the action done and not in this log.  So a store script that makes
a person's action happen can append the entry itself, in the same atomic step (:class:`PendingEntry`:
the stream key goes in the script's KEYS, :meth:`PendingEntry.args` at the end of its ARGV, and
:data:`APPEND_LUA` appends it): the dead letter's close (``worker.store.dead_letters``: a retry's take, a
discard) and a bulk job's progress record (``worker.store.bulk_jobs``: every other report of a job's
target) do.  Those scripts carry a request id (worker/store/requests.py), so a resend never appends twice.
"""
from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from typing import Callable

from worker.encoding import iso_time, text

MAX_ENTRIES = 1_000_000
# A stream entry id: milliseconds-sequence, each an unsigned 64-bit number (what a page's "older" link holds).
_ENTRY_ID = re.compile(r"^(\d{1,20})(?:-(\d{1,20}))?$")
_UINT64 = 2 ** 64 - 1
FIELDS = ("at", "actor", "action", "target", "operation", "key", "reason", "status", "message", "via")


@dataclass(frozen=True)
class AuditEntry:
    entry_id: str
    at: float
    actor: str
    action: str
    target: str = ""
    operation: str = ""
    key: str = ""
    reason: str = ""
    status: str = ""
    message: str = ""
    via: str = ""

    def to_dict(self) -> dict:
        return {**asdict(self), "at": iso_time(self.at)}

    def matches(self, needle: str) -> bool:
        haystack = " ".join([self.actor, self.action, self.target, self.reason, self.message]).lower()
        return needle.lower() in haystack


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    text: str | None = None
    since: float | None = None

    def keeps(self, entry: AuditEntry) -> bool:
        return ((not self.actor or entry.actor == self.actor)
                and (not self.action or entry.action == self.action)
                and (not self.text or entry.matches(self.text))
                and (self.since is None or entry.at >= self.since))


def check_entry_id(value: str) -> str:
    """``value`` if it is an audit entry id (``1714550000000-0``); ValueError naming the problem otherwise
    (the store would refuse it with an error, not an empty page)."""
    found = _ENTRY_ID.match(value or "")
    if not found or any(int(part) > _UINT64 for part in found.groups() if part is not None):
        raise ValueError(f"{value!r} is not an audit entry id (like 1714550000000-0)")
    return value


@dataclass(frozen=True)
class PendingEntry:
    """An audit entry a store script appends together with its own change (see the module docstring)."""

    stream: str
    values: dict

    def args(self) -> list:
        """ARGV's tail for :data:`APPEND_LUA`: the cap, then field, value, field, value..."""
        return [MAX_ENTRIES, *(part for pair in self.values.items() for part in pair)]


# Lua appending a PendingEntry: ``append_entry(stream key, the index in ARGV where PendingEntry.args begin)``.
APPEND_LUA = """
local function append_entry(stream, first)
  redis.call('XADD', stream, 'MAXLEN', '~', ARGV[first], '*', unpack(ARGV, first + 1, #ARGV))
end
"""


class AuditLog:
    """The audit stream in one Redis (any client: bytes or text replies)."""

    def __init__(self, redis_client, clock: Callable[[], float] = time.time, *,
                 namespace: str = "wms") -> None:
        self._redis = redis_client
        self._clock = clock
        self._key = f"{namespace}:audit"

    def pending(self, *, actor: str, action: str, target: str = "", operation: str | None = None,
                key: str | None = None, reason: str = "", status: str = "", message: str = "",
                via: str = "") -> PendingEntry:
        """One action's entry, for a store script to append with the action (:meth:`record` appends it
        now)."""
        if not actor:
            raise ValueError("an audited action needs the actor's name")
        return PendingEntry(self._key, {
            "at": f"{self._clock():.3f}", "actor": actor, "action": action, "target": target,
            "operation": operation or "", "key": key or "", "reason": reason or "", "status": status,
            "message": message, "via": via})

    def record(self, **entry) -> str:
        """Append one action now (the fields of :meth:`pending`); returns the entry's id."""
        return self.append(self.pending(**entry))

    def append(self, entry: PendingEntry) -> str:
        """Append an entry made by :meth:`pending`; returns its id."""
        return text(self._redis.xadd(entry.stream, entry.values, maxlen=MAX_ENTRIES, approximate=True))

    def page(self, which: AuditFilter = AuditFilter(), *, before: str | None = None, limit: int = 50,
             scan_limit: int = 100_000) -> tuple[list[AuditEntry], str | None]:
        """Matching entries, newest first, older than entry id ``before``; and the cursor of the next page
        (None when there is no older match).  Looks at no more than ``scan_limit`` entries per call.
        ``before`` that is not an entry id: ValueError (:func:`check_entry_id`)."""
        if before:
            check_entry_id(before)
        found: list[AuditEntry] = []
        high = f"({before}" if before else "+"
        scanned, last, exhausted = 0, None, False
        while len(found) <= limit:
            if scanned >= scan_limit:  # let the person page on from where this call stopped looking
                return found[:limit], (found[limit - 1].entry_id if len(found) > limit else last)
            batch = self._redis.xrevrange(self._key, max=high, min="-", count=500)
            if not batch:
                exhausted = True
                break
            for raw_id, raw in batch:
                last = _entry(text(raw_id), raw)
                if which.keeps(last):
                    found.append(last)
            scanned += len(batch)
            if which.since is not None and last.at < which.since:
                exhausted = True
                break
            high = f"({last.entry_id}"
        more = len(found) > limit and not (exhausted and len(found) <= limit)
        found = found[:limit]
        return found, (found[-1].entry_id if more and found else None)

    def count(self) -> int:
        return int(self._redis.xlen(self._key))


def _entry(entry_id: str, raw) -> AuditEntry:
    values = {text(k): text(v) for k, v in raw.items()}
    return AuditEntry(entry_id=entry_id, at=float(values.get("at") or 0),
                      **{name: values.get(name, "") for name in FIELDS if name != "at"})
