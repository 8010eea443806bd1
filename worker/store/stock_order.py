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

_ACQUIRE = """
-- KEYS[1] last applied occurred_at, KEYS[2] the send lock; ARGV: occurred_at, owner, lock ms
local last = redis.call('GET', KEYS[1])
if last and last > ARGV[1] then return {'superseded', last} end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[2] then return {'busy', holder} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return {'acquired', last or ''}
"""

_APPLIED = """
-- KEYS[1] last applied, KEYS[2] lock; ARGV: occurred_at, owner
local last = redis.call('GET', KEYS[1])
if (not last) or last < ARGV[1] then redis.call('SET', KEYS[1], ARGV[1]) end
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
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

    def _keys(self, warehouse_id: str, artno: str) -> list[str]:
        sku = f"{warehouse_id}\x1f{artno}"
        return [f"{self._ns}:stock:last:{sku}", f"{self._ns}:stock:lock:{sku}"]

    def acquire(self, warehouse_id: str, artno: str, occurred_at: str, owner: str) -> StockTurn:
        verdict, detail = self._acquire(keys=self._keys(warehouse_id, artno),
                                        args=[occurred_at, owner, self._lock_ms])
        return StockTurn(text(verdict), text(detail))

    def applied(self, warehouse_id: str, artno: str, occurred_at: str, owner: str) -> None:
        self._applied(keys=self._keys(warehouse_id, artno), args=[occurred_at, owner])

    def release(self, warehouse_id: str, artno: str, owner: str) -> None:
        self._release(keys=self._keys(warehouse_id, artno)[1:], args=[owner])
