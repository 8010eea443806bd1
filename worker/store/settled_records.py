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

Which records are due: the ledger's scripts push the key of every record that enters a final state onto
its operation's list (KEYS[10]), so each list is in the order the records settled; :meth:`compact_due`
takes each list's head in bounded batches and stops at the first record not due yet.  A list entry costs
~10 B where the sorted set it replaced (member ``operation:key``, scored by the time) cost ~94 B — a
tenth of a delivered event's whole record before compaction (issue 12's 1 KiB a delivered event).  What
the list cannot do, the script does by reading the record it compacts:

- the record's own story says when it settled (its last transition that changed the state; a dispatch id
  filled in later does not count), and only that decides whether it is due;
- a record that left its final state (a person reopened it) is passed over — if it settles again it is
  pushed again; one already compact, or gone (expired), likewise;
- the list is in settle order as far as the workers' clocks agree: a record settled "later" by a clock
  ahead (or one reopened and settled again, whose first entry stays in place) holds the ones behind it
  back until it is due itself — later, never earlier.

A store written with issue 21's first index (the sorted set ``<ns>:ledger:settled``) is drained from
there, by the same script (then the key is gone); a store written before any index is walked once
(SCAN, a slice per call: :meth:`SettledRecords.index_earlier`), its settled records put into that sorted
set by the time of their last transition.

    <ns>:ledger:to_compact:<op> list: keys of the operation's settled records not compacted yet, oldest
                                first (written by the ledger's scripts)
    <ns>:ledger:settled         sorted set: member (``operation:key``) -> when the record settled; only
                                in a store written before the lists, and by the walk
    <ns>:ledger:settled:walk    the SCAN cursor of the one walk that indexes records settled before any
                                index existed; "done" once it has been round

The store-call rule (``worker.store.requests``): :data:`COMPACT` is idempotent by itself — it is given
the entries the caller read at the list's head and does nothing unless they are still there (a resend
after a timeout, or another scheduler that took them first, finds them gone); from the sorted set it takes
only members still in it.  Its reply (how many it compacted) only feeds a log line.  It is one script per
batch, so a store that fails mid-way (killed, restarted from its append-only file) has run all of it or
none: a record is either full or compact, never neither.  The walk writes with ``ZADD NX`` and ``SET``
(rule 2).
"""
from __future__ import annotations

import json
import time
from typing import Callable, Iterable

from worker.encoding import text
from worker.store.ledger import FINAL_STATES, settled_index_key, settled_queue_key
from worker.store.records import is_compacted

# A compacted record's fields: see worker.store.ledger_scripts.  KEYS[1]: the index (an operation's list,
# or the old sorted set); KEYS[2..]: the records.  ARGV[1]: the cutoff (Unix seconds: records settled at or
# before it are compacted); ARGV[2]: 'list' or 'zset'; ARGV[3..]: each record's entry in the index (the key
# in a list, the member ``operation:key`` in the sorted set), in the order of KEYS[2..].  Returns how many
# it compacted, how many entries it took off the index, and 1 if the entries were still there (a list's
# head must be exactly the entries given), else 0 (nothing done).  Its ``c`` field stays within 64 bytes
# (and every other value too), so the hash is a listpack.
COMPACT = """
local FINAL = {delivered=true, superseded=true, discarded=true}
local cutoff = tonumber(ARGV[1])
local entries = #KEYS - 1

-- When the record settled (its last transition that changed the state: a filled-in dispatch id is a
-- transition to the same state) and the reason of its last transition, one line; from the story (a JSON
-- array of transitions [t, from, to, reason, ...] and attempts {...}).
local function settled_of(story, state)
  local ok, told = pcall(cjson.decode, story or '[]')
  if not ok or type(told) ~= 'table' then return 0, state end
  local line = nil
  for i = #told, 1, -1 do
    local entry = told[i]
    if type(entry) == 'table' and type(entry[4]) == 'string' then
      line = line or entry[4]
      if entry[2] ~= entry[3] then return tonumber(entry[1]) or 0, line end
    end
  end
  return 0, line or state
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

