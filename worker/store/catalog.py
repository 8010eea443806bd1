"""A destination's catalog: what the WMS's artno is called there — its product, its variant, the title and
whether it is active — and the deliveries that wait for an artno's row.

ka-ching names stock by product (and variant), Stock2Shop by a product with its variants and a title,
StockTrim by its product id; the WMS counts by artno.  One row per artno says which (``wms-relay catalog
import`` writes them, worker.support.catalog; docs/destinations.md, "The catalog").  Each destination's
catalog lives in its namespace (``wms:kaching``, ``wms:stock2shop``, ``wms:stocktrim``):

    <ns>:catalog:rows                 hash: artno -> the row as canonical JSON {"active", "product_code",
                                      "title", "variant_code"} (equal rows are equal strings)
    <ns>:catalog:staging:<import id>  hash: artno -> row JSON, an import's rows while they are uploaded (in
                                      chunks); the import's one merge script then applies and deletes it
                                      (expires after STAGING_SECONDS if the import died on the way)
    <ns>:catalog:waiting              sorted set: ref -> since: deliveries waiting for their artno's row
                                      (``required`` mode: reason ``unmapped``, worker.delivery.catalog_wait)
    <ns>:catalog:waiting:artno        hash: ref -> the artno it waits for

The store-call rule (worker.store.requests): the staging writes are plain HSETs of given values (rule 2);
the merge — rows added, changed, removed, the waiting deliveries it releases — is one script with a request
id (rule 3): a resend replays its reply, so an import releases each delivery once and reports the counts it
made.  Registering a waiting delivery (ZADD NX, HSET) and forgetting it (ZREM, HDEL) are plain writes.  The
ledger stays the truth of a waiting delivery: a ref listed here whose delivery moved on (a person discarded
it) is only a spare entry — released, it runs and finds its delivery settled.

Lookups for issue 20 and the delivery: :meth:`Catalog.row`, :meth:`Catalog.rows`; what an import changed:
:class:`CatalogChange` (``changed_artnos``, ``removed_artnos``).
"""
from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping

from worker.encoding import canonical_json, text
from worker.store.requests import replaying, reply_key, request_id

STAGING_SECONDS = 3600
STAGING_CHUNK = 1000  # rows per staging write
COLUMNS = ("artno", "product_code", "variant_code", "title", "active")
ACTIVE_VALUES = ("true", "false")

# KEYS[1] rows, KEYS[2] staging, KEYS[3] waiting (zset), KEYS[4] waiting artnos (hash), KEYS[5] reply.
# ARGV[1] '1': replace (rows not staged are removed) | '0': merge.
# Returns the JSON text {added, changed, removed, changed_artnos, removed_artnos, released}; released: the
# refs of the waiting deliveries whose artno has a row now (taken off the waiting list).
_MERGE = """
local added, changed, removed = 0, 0, 0
local changed_artnos, removed_artnos, released = {}, {}, {}
local staged = redis.call('HGETALL', KEYS[2])
local seen = {}
for i = 1, #staged, 2 do
  local artno, row = staged[i], staged[i + 1]
  seen[artno] = true
  local old = redis.call('HGET', KEYS[1], artno)
  if old ~= row then
    if old then changed = changed + 1 else added = added + 1 end
    changed_artnos[#changed_artnos + 1] = artno
    redis.call('HSET', KEYS[1], artno, row)
  end
end
if ARGV[1] == '1' then
  for _, artno in ipairs(redis.call('HKEYS', KEYS[1])) do
    if not seen[artno] then
      redis.call('HDEL', KEYS[1], artno)
      removed = removed + 1
      removed_artnos[#removed_artnos + 1] = artno
    end
  end
end
redis.call('DEL', KEYS[2])
local waiting = redis.call('HGETALL', KEYS[4])
for i = 1, #waiting, 2 do
  if redis.call('HEXISTS', KEYS[1], waiting[i + 1]) == 1 then
    released[#released + 1] = waiting[i]
    redis.call('HDEL', KEYS[4], waiting[i])
    redis.call('ZREM', KEYS[3], waiting[i])
  end
end
return cjson.encode({added = added, changed = changed, removed = removed, changed_artnos = changed_artnos,
                     removed_artnos = removed_artnos, released = released})
"""


@dataclass(frozen=True)
class CatalogRow:
    """What one artno is called at a destination.  ``variant_code`` "" : the product has no variants
    there (ka-ching: a plain count; Stock2Shop: one variant coded as the product).  ``active``: "true" or
    "false" (Stock2Shop's ``product_active``)."""

    artno: str
    product_code: str
    variant_code: str = ""
    title: str = ""
    active: str = "true"

    @classmethod
    def identity(cls, artno: str) -> "CatalogRow":
        """The row of an artno without one where the destination's catalog is ``identity``: its own
        product."""
        return cls(artno, artno)

    def stored(self) -> str:
        """The stored form (without the artno, which is the hash field): canonical JSON."""
        return canonical_json({k: v for k, v in asdict(self).items() if k != "artno"})

    @classmethod
    def from_stored(cls, artno: str, raw: Any) -> "CatalogRow":
        fields = json.loads(text(raw))
        return cls(artno, fields["product_code"], fields.get("variant_code", ""), fields.get("title", ""),
                   fields.get("active", "true"))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CatalogChange:
    """What one import did: rows ``added``, ``changed`` and ``removed`` (with ``--replace``), the artnos of
    the rows added or changed and of those removed, and the refs of the deliveries it released."""

    added: int
    changed: int
    removed: int
    changed_artnos: tuple[str, ...] = ()
    removed_artnos: tuple[str, ...] = ()
    released: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"added": self.added, "changed": self.changed, "removed": self.removed,
                "released": len(self.released)}


