"""Dispatch updates, publishes and deletes wait for their create.

The WMS names a shipment by its transaction_id; Trademax names it by the dispatch_id it answered the
create with.  The ledger's delivered ``dispatch.create`` record for that transaction_id holds it.  An
event whose create is not delivered yet waits: it is parked in the retry schedule for a re-check, and
registered here so that the create's delivery wakes it at once instead of at the next check."""
from __future__ import annotations

import redis

from worker.encoding import text
from worker.store.ledger import Ledger

_TAKE_WAITERS = """
local members = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
return members
"""


class DispatchWaiters:
    def __init__(self, client: redis.Redis, ledger: Ledger) -> None:
        self._client = client
        self._ledger = ledger
        self._take = client.register_script(_TAKE_WAITERS)

    @staticmethod
    def _waiters_key(transaction_id: str) -> str:
        return f"wms:dispatch:waiters:{transaction_id}"

    def dispatch_id_for(self, transaction_id: str):
        """Trademax's dispatch_id for the shipment, or None while its create is not delivered."""
        record = self._ledger.get("dispatch.create", transaction_id)
        if record is None or record.state != "delivered":
            return None
        return (record.result or {}).get("dispatch_id")

    def wait_for(self, transaction_id: str, ref: str) -> None:
        """Delivery ``ref`` waits for this shipment's create."""
        self._client.sadd(self._waiters_key(transaction_id), ref)

    def take_waiters(self, transaction_id: str) -> list[str]:
        """The refs of the deliveries waiting for this shipment's create (each returned once)."""
        members = self._take(keys=[self._waiters_key(transaction_id)])
        return [text(m) for m in members]
