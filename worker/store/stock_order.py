"""Order for absolute stock values: the newest count wins.

An absolute stock value says "there are N of artno in warehouse W as of occurred_at".  One that is older
than the last value applied for the same (warehouse_id, artno) is ``superseded``, never sent.  While one
absolute value for a SKU is being sent, another waits (a short lock), so two counts cannot cross on the
wire and leave the older one applied.  Relative adjustments commute and take no part in this.

The lock expires by itself (``lock_seconds``: one send's timeouts and some slack), so a sender that dies
lets go of the turn then.  Only the newest count recorded may take the turn next (an older one is
superseded), so a count waits at most one holder's send.  Waiting is no attempt: the send steps
(worker.flow.send_steps) take the turn *before* the claim, and a count that finds it busy is not claimed —
it is moved to ``waiting`` with :data:`TURN_WAIT_REASON`.

Per destination (its namespace; ``wms`` for the first):

    <ns>:stock:last:<warehouse>\x1f<artno>   the newest occurred_at recorded for sending
    <ns>:stock:lock:<warehouse>\x1f<artno>   the owner sending a count now (expires)"""
from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from worker.encoding import text

# The reason a count's story gives for waiting while another count of its SKU is on the wire (the start of
# it: the rest names the holder).
TURN_WAIT_REASON = "waiting for its SKU turn"

# Lua helpers (the scripts below, and the send steps of worker.flow.send_steps, which take a count's turn in
# the same script as its claim).  Each takes its keys as arguments.
#   stock_newest(k_last, at) -> the newest occurred_at recorded for sending, ``at`` recorded first if newer
#   stock_turn(k_last, k_lock, at, owner, lock_ms) -> {'acquired', ''} | {'superseded', newest} |
#       {'busy', holder}: ``at`` recorded as the SKU's latest (unless a newer one is), then its turn taken
#   stock_release(k_lock, owner) -> 1 if ``owner`` held the turn (now given back), else 0
STOCK_LUA = """
local function stock_newest(k_last, at)
  local last = redis.call('GET', k_last)
  if (not last) or last < at then
    redis.call('SET', k_last, at)
    return at
  end
  return last
end

local function stock_turn(k_last, k_lock, at, owner, lock_ms)
  local newest = stock_newest(k_last, at)
  local holder = redis.call('GET', k_lock)
  if newest > at then
    if holder == owner then redis.call('DEL', k_lock) end
    return {'superseded', newest}
  end
  if holder and holder ~= owner then return {'busy', holder} end
  redis.call('SET', k_lock, owner, 'PX', lock_ms)
  return {'acquired', ''}
end

local function stock_release(k_lock, owner)
  if redis.call('GET', k_lock) == owner then return redis.call('DEL', k_lock) end
  return 0
end
"""

# A count's claim in its SKU's turn, for the send steps' scripts (worker.flow.send_steps), which put the
# ledger's Lua functions (worker.store.ledger_scripts.STEPS: ``claim_record``, ``told``, ``moved``...) and
# STOCK_LUA before it, KEYS[1..10] being the ledger's.  The turn first (``stock_turn``: the count recorded
# as the SKU's latest, then the turn taken), then the claim — unless another count of the SKU is on the
# wire: then nothing is claimed (waiting for a turn is no attempt) and the record moves to ``waiting``, its
# story saying so once however often it looks.  ``r``: the record as ``accept_record`` reads it (HMGET s,
# e, l, b, rs, n, h).
#   claim_in_turn(r, owner, now, expiry, member, k_last, k_lock, at, lock_ms) -> the turn's
#       {verdict, detail}, and the claim's reply ({} while it waits)
CLAIM_IN_TURN_LUA = """
local TURN_WAIT = %s

-- Is the record already waiting for its turn (its latest state change says so)?
local function waits_for_turn(r)
  if r[1] ~= 'waiting' or not r[7] then return false end
  local story = cjson.decode(r[7])
  local last = story[#story]
  return type(last) == 'table' and last[3] == 'waiting' and type(last[4]) == 'string'
    and string.sub(last[4], 1, #TURN_WAIT) == TURN_WAIT
end

local function wait_for_turn(r, now, member, holder)
  if waits_for_turn(r) then return end
  local reason = TURN_WAIT .. ': another count of this SKU is being sent (by ' .. holder ..
    '); not sent, no attempt spent'
  if r[3] then redis.call('HDEL', KEYS[1], 'l') end
  local entry = history_entry(now, r[1], 'waiting', reason, '', '')
  redis.call('HSET', KEYS[1], 's', 'waiting', 'h', told(entry, r[7]))
  moved(member, r[1], 'waiting', now, 0, 0)
end

local function claim_in_turn(r, owner, now, expiry, member, k_last, k_lock, at, lock_ms)
  local turn = stock_turn(k_last, k_lock, at, owner, lock_ms)
  if turn[1] == 'busy' then
    wait_for_turn(r, now, member, turn[2])
    return turn, {}
  end
  return turn, claim_record(r, owner, now, expiry, member)
end
""" % json.dumps(TURN_WAIT_REASON)

# KEYS[1] last applied occurred_at, KEYS[2] the send lock; ARGV: occurred_at, owner, lock ms
_ACQUIRE = STOCK_LUA + """
local last = redis.call('GET', KEYS[1])
if last and last > ARGV[1] then return {'superseded', last} end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[2] then return {'busy', holder} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return {'acquired', last or ''}
"""

# KEYS[1] last applied, KEYS[2] lock; ARGV: occurred_at, owner
_APPLIED = STOCK_LUA + """
stock_newest(KEYS[1], ARGV[1])
stock_release(KEYS[2], ARGV[2])
return 1
"""

# KEYS[1] the lock; ARGV: owner
_RELEASE = STOCK_LUA + """
return stock_release(KEYS[1], ARGV[1])
"""


@dataclass(frozen=True)
class StockTurn:
    """The answer to "may this absolute value be sent now?": acquired, superseded or busy."""

    verdict: str
    detail: str = ""


class StockOrder:
    def __init__(self, client: redis.Redis, *, lock_seconds: float, namespace: str = "wms") -> None:
        """``namespace``: one destination's (``wms`` for the first): each destination applies its own
        counts in their own order."""
        self._ns = namespace
        self._acquire = client.register_script(_ACQUIRE)
        self._applied = client.register_script(_APPLIED)
        self._release = client.register_script(_RELEASE)
        self._lock_ms = int(lock_seconds * 1000)

    @property
    def lock_ms(self) -> int:
        """How long a turn is held at most (milliseconds): a sender that dies lets go of it so."""
        return self._lock_ms

    def keys(self, warehouse_id: str, artno: str) -> list[str]:
        """[the newest count recorded, the turn's lock] of one SKU (for scripts that take a turn)."""
        sku = f"{warehouse_id}\x1f{artno}"
        return [f"{self._ns}:stock:last:{sku}", f"{self._ns}:stock:lock:{sku}"]

    def acquire(self, warehouse_id: str, artno: str, occurred_at: str, owner: str) -> StockTurn:
        verdict, detail = self._acquire(keys=self.keys(warehouse_id, artno),
                                        args=[occurred_at, owner, self._lock_ms])
        return StockTurn(text(verdict), text(detail))

    def applied(self, warehouse_id: str, artno: str, occurred_at: str, owner: str) -> None:
        self._applied(keys=self.keys(warehouse_id, artno), args=[occurred_at, owner])

    def release(self, warehouse_id: str, artno: str, owner: str) -> None:
        self._release(keys=self.keys(warehouse_id, artno)[1:], args=[owner])