-- Compact KEYS[i] if it is settled, still full and settled at or before the cutoff: 'done'; 'wait' when
-- it is settled later (not due yet); 'pass' when there is nothing to compact (open, compact, gone).
local function compact(i)
  local r = redis.call('HMGET', KEYS[i], 's', 'e', 'rs', 'h', 'n')
  local print = string.match(r[2] or '', '^{"fp":"(%x+)"')
  if not (r[1] and FINAL[r[1]] and print) then return 'pass' end
  local at, line = settled_of(r[4], r[1])
  if at > cutoff then return 'wait' end
  line = string.gsub(line, '%s+', ' ')
  line = string.gsub(string.sub(line, 1, 50), '[\\192-\\255][\\128-\\191]*$', '')
  local fields = {'s', r[1], 'n', r[5] or '0', 'e', string.sub(print, 1, 32),
                  'c', string.format('%d', math.floor(at)) .. ' ' .. line}
  local id = dispatch_id_of(r[3])
  if id then
    fields[#fields + 1] = 'rs'
    fields[#fields + 1] = '{"dispatch_id":' .. id .. '}'
  end
  local ttl = redis.call('PTTL', KEYS[i])
  redis.call('DEL', KEYS[i])
  redis.call('HSET', KEYS[i], unpack(fields))
  if ttl > 0 then redis.call('PEXPIRE', KEYS[i], ttl) end
  return 'done'
end

local done, taken = 0, 0
if ARGV[2] == 'list' then
  local head = redis.call('LRANGE', KEYS[1], 0, entries - 1)
  if #head ~= entries then return {0, 0, 0} end
  for j = 1, entries do
    if head[j] ~= ARGV[j + 2] then return {0, 0, 0} end
  end
  for j = 1, entries do
    local outcome = compact(j + 1)
    if outcome == 'wait' then break end
    if outcome == 'done' then done = done + 1 end
    taken = j
  end
  if taken > 0 then redis.call('LTRIM', KEYS[1], taken, -1) end
  return {done, taken, 1}
end
for j = 1, entries do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[j + 2])
  if score and tonumber(score) <= cutoff then
    -- 'wait': it settled again since (a list holds it now); either way it leaves the sorted set
    if compact(j + 1) == 'done' then done = done + 1 end
    redis.call('ZREM', KEYS[1], ARGV[j + 2])
    taken = taken + 1
  end
end
return {done, taken, 1}
"""

WALK_DONE = "done"


class SettledRecords:
    """One ledger's (one destination's) settled records and their compaction (any redis-py client)."""

    def __init__(self, redis_client, namespace: str, *, operations: Iterable[str], detail_seconds: float,
                 clock: Callable[[], float] = time.time, batch: int = 200) -> None:
        """``operations``: every operation the ledger may hold records of (the destinations' table);
        ``detail_seconds``: how long a settled record keeps its details (SETTLED_DETAIL_HOURS)."""
        if detail_seconds <= 0:
            raise ValueError("settled records keep their details a positive time")
        self._redis = redis_client
        self._ns = namespace
        self._operations = tuple(dict.fromkeys(operations))
        self._detail = float(detail_seconds)
        self._clock = clock
        self._batch = batch
        self._index = settled_index_key(namespace)
        self._walk = f"{namespace}:ledger:settled:walk"
        self._compact = redis_client.register_script(COMPACT)

    def _record_key(self, member: str) -> str:
        return f"{self._ns}:event:{member}"

    def detailed(self) -> int:
        """Entries of settled records not compacted yet (a record reopened and settled again is counted
        twice until the compaction passes its first entry)."""
        pipe = self._redis.pipeline(transaction=False)
        for operation in self._operations:
            pipe.llen(settled_queue_key(self._ns, operation))
        pipe.zcard(self._index)
        return sum(int(n) for n in pipe.execute())

    def compact_due(self, *, max_batches: int = 50) -> int:
        """Compact the records settled more than ``detail_seconds`` ago, ``batch`` per script, at most
        ``max_batches`` scripts (the rest next time); how many were compacted."""
        cutoff = f"{self._clock() - self._detail:.3f}"
        budget = [max_batches]
        compacted = self._drain_sorted_set(cutoff, budget)
        for operation in self._operations:
            compacted += self._drain_list(operation, cutoff, budget)
        return compacted

    def _drain_list(self, operation: str, cutoff: str, budget: list[int]) -> int:
        """The head of one operation's list, batch by batch, up to its first record not due yet."""
        queue = settled_queue_key(self._ns, operation)
        compacted = 0
        while budget[0] > 0:
            keys = [text(k) for k in self._redis.lrange(queue, 0, self._batch - 1)]
            if not keys:
                break
            budget[0] -= 1
            done, taken, still_there = self._compact(
                keys=[queue, *(self._record_key(f"{operation}:{key}") for key in keys)],
                args=[cutoff, "list", *keys])
            compacted += int(done)
            if int(still_there) and int(taken) < len(keys):
                break  # the next record is not due yet
        return compacted

    def _drain_sorted_set(self, cutoff: str, budget: list[int]) -> int:
        """The due part of the sorted set a store kept before the lists (and the walk fills)."""
        compacted = 0
        while budget[0] > 0:
            due = self._redis.zrangebyscore(self._index, "-inf", cutoff, start=0, num=self._batch)
            members = [text(m) for m in due]
            if not members:
                break
            budget[0] -= 1
            done, _, _ = self._compact(keys=[self._index, *map(self._record_key, members)],
                                       args=[cutoff, "zset", *members])
            compacted += int(done)
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
