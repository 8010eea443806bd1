"""Products a destination should learn of, waiting to be sent — the catalog rows an import added or changed
(worker.delivery.product_sync: StockTrim's ``POST /api/Products``).

    <namespace>:products:pending    hash: product id -> the request body (JSON) still to send
    <namespace>:products:refused    hash: product id -> {"body", "why", "at"}: refused by the destination,
                                    for a person (a newer import of the row queues it again)

Every write is idempotent by itself (worker.store.requests, rule 2): queuing sets the newest body (and
clears an old refusal); ``sent`` and ``refused`` remove a pending body only while it is the one that was
sent (a newer import's body stays pending), so a resend after a store timeout lands the same state."""
from __future__ import annotations

import json
from typing import Any, Mapping

from worker.encoding import text

# KEYS: pending, refused.  ARGV: product id, the body sent, refusal JSON ("" = delivered).
_SETTLE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) end
  return 1
end
return 0
"""


class ProductSync:
    def __init__(self, redis_client, namespace: str) -> None:
        self._redis = redis_client
        self._pending = f"{namespace}:products:pending"
        self._refused = f"{namespace}:products:refused"
        self._settle = redis_client.register_script(_SETTLE)

    def queue(self, bodies: Mapping[str, Mapping[str, Any]]) -> int:
        """Queue each product's body (its newest replaces an older one not sent yet); how many."""
        if not bodies:
            return 0
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._pending, mapping={pid: json.dumps(dict(body), sort_keys=True)
                                          for pid, body in bodies.items()})
        pipe.hdel(self._refused, *bodies)
        pipe.execute()
        return len(bodies)

    def pending(self, limit: int = 100) -> list[tuple[str, str]]:
        """Up to ``limit`` (product id, body JSON) still to send."""
        found = []
        for pid, body in self._redis.hscan_iter(self._pending, count=limit):
            found.append((text(pid), text(body)))
            if len(found) >= limit:
                break
        return found

    def sent(self, product_id: str, body: str) -> bool:
        return bool(self._settle(keys=[self._pending, self._refused], args=[product_id, body, ""]))

    def refused(self, product_id: str, body: str, why: str, at: float) -> bool:
        refusal = json.dumps({"body": json.loads(body), "why": why, "at": at}, sort_keys=True)
        return bool(self._settle(keys=[self._pending, self._refused], args=[product_id, body, refusal]))

    def counts(self) -> dict[str, int]:
        return {"pending": int(self._redis.hlen(self._pending)),
                "refused": int(self._redis.hlen(self._refused))}

    def refusals(self) -> dict[str, dict]:
        return {text(k): json.loads(text(v)) for k, v in self._redis.hgetall(self._refused).items()}
