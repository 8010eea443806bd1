"""StockTrim's forecast run: at most once per ``STOCKTRIM_FORECAST_EVERY_MINUTES``, and only after the
inventory or the demand (a delivered sales order) changed since the last run — never per event (a run
recomputes every forecast and takes minutes).  The StockTrim client marks them changed after each delivered
inventory post and sales order; the scheduler
calls :meth:`ForecastRuns.run_if_due` every few seconds (one Lua call), so whichever scheduler takes the
turn triggers the run, once.

    wms:stocktrim:forecast:changed_at   the last delivered inventory post or sales order (Unix seconds)
    wms:stocktrim:forecast:ran_at       when the last run was triggered (StockTrim answered 2xx)
    wms:stocktrim:forecast:tried_at     when a scheduler last took the turn (a failed trigger is tried
                                        again a minute later, not on every tick)
    wms:stocktrim:request:<id>          the turn's reply, replayed if the call is resent after a timeout
                                        (``worker.store.requests``: a resent turn that had been taken
                                        must still say so, or the run waits a minute for nothing)
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from worker.destinations.stocktrim.client import INVENTORY_CHANGED_KEY, StockTrimClient
from worker.encoding import text
from worker.errors import DestinationError
from worker.store.requests import replaying, reply_key, request_id

log = logging.getLogger("wms_relay.stocktrim")

STORE_NAMESPACE = "wms:stocktrim"
NAMESPACE = f"{STORE_NAMESPACE}:forecast"
RETRY_SECONDS = 60.0

# KEYS: changed_at, ran_at, tried_at, the reply key.  ARGV: now, every (s), retry (s).  Returns 1 when the
# caller has the turn (and tried_at is now), else 0.
_TAKE_TURN = replaying("""
local changed = tonumber(redis.call('GET', KEYS[1]) or '-1')
local ran = tonumber(redis.call('GET', KEYS[2]) or '-1')
local tried = tonumber(redis.call('GET', KEYS[3]) or '-1')
local now = tonumber(ARGV[1])
if changed <= ran then return 0 end
if ran >= 0 and now - ran < tonumber(ARGV[2]) then return 0 end
if tried >= 0 and now - tried < tonumber(ARGV[3]) and tried > ran then return 0 end
redis.call('SET', KEYS[3], ARGV[1])
return 1
""")


class ForecastRuns:
    def __init__(self, redis_client, *, every_seconds: float, clock: Callable[[], float] = time.time,
                 client: Any = None, build_client: Callable[[], Any] | None = None) -> None:
        self._redis = redis_client
        self._every = float(every_seconds)
        self._clock = clock
        self._client = client
        self._build_client = build_client
        self._keys = [INVENTORY_CHANGED_KEY, f"{NAMESPACE}:ran_at", f"{NAMESPACE}:tried_at"]
        self._take_turn = redis_client.register_script(_TAKE_TURN)

    @classmethod
    def from_settings(cls, settings, *, redis, clock: Callable[[], float] = time.time,
                      client: Any = None) -> "ForecastRuns":
        def build():
            return StockTrimClient(settings, clock=clock)

        return cls(redis, every_seconds=settings.stocktrim_forecast_every_minutes * 60, clock=clock,
                   client=client, build_client=build)

    def state(self) -> dict:
        changed, ran, tried = (text(v) or None for v in self._redis.mget(self._keys))
        return {"changed_at": changed and float(changed), "ran_at": ran and float(ran),
                "tried_at": tried and float(tried), "every_seconds": self._every}

    def run_if_due(self) -> bool:
        """Trigger the run if the inventory changed since the last one and the period has passed; True if
        StockTrim took it.  A failed trigger is logged and tried again after RETRY_SECONDS."""
        now = self._clock()
        keys = [*self._keys, reply_key(STORE_NAMESPACE, request_id())]
        if not int(self._take_turn(keys=keys, args=[f"{now:.3f}", self._every, RETRY_SECONDS])):
            return False
        if self._client is None:
            self._client = self._build_client()
        try:
            self._client.run_forecast()
        except DestinationError as exc:
            log.warning("StockTrim forecast run not triggered (%s); trying again in %.0f s", exc,
                        RETRY_SECONDS)
            return False
        self._redis.set(self._keys[1], f"{now:.3f}")
        log.info("StockTrim forecast run triggered (inventory changed since the last run)")
        return True

    __call__ = run_if_due
