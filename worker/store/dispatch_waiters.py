"""Dispatch updates, publishes and deletes wait for their create — and, when Trademax's answer to the
create carried no dispatch id, for a person to supply it.

The WMS names a shipment by its transaction_id; Trademax names it by the dispatch_id it answered the
create with.  The ledger's delivered ``dispatch.create`` record for that transaction_id holds it.  An
event whose create is not delivered yet waits: it is parked in the retry schedule for a re-check, and
registered here so that the create's delivery wakes it at once instead of at the next check.

A create can be delivered without an id: a resent create answered 452 (request duplication) whose body
carries no ``dispatch_id`` — Trademax's document never promises one there.  Its followers then wait for a
person (``wms-relay dispatch set-id``, worker.support.dispatch_ids), and the shipment is listed here so that
``wms-relay status`` can name it without reading every record.

    wms:dispatch:waiters:<transaction_id>   set: delivery refs of the events waiting for that shipment
    wms:dispatch:id_unknown                 sorted set: transaction_id -> when its create was found
                                            delivered without a dispatch id (removed once a person
                                            records it; the ledger stays the truth: a listed shipment
                                            whose create has an id, or is gone, is not reported)

Every write here is a plain SADD / ZADD NX / ZREM / DEL or the take script (the waiters it takes are
rescheduled anyway): a resend lands the same state (worker.store.requests, rule 2)."""
from __future__ import annotations

from dataclasses import dataclass

import redis

from worker.encoding import text
from worker.store.ledger import Ledger

_TAKE_WAITERS = """
local members = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
return members
"""
ID_UNKNOWN_KEY = "wms:dispatch:id_unknown"


@dataclass(frozen=True)
class UnknownDispatchId:
    """A shipment whose create was delivered without Trademax's dispatch id: since when, and how many of
    its updates, publishes and deletes wait for a person to record it."""

    transaction_id: str
    since: float
    waiting: int


class DispatchWaiters:
    def __init__(self, client: redis.Redis, ledger: Ledger) -> None:
        self._client = client
        self._ledger = ledger
        self._take = client.register_script(_TAKE_WAITERS)

    @staticmethod
    def waiters_key(transaction_id: str) -> str:
        """The set of the deliveries waiting for this shipment (the delivered step of a create takes it:
        worker.flow.send_steps)."""
        return f"wms:dispatch:waiters:{transaction_id}"

    def dispatch_id_for(self, transaction_id: str):
        """Trademax's dispatch_id for the shipment, or None while its create is not delivered (or was
        delivered without one: :meth:`id_unknown`)."""
        record = self._ledger.get("dispatch.create", transaction_id)
        if record is None or record.state != "delivered":
            return None
        return (record.result or {}).get("dispatch_id")

    def id_unknown(self, transaction_id: str) -> bool:
        """The shipment's create is delivered, and its stored answer has no dispatch id."""
        record = self._ledger.get("dispatch.create", transaction_id)
        return (record is not None and record.state == "delivered"
                and (record.result or {}).get("dispatch_id") in (None, ""))

    def wait_for(self, transaction_id: str, ref: str) -> None:
        """Delivery ``ref`` waits for this shipment's create."""
        self._client.sadd(self.waiters_key(transaction_id), ref)

    def take_waiters(self, transaction_id: str) -> list[str]:
        """The refs of the deliveries waiting for this shipment's create (each returned once)."""
        members = self._take(keys=[self.waiters_key(transaction_id)])
        return [text(m) for m in members]

    # -- creates delivered without a dispatch id -------------------------------------------------------

    def mark_id_unknown(self, transaction_id: str, at: float) -> None:
        """List the shipment as one whose dispatch id a person must supply (kept at its first time)."""
        self._client.zadd(ID_UNKNOWN_KEY, {transaction_id: at}, nx=True)

    def id_recorded(self, transaction_id: str) -> None:
        """A person recorded its id: no longer listed."""
        self._client.zrem(ID_UNKNOWN_KEY, transaction_id)

    def unknown_ids(self, limit: int = 1000) -> list[UnknownDispatchId]:
        """The listed shipments whose create still has no dispatch id, oldest first (at most ``limit``
        listed ones are looked at), each with how many of its events wait for the id."""
        listed = [(text(member), float(score)) for member, score in
                  self._client.zrange(ID_UNKNOWN_KEY, 0, max(limit, 1) - 1, withscores=True)]
        found = []
        for transaction_id, since in listed:
            if self.id_unknown(transaction_id):
                waiting = int(self._client.scard(self.waiters_key(transaction_id)))
                found.append(UnknownDispatchId(transaction_id, since, waiting))
        return found
