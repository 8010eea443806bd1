"""Pending stock counts of one bulk destination (ka-ching, StockTrim, Stock2Shop), coalesced, and the one
batch of them on the wire.

A count to send is *added* as pending instead of being sent on its own.  An absolute count (a *level*)
replaces the pending level of its (warehouse, product): the newest wins and the older becomes
``superseded`` for that destination — as does a level older than one already recorded for sending (the
stock order's ``last`` key, shared with worker.store.stock_order).  A relative adjustment (an *add*,
ka-ching only) is never coalesced: each adds.

A flusher *takes* a batch — up to ``max_items`` pending items, oldest first, all of one kind (a level
replaces, an add adds: they are different requests), skipping an item whose product has an older pending
item of the other kind (so ka-ching applies a count and the adjustments after it in their order), and at
most one add per product (each adjustment stays one value the destination applies: one that was applied,
or not, can be told apart from its neighbours — the next batch takes the next) — and
holds it *in flight* under a lease: one batch per destination at a time, so two batches never cross on
the wire and an older level can never land after a newer one.  The next batch is not taken before
``batch_seconds`` after this one was.  The flusher then *settles* it: items that were not delivered go
back to pending in their old place (where a newer level came meanwhile, they are superseded), and the
next take waits for the backoff.  A batch whose flusher died (its lease ran out) is taken again as an
*orphan*: its answer was lost.  The stranded sweep (worker.scheduling.stranded) leaves alone what is
pending (``holds``) and what the batch in flight carries (``carried``: its lease and its items' refs).

Key layout (``<ns>``: the destination's namespace):

    <ns>:flow:batch:queue     sorted set: item id (its delivery ref) -> arrival number (oldest first)
    <ns>:flow:batch:items     hash: item id -> item JSON (kind, sku, at, ref parts, fingerprint, event)
    <ns>:flow:batch:levels    hash: sku ("<warehouse>\\x1f<artno>") -> id of its pending level
    <ns>:flow:batch:seq       the last arrival number given
    <ns>:flow:batch:flight    hash: the batch in flight: id, owner (the ledger claims' owner), holder,
                              lease (expiry), kind, taken_at, items (JSON [[arrival, item], ...]),
                              sent ("1" once a request of it may have left)
    <ns>:flow:batch:next      no batch is taken before this time (Unix seconds)
    <ns>:flow:batch:failures  failed batches in a row (the backoff's attempt number)
    <ns>:flow:batch:failed    the kind of the last batch, if it failed (the other kind goes first next)
    <ns>:stock:last:<sku>     the newest occurred_at recorded for sending (worker.store.stock_order's key)
    <ns>:request:<id>         the reply of an add, take or settle, replayed if the call is resent
                              (worker.store.requests; each script's KEYS end with it)
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from worker.encoding import stored_json, text
from worker.store.requests import replaying, reply_key, request_id

LEVEL, ADD = "level", "add"

# KEYS[1] queue, KEYS[2] items, KEYS[3] levels, KEYS[4] seq, KEYS[5] the sku's stock:last.
# ARGV: id, item JSON, kind, sku, occurred_at.
# Returns {'added', replaced id or ''} | {'known'} | {'superseded', the newer occurred_at}.
_ADD = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {'known'} end
local replaced = ''
if ARGV[3] == 'level' then
  local last = redis.call('GET', KEYS[5])
  if last and last > ARGV[5] then return {'superseded', last} end
  if (not last) or last < ARGV[5] then redis.call('SET', KEYS[5], ARGV[5]) end
  local old = redis.call('HGET', KEYS[3], ARGV[4])
  if old then
    redis.call('ZREM', KEYS[1], old)
    redis.call('HDEL', KEYS[2], old)
    replaced = old
  end
  redis.call('HSET', KEYS[3], ARGV[4], ARGV[1])
end
redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[4]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return {'added', replaced}
"""

