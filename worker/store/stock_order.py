"""Order for absolute stock values: the newest count wins.

An absolute stock value says "there are N of artno in warehouse W as of occurred_at".  One that is older
than the last value applied for the same (warehouse_id, artno) is ``superseded``, never sent.  While one
absolute value for a SKU is being sent, another waits (a short lock), so two counts cannot cross on the
wire and leave the older one applied.  Relative adjustments commute and take no part in this.

Per destination (its namespace; ``wms`` for the first):

    <ns>:stock:last:<warehouse>\x1f<artno>   the newest occurred_at recorded for sending
    <ns>:stock:lock:<warehouse>\x1f<artno>   the owner sending a count now (expires)"""
from __future__ import annotations

from dataclasses import dataclass

import redis

from worker.encoding import text

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

# KEYS[1] last applied, KEYS[2] lock; ARGV: occurred_at, owner, lock ms.  APPLIED then ACQUIRE in one step.
_TAKE_TURN = STOCK_LUA + """
return stock_turn(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
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
        self._take_turn = client.register_script(_TAKE_TURN)
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

    def take_turn(self, warehouse_id: str, artno: str, occurred_at: str, owner: str) -> StockTurn:
        """:meth:`applied`, then :meth:`acquire`, in one round trip."""
        verdict, detail = self._take_turn(keys=self.keys(warehouse_id, artno),
                                          args=[occurred_at, owner, self._lock_ms])
        return StockTurn(text(verdict), text(detail))

    def release(self, warehouse_id: str, artno: str, owner: str) -> None:
        self._release(keys=self.keys(warehouse_id, artno)[1:], args=[owner])
