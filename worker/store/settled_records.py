"""Settled records keep their details for SETTLED_DETAIL_HOURS, then only what recognising them needs.

A delivered, superseded or discarded delivery stays in its ledger for DELIVERED_RETENTION_DAYS (30), so
that an event published again is recognised and not sent twice.  For that, and for a dispatch's follow-ups
and ``wms-relay event``, a record needs its state, when it settled and how, the fingerprint of its payload
(a different payload under the same key is a conflict) and Trademax's dispatch id — not the event, its
attempts, its story and the destination's whole answer, which made a settled record ~1 KiB: 30 GB in
Redis for a warehouse sending a million events a day.  So once a record has been settled for
``detail_seconds`` it is *compacted* to the few short fields ``worker.store.ledger_scripts`` lists (~200
B with its key; Redis keeps a hash of short values in its small listpack form).  ``wms-relay event``, the
desk and the ingest's GET say "details kept 24 h" of such a record.

Which records are due: the ledger's scripts index every record that enters a final state (KEYS[10]), by
the time it settled; :meth:`SettledRecords.compact_due` takes the due part of that index in bounded
batches.  A store written before the index existed is walked once (SCAN, a slice per call:
:meth:`SettledRecords.index_earlier`), its settled records indexed by the time of their last transition.

    <ns>:ledger:settled         sorted set: member (``operation:key``) -> when the record settled; the
                                settled records not compacted yet (written by the ledger's scripts)
    <ns>:ledger:settled:walk    the SCAN cursor of the one walk that indexes records settled before the
                                index existed; "done" once it has been round

The store-call rule (``worker.store.requests``): :data:`COMPACT` is idempotent by itself — a rerun (a
resend after a timeout) finds the members it compacted gone from the index and the records compact, and
changes nothing; its reply (how many it compacted) only feeds a log line.  It is one script per batch, so a
store that fails mid-way (killed, restarted from its append-only file) has run all of it or none: a record
is either full or compact, never neither.  The walk writes with ``ZADD NX`` and ``SET`` (rule 2).
"""
from __future__ import annotations

import json
import time
from typing import Callable

from worker.encoding import text
from worker.store.ledger import FINAL_STATES, settled_index_key
from worker.store.records import is_compacted

# A compacted record's fields: see worker.store.ledger_scripts.  KEYS[1]: the settled index; KEYS[2..]:
# the records.  ARGV[1]: the cutoff (Unix seconds: records settled at or before it are compacted);
# ARGV[2..]: each record's member in the index, in the order of KEYS[2..].  Returns how many it compacted.
# Its ``c`` field stays within 64 bytes (and every other value too), so the hash is a listpack.
COMPACT = """
local FINAL = {delivered=true, superseded=true, discarded=true}
local cutoff = tonumber(ARGV[1])
local done = 0

-- The reason of the last transition in the story (a JSON array of transitions and attempts), one line.
local function outcome_of(story, state)
  local ok, entries = pcall(cjson.decode, story or '[]')
  if not ok or type(entries) ~= 'table' then return state end
  for i = #entries, 1, -1 do
    local entry = entries[i]
    if type(entry) == 'table' and type(entry[4]) == 'string' then return entry[4] end
  end
  return state
end

-- The dispatch id of a stored result, as its JSON text (a number or a string), or nil.
local function dispatch_id_of(result)
  if not result then return nil end
  local ok, decoded = pcall(cjson.decode, result)
  if not ok or type(decoded) ~= 'table' then return nil end
  local id = decoded['dispatch_id']
  if id == nil or id == cjson.null or id == '' then return nil end
  return string.match(result, '"dispatch_id":%s*(%-?%d+)[,}%s]') or cjson.encode(id)
end

for i = 2, #KEYS do
  local member = ARGV[i]
  local score = redis.call('ZSCORE', KEYS[1], member)
  if score and tonumber(score) <= cutoff then
    local r = redis.call('HMGET', KEYS[i], 's', 'e', 'rs', 'h', 'n')
    local print = string.match(r[2] or '', '^{"fp":"(%x+)"')
    if r[1] and FINAL[r[1]] and print then
      local line = string.gsub(outcome_of(r[4], r[1]), '%s+', ' ')
      line = string.gsub(string.sub(line, 1, 50), '[\\192-\\255][\\128-\\191]*$', '')
      local fields = {'s', r[1], 'n', r[5] or '0', 'e', string.sub(print, 1, 32),
                      'c', string.format('%d', math.floor(tonumber(score))) .. ' ' .. line}
      local id = dispatch_id_of(r[3])
      if id then
        fields[#fields + 1] = 'rs'
        fields[#fields + 1] = '{"dispatch_id":' .. id .. '}'
      end
      local ttl = redis.call('PTTL', KEYS[i])
      redis.call('DEL', KEYS[i])
      redis.call('HSET', KEYS[i], unpack(fields))
      if ttl > 0 then redis.call('PEXPIRE', KEYS[i], ttl) end
      done = done + 1
    end
    redis.call('ZREM', KEYS[1], member)
  end
end
return done
"""