# KEYS[1] queue, KEYS[2] items, KEYS[3] levels, KEYS[4] flight, KEYS[5] next.
# ARGV: now, holder, lease until, max items, how many to look at, batch seconds, new batch id, the kind
# of the last batch if it failed ('' otherwise).
# Returns {'busy', lease} | {'orphan', id, kind, items, taken_at, owner, sent} | {'idle'} |
#         {'wait', seconds} | {'taken', id, kind, items, taken_at, owner}
_TAKE = """
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[4], 'id', 'lease', 'kind', 'items', 'taken_at', 'owner', 'sent')
if f[1] then
  if tonumber(f[2]) > now then return {'busy', f[2]} end
  redis.call('HSET', KEYS[4], 'holder', ARGV[2], 'lease', ARGV[3])
  return {'orphan', f[1], f[3], f[4], f[5], f[6], f[7] or ''}
end
if redis.call('ZCARD', KEYS[1]) == 0 then return {'idle'} end
local nxt = tonumber(redis.call('GET', KEYS[5]) or '0') or 0
if nxt > now then return {'wait', string.format('%.6f', nxt - now)} end
local found = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[5]) - 1, 'WITHSCORES')
local items_of, first = {}, nil
for i = 1, #found, 2 do
  local raw = redis.call('HGET', KEYS[2], found[i])
  if not raw then
    redis.call('ZREM', KEYS[1], found[i])
  else
    local item = cjson.decode(raw)
    items_of[#items_of + 1] = {found[i], found[i + 1], raw, item.kind, item.sku}
    first = first or item.kind
  end
end
if first == nil then return {'idle'} end
-- One kind per batch, oldest first; never past a product's older item of the other kind; one add per
-- product.  After a failed batch of one kind, the other kind goes first if it can (ARGV[8]: the failed
-- kind), so that a request failing again and again cannot hold back the other kind's forever.
local function walk(kind)
  local blocked, chosen, skus, parts, seen = {}, {}, {}, {}, {}
  for _, it in ipairs(items_of) do
    local id, seq, raw, item_kind, sku = it[1], it[2], it[3], it[4], it[5]
    if item_kind ~= kind or (item_kind == 'add' and seen[sku]) then
      blocked[sku] = true
    elseif not blocked[sku] then
      seen[sku] = true
      chosen[#chosen + 1], skus[#skus + 1] = id, sku
      parts[#parts + 1] = '[' .. seq .. ',' .. raw .. ']'
      if #chosen >= tonumber(ARGV[4]) then break end
    end
  end
  return chosen, skus, parts
end
local kind = first
if ARGV[8] ~= '' and first == ARGV[8] then
  if first == 'add' then kind = 'level' else kind = 'add' end
end
local chosen, skus, parts = walk(kind)
if #chosen == 0 and kind ~= first then
  kind = first
  chosen, skus, parts = walk(kind)
end
if #chosen == 0 then return {'idle'} end
for i, id in ipairs(chosen) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  if redis.call('HGET', KEYS[3], skus[i]) == id then redis.call('HDEL', KEYS[3], skus[i]) end
end
local items = '[' .. table.concat(parts, ',') .. ']'
local owner = 'batch:' .. ARGV[7]
redis.call('HSET', KEYS[4], 'id', ARGV[7], 'owner', owner, 'holder', ARGV[2], 'lease', ARGV[3], 'kind', kind,
           'taken_at', ARGV[1], 'items', items)
redis.call('SET', KEYS[5], string.format('%.6f', now + tonumber(ARGV[6])))
return {'taken', ARGV[7], kind, items, ARGV[1], owner}
"""

# KEYS[1] queue, KEYS[2] items, KEYS[3] levels, KEYS[4] flight, KEYS[5] next, KEYS[6] failures, KEYS[7] the
# kind of the last failed batch.  ARGV: batch id, next (Unix s; '' = leave it), failures change
# (reset|add|keep), then per returned item:
#       id, arrival, kind, sku, item JSON.
# Returns {failures in a row, superseded id, ...}: items that found a newer pending level are not put back.
_SETTLE = """
if redis.call('HGET', KEYS[4], 'id') ~= ARGV[1] then return {-1} end
local kind = redis.call('HGET', KEYS[4], 'kind')
redis.call('DEL', KEYS[4])
local superseded = {}
for i = 4, #ARGV, 5 do
  local id, seq, kind, sku, raw = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local newer = nil
  if kind == 'level' then newer = redis.call('HGET', KEYS[3], sku) end
  if newer and newer ~= id then
    superseded[#superseded + 1] = id
  else
    if kind == 'level' then redis.call('HSET', KEYS[3], sku, id) end
    redis.call('ZADD', KEYS[1], seq, id)
    redis.call('HSET', KEYS[2], id, raw)
  end
end
if ARGV[2] ~= '' then redis.call('SET', KEYS[5], ARGV[2]) end
local failures = tonumber(redis.call('GET', KEYS[6]) or '0') or 0
if ARGV[3] == 'reset' then failures = 0 elseif ARGV[3] == 'add' then failures = failures + 1 end
redis.call('SET', KEYS[6], failures)
if ARGV[3] == 'add' then
  redis.call('SET', KEYS[7], kind)
elseif ARGV[3] == 'reset' then
  redis.call('DEL', KEYS[7])
end
local reply = {failures}
for _, id in ipairs(superseded) do reply[#reply + 1] = id end
return reply
"""

# KEYS[1] flight.  ARGV: batch id.  Marks that a request of the batch is about to leave.
_MARK_SENT = """
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'sent', '1')
return 1
"""

