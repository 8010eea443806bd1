"""A dispatch's product lines as the WMS built it up, and which delivery made its sales order.

A draft dispatch is built by its create and its updates; the event that makes it final (a
``dispatch.publish``, a publishing ``dispatch.update``) may carry no lines at all.  Its sales order
(worker.delivery.sales_orders) needs the lines of the dispatch as final, so the relay notes every
dispatch event's lines as it takes the event in (the fan-out), merged by ``line_no``, a line's newer event
winning; and a shipment's sales order is made once, by the first delivery that claims it — a dispatch
published twice in the WMS's stream makes one sales order.

    <namespace>:dispatch:<transaction_id>        hash: warehouse_id, created (its create was noted),
                                                 line:<line_no> -> {"line_no", "artno",
                                                 "quantity", "at"} (``at``: its event's occurred_at, Unix
                                                 seconds); expires KEEP_SECONDS after its last note
    <namespace>:dispatch:<transaction_id>:sold   the ref of the delivery whose sales order it is

Both writes are idempotent by themselves (worker.store.requests, rule 2): noting the same event again
leaves the same hash (a line is replaced only by an event at least as new), and claiming the sale again
with the same ref answers the same owner.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from worker.encoding import text

KEEP_SECONDS = 90 * 86400

# KEYS: the hash.  ARGV: keep seconds, warehouse_id ("" = unchanged), at, created (1/0), then line_no,
# json pairs.
_NOTE = """
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'warehouse_id', ARGV[2]) end
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'created', '1') end
local at = tonumber(ARGV[3])
for i = 5, #ARGV, 2 do
  local field = 'line:' .. ARGV[i]
  local old = redis.call('HGET', KEYS[1], field)
  if (not old) or tonumber(cjson.decode(old)['at']) <= at then
    redis.call('HSET', KEYS[1], field, ARGV[i + 1])
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

# KEYS: the sold key.  ARGV: ref, keep seconds.  Returns the owner's ref.
_CLAIM_SALE = """
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
return redis.call('GET', KEYS[1])
"""


class DispatchLines:
    def __init__(self, redis_client, namespace: str) -> None:
        self._redis = redis_client
        self._prefix = f"{namespace}:dispatch:"
        self._note = redis_client.register_script(_NOTE)
        self._claim = redis_client.register_script(_CLAIM_SALE)

    def note(self, transaction_id: str, warehouse_id: str | None, at: float,
             lines: Iterable[Mapping[str, Any]], *, created: bool = False) -> None:
        """Note one dispatch event's lines (``line_no``, ``artno``, ``quantity``) and warehouse;
        ``created``: the event is the shipment's create."""
        args: list[Any] = [KEEP_SECONDS, warehouse_id or "", f"{at:.6f}", "1" if created else "0"]
        for line in lines:
            args += [str(line["line_no"]), json.dumps({"line_no": line["line_no"], "artno": line["artno"],
                                                       "quantity": line["quantity"], "at": at})]
        self._note(keys=[self._prefix + transaction_id], args=args)

    def noted(self, transaction_id: str) -> dict | None:
        """``{"warehouse_id", "created", "lines"}`` of the shipment (lines by line_no), or None when no
        event of it was noted."""
        raw = {text(k): text(v) for k, v in self._redis.hgetall(self._prefix + transaction_id).items()}
        if not raw:
            return None
        lines = [json.loads(v) for k, v in raw.items() if k.startswith("line:")]
        return {"warehouse_id": raw.get("warehouse_id") or None, "created": raw.get("created") == "1",
                "lines": sorted(lines, key=lambda line: int(line["line_no"]))}

    def claim_sale(self, transaction_id: str, ref: str) -> str:
        """The ref of the delivery whose sales order the shipment is: ``ref`` if it is the first to ask."""
        return text(self._claim(keys=[f"{self._prefix}{transaction_id}:sold"], args=[ref, KEEP_SECONDS]))