@dataclass(frozen=True)
class WaitingDelivery:
    """A delivery waiting for its artno's row: its ref, the artno, since when."""

    ref: str
    artno: str
    since: float


class Catalog:
    """One destination's catalog and the deliveries waiting for rows of it (any redis-py client)."""

    def __init__(self, redis_client, namespace: str) -> None:
        self._redis = redis_client
        self._ns = namespace
        self._rows = f"{namespace}:catalog:rows"
        self._waiting = f"{namespace}:catalog:waiting"
        self._waiting_artno = f"{namespace}:catalog:waiting:artno"
        self._merge = redis_client.register_script(replaying(_MERGE))

    def __repr__(self) -> str:
        return f"Catalog({self._ns!r})"

    # -- rows ------------------------------------------------------------------------------------------
    def row(self, artno: str) -> CatalogRow | None:
        """``artno``'s row, or None when it has none."""
        raw = self._redis.hget(self._rows, artno)
        return None if raw is None else CatalogRow.from_stored(artno, raw)

    def rows(self, artnos: Iterable[str]) -> dict[str, CatalogRow]:
        """The rows of ``artnos`` that have one (one round trip)."""
        wanted = list(dict.fromkeys(artnos))
        if not wanted:
            return {}
        found = self._redis.hmget(self._rows, wanted)
        return {artno: CatalogRow.from_stored(artno, raw)
                for artno, raw in zip(wanted, found) if raw is not None}

    def all_rows(self) -> list[CatalogRow]:
        """Every row, by artno."""
        raw = self._redis.hgetall(self._rows)
        return sorted((CatalogRow.from_stored(text(artno), value) for artno, value in raw.items()),
                      key=lambda row: row.artno)

    def count(self) -> int:
        return int(self._redis.hlen(self._rows))

    def load(self, rows: Iterable[CatalogRow], *, replace: bool = False) -> CatalogChange:
        """Write an import's rows, all or none: staged in chunks, then merged by one script (see the module
        docstring).  ``replace``: rows not among ``rows`` are removed.  The deliveries waiting for an artno
        that has a row now are taken off the waiting list and returned (``released``): the caller runs
        them."""
        staging = f"{self._ns}:catalog:staging:{uuid.uuid4().hex}"
        batch: dict[str, str] = {}
        for row in rows:
            batch[row.artno] = row.stored()
            if len(batch) >= STAGING_CHUNK:
                self._stage(staging, batch)
                batch = {}
        if batch:
            self._stage(staging, batch)
        reply = json.loads(text(self._merge(
            keys=[self._rows, staging, self._waiting, self._waiting_artno, reply_key(self._ns, request_id())],
            args=["1" if replace else "0"])))
        self._redis.delete(staging)  # a replayed merge did not delete this call's staging
        return CatalogChange(int(reply["added"]), int(reply["changed"]), int(reply["removed"]),
                             tuple(reply["changed_artnos"] or ()), tuple(reply["removed_artnos"] or ()),
                             tuple(reply["released"] or ()))

    def _stage(self, staging: str, batch: Mapping[str, str]) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(staging, mapping=dict(batch)).expire(staging, STAGING_SECONDS)
        pipe.execute()

    # -- deliveries waiting for a row -----------------------------------------------------------------------
    def wait_for_row(self, ref: str, artno: str, since: float) -> None:
        """Delivery ``ref`` waits for ``artno``'s row (listed since its first wait)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.zadd(self._waiting, {ref: since}, nx=True).hset(self._waiting_artno, ref, artno)
        pipe.execute()

    def stop_waiting(self, ref: str) -> None:
        """Delivery ``ref`` no longer waits (it found its row)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(self._waiting, ref).hdel(self._waiting_artno, ref)
        pipe.execute()

    def waiting(self, limit: int = 1000) -> list[WaitingDelivery]:
        """The deliveries listed as waiting for a row, oldest first (at most ``limit``)."""
        listed = [(text(ref), float(since)) for ref, since in
                  self._redis.zrange(self._waiting, 0, max(limit, 1) - 1, withscores=True)]
        if not listed:
            return []
        artnos = self._redis.hmget(self._waiting_artno, [ref for ref, _ in listed])
        return [WaitingDelivery(ref, text(artno) if artno is not None else "", since)
                for (ref, since), artno in zip(listed, artnos)]

    def waiting_count(self) -> int:
        return int(self._redis.zcard(self._waiting))