# KEYS[1] flight.  ARGV: batch id, holder, lease until.
_RENEW = """
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'holder', ARGV[2], 'lease', ARGV[3])
return 1
"""


def sku_of(warehouse_id: str, artno: str) -> str:
    """The stock order's name of one product in one warehouse (worker.store.stock_order)."""
    return f"{warehouse_id}\x1f{artno}"


@dataclass(frozen=True)
class BatchItem:
    """One delivery waiting in (or carried by) a batch: its ref and ledger key parts, the event as the
    WMS sent it (``message``) and what the batch needs of it."""

    ref: str
    kind: str  # LEVEL or ADD
    operation: str
    key: str
    fingerprint: str
    message: Mapping[str, Any]  # the event (tasks.events.DeliveryEvent.to_message())
    enqueued_at: float
    arrival: int = 0

    @property
    def warehouse_id(self) -> str:
        return self.message["warehouse_id"]

    @property
    def artno(self) -> str:
        return self.message["artno"]

    @property
    def quantity(self) -> Any:
        return self.message["quantity"]

    @property
    def occurred_at(self) -> str:
        return self.message["occurred_at"]

    @property
    def sku(self) -> str:
        return sku_of(self.warehouse_id, self.artno)

    def to_json(self) -> str:
        return stored_json({"kind": self.kind, "sku": self.sku, "ref": self.ref, "op": self.operation,
                            "key": self.key, "fp": self.fingerprint, "enq": round(self.enqueued_at, 6),
                            "event": dict(self.message)}, where=f"batch item {self.ref}")

    @classmethod
    def from_stored(cls, raw: Mapping[str, Any], arrival: int) -> "BatchItem":
        return cls(ref=raw["ref"], kind=raw["kind"], operation=raw["op"], key=raw["key"],
                   fingerprint=raw["fp"], message=raw["event"], enqueued_at=float(raw["enq"]),
                   arrival=int(arrival))


@dataclass(frozen=True)
class Added:
    """``added`` (``replaced``: the ref of the older pending level it superseded, if any), ``known``
    (already pending) or ``superseded`` (a newer level of its product was recorded: ``newer`` its time)."""

    status: str
    replaced: str | None = None
    newer: str | None = None


@dataclass(frozen=True)
class Batch:
    """A batch in flight: ``owner`` is what its items' ledger claims are held by."""

    batch_id: str
    owner: str
    kind: str
    items: tuple[BatchItem, ...]
    taken_at: float
    orphan: bool = False  # taken again after its flusher died
    sent: bool = False  # (an orphan) a request of it may have left: its answer was lost


@dataclass(frozen=True)
class Take:
    """``taken``/``orphan`` (``batch``), ``wait`` (the next batch may go in ``wait`` s), ``idle`` (nothing
    pending) or ``busy`` (another flusher's batch is in flight)."""

    status: str
    batch: Batch | None = None
    wait: float = 0.0


def batch_keys(namespace: str) -> list[str]:
    """[queue, items, levels, seq, flight, next, failures] of the destination with ``namespace``."""
    return [f"{namespace}:flow:batch:{name}"
            for name in ("queue", "items", "levels", "seq", "flight", "next", "failures", "failed")]