WALK_DONE = "done"


class SettledRecords:
    """One ledger's (one destination's) settled records and their compaction (any redis-py client)."""

    def __init__(self, redis_client, namespace: str, *, detail_seconds: float,
                 clock: Callable[[], float] = time.time, batch: int = 200) -> None:
        """``detail_seconds``: how long a settled record keeps its details (SETTLED_DETAIL_HOURS)."""
        if detail_seconds <= 0:
            raise ValueError("settled records keep their details a positive time")
        self._redis = redis_client
        self._ns = namespace
        self._detail = float(detail_seconds)
        self._clock = clock
        self._batch = batch
        self._index = settled_index_key(namespace)
        self._walk = f"{namespace}:ledger:settled:walk"
        self._compact = redis_client.register_script(COMPACT)

    def _record_key(self, member: str) -> str:
        return f"{self._ns}:event:{member}"

    def detailed(self) -> int:
        """Settled records that still keep their details."""
        return int(self._redis.zcard(self._index))

    def compact_due(self, *, max_batches: int = 50) -> int:
        """Compact the records settled more than ``detail_seconds`` ago, ``batch`` per script, at most
        ``max_batches`` scripts (the rest next time); how many were compacted."""
        cutoff = f"{self._clock() - self._detail:.3f}"
        compacted = 0
        for _ in range(max_batches):
            due = self._redis.zrangebyscore(self._index, "-inf", cutoff, start=0, num=self._batch)
            members = [text(m) for m in due]
            if not members:
                break
            compacted += int(self._compact(keys=[self._index, *map(self._record_key, members)],
                                           args=[cutoff, *members]))
            if len(members) < self._batch:
                break
        return compacted

    def index_earlier(self, *, steps: int = 20, count: int = 1000) -> int:
        """Go on with the one walk (SCAN) that indexes the settled records written before the index
        existed, for at most ``steps`` slices of ``count`` keys; how many it indexed.  Once round, it only
        reads one key."""
        position = self._redis.get(self._walk)
        if position is not None and text(position) == WALK_DONE:
            return 0
        cursor, indexed = int(text(position) if position is not None else 0), 0
        prefix = f"{self._ns}:event:"
        for _ in range(steps):
            cursor, keys = self._redis.scan(cursor, match=prefix + "*", count=count)
            keys = [text(k) for k in keys]
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(key, "s", "e", "h")
            found = {}
            for key, (state, stored, story) in zip(keys, pipe.execute()):
                if state is None or text(state) not in FINAL_STATES or is_compacted(text(stored or "")):
                    continue
                found[key[len(prefix):]] = _settled_at(story, self._clock())
            if found:
                self._redis.zadd(self._index, found, nx=True)
                indexed += len(found)
            if cursor == 0:
                break
        self._redis.set(self._walk, WALK_DONE if cursor == 0 else str(cursor))
        return indexed

    def tidy(self) -> int:
        """The scheduler's chore: a slice of the walk, then the due compactions; how many compacted."""
        self.index_earlier()
        return self.compact_due()


def _settled_at(story, default: float) -> float:
    """The time of the last transition in a record's story (when it settled), or ``default``."""
    try:
        entries = json.loads(text(story)) if story else []
    except ValueError:
        return default
    times = [entry[0] for entry in entries if isinstance(entry, list) and entry
             and isinstance(entry[0], (int, float))]
    return float(times[-1]) if times else default