class Batches:
    """One bulk destination's pending counts and its batch in flight (any redis-py client)."""

    def __init__(self, redis_client, namespace: str, *, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis_client
        self._ns = namespace
        (self._queue, self._items, self._levels, self._seq, self._flight, self._next, self._failures,
         self._failed) = batch_keys(namespace)
        self._clock = clock
        # Each with a request id (worker.store.requests): a resend replays the first reply.
        self._add = redis_client.register_script(replaying(_ADD))
        self._take = redis_client.register_script(replaying(_TAKE))
        self._settle = redis_client.register_script(replaying(_SETTLE))
        self._renew = redis_client.register_script(_RENEW)
        self._mark_sent = redis_client.register_script(_MARK_SENT)

    def _stock_last(self, sku: str) -> str:
        return f"{self._ns}:stock:last:{sku}"

    def add(self, item: BatchItem) -> Added:
        """Make ``item`` pending (coalescing levels: see the module docstring)."""
        if item.kind not in (LEVEL, ADD):
            raise ValueError(f"a batch item is a {LEVEL!r} or an {ADD!r}, not {item.kind!r}")
        reply = [text(part) for part in self._add(
            keys=[self._queue, self._items, self._levels, self._seq, self._stock_last(item.sku),
                  reply_key(self._ns, request_id())],
            args=[item.ref, item.to_json(), item.kind, item.sku, item.occurred_at])]
        if reply[0] == "added":
            return Added("added", replaced=reply[1] or None)
        if reply[0] == "superseded":
            return Added("superseded", newer=reply[1])
        return Added(reply[0])

    def take(self, holder: str, *, max_items: int, lease_seconds: float, batch_seconds: float,
             look_at: int | None = None) -> Take:
        """Take the next batch (see the module docstring).  ``look_at``: how many pending items the walk
        may look at to fill it (default 4 × max_items)."""
        now = self._clock()
        batch_id = f"{int(now)}-{uuid.uuid4().hex[:10]}"
        failed = text(self._redis.get(self._failed)) or ""
        reply = self._take(keys=[self._queue, self._items, self._levels, self._flight, self._next,
                                 reply_key(self._ns, request_id())], args=[
            f"{now:.6f}", holder, f"{now + lease_seconds:.6f}", int(max_items),
            int(look_at or max_items * 4), f"{batch_seconds:.6f}", batch_id, failed])
        status = text(reply[0])
        if status in ("taken", "orphan"):
            parts = [text(part) for part in reply[1:]]
            items = tuple(BatchItem.from_stored(raw, arrival) for arrival, raw in json.loads(parts[2]))
            return Take(status, Batch(parts[0], parts[4], parts[1], items, float(parts[3]),
                                      orphan=status == "orphan", sent=len(parts) > 5 and parts[5] == "1"))
        if status == "wait":
            return Take(status, wait=float(text(reply[1])))
        return Take(status)

    def settle(self, batch: Batch, returned: Iterable[BatchItem] = (), *, next_at: float | None = None,
               failures: str = "keep") -> tuple[int, list[str]]:
        """The batch is over: ``returned`` items go back to pending in their old place (unless a newer level
        of their product is pending: then they are superseded), no batch is taken before ``next_at``, and
        the count of failed batches in a row is ``reset``, ``add``-ed to or kept.  Returns that count and
        the refs of the returned items that were superseded."""
        if failures not in ("reset", "add", "keep"):
            raise ValueError(f"failures must be reset, add or keep, not {failures!r}")
        args: list[Any] = [batch.batch_id, "" if next_at is None else f"{next_at:.6f}", failures]
        for item in returned:
            args += [item.ref, item.arrival, item.kind, item.sku, item.to_json()]
        reply = self._settle(keys=[self._queue, self._items, self._levels, self._flight, self._next,
                                   self._failures, self._failed, reply_key(self._ns, request_id())],
                             args=args)
        return int(reply[0]), [text(ref) for ref in reply[1:]]

    def mark_sent(self, batch: Batch) -> bool:
        """A request of ``batch`` is about to leave: should its flusher die now, the answer is lost."""
        return bool(int(self._mark_sent(keys=[self._flight], args=[batch.batch_id])))

    def holds(self, ref: str) -> bool:
        """Is delivery ``ref`` pending here?  (The stranded sweep leaves such deliveries alone.)"""
        return bool(self._redis.hexists(self._items, ref))

    def carried(self) -> tuple[float | None, frozenset[str]]:
        """(the in-flight batch's lease expiry, the refs of the deliveries it carries) in one round trip;
        (None, an empty set) when no batch is in flight.  The stranded sweep reads it once per sweep."""
        lease, items = self._redis.hmget(self._flight, "lease", "items")
        if lease is None:
            return None, frozenset()
        return float(text(lease)), frozenset(raw["ref"] for _, raw in json.loads(text(items) or "[]"))

    def peek(self) -> tuple[int, float | None, float | None]:
        """(pending items, the in-flight batch's lease expiry or None, the next take's earliest time or
        None) in one round trip: what a flusher looks at before asking the gate."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(self._queue).hget(self._flight, "lease").get(self._next)
        pending, lease, next_at = pipe.execute()
        return (int(pending), float(text(lease)) if lease is not None else None,
                float(text(next_at)) if next_at is not None else None)

    def renew(self, batch: Batch, holder: str, lease_seconds: float) -> bool:
        """Extend the batch's lease (a long split); False if it is no longer in flight."""
        return bool(int(self._renew(keys=[self._flight], args=[
            batch.batch_id, holder, f"{self._clock() + lease_seconds:.6f}"])))

    def pending_count(self) -> int:
        return int(self._redis.zcard(self._queue))

    def in_flight(self) -> dict | None:
        """The batch in flight: id, size, kind, taken_at, lease — or None."""
        raw = {text(k): text(v) for k, v in self._redis.hgetall(self._flight).items()}
        if not raw.get("id"):
            return None
        return {"id": raw["id"], "kind": raw.get("kind"), "size": len(json.loads(raw.get("items") or "[]")),
                "taken_at": float(raw.get("taken_at") or 0), "lease": float(raw.get("lease") or 0)}

    def failures(self) -> int:
        return int(text(self._redis.get(self._failures)) or 0)

    def next_at(self) -> float | None:
        raw = self._redis.get(self._next)
        return float(text(raw)) if raw is not None else None
