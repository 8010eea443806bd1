"""The services one worker process delivers with, built once from Settings.

``Relay`` is a plain bundle (ledger, retry schedule, dead letters, Trademax client, ...) so the delivery
pipeline takes everything it touches as an argument: tests build one around fakes or a test server."""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import redis

from worker.store.dead_letters import DeadLetters
from worker.store.ledger import Ledger
from worker.observe.observer import Observer
from worker.delivery.retry_policy import RetryPolicy
from worker.store.retry_schedule import RetrySchedule
from worker.settings import Settings
from worker.destinations.trademax.client import CONNECT_RETRIES, TrademaxClient

if TYPE_CHECKING:
    from worker.store.dispatch_waiters import DispatchWaiters
    from worker.store.stock_order import StockOrder


@dataclass
class Relay:
    settings: Settings
    redis: redis.Redis
    ledger: Ledger
    schedule: RetrySchedule
    dead_letters: DeadLetters
    client: TrademaxClient | None
    stock_order: "StockOrder"
    dispatch_waiters: "DispatchWaiters"
    observer: Observer
    policy: RetryPolicy
    clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)


def build_relay(settings: Settings, *, redis_client: redis.Redis | None = None,
                client: TrademaxClient | None = None, clock: Callable[[], float] = time.time,
                sends: bool = True, start_store: bool = False) -> Relay:
    """Wire the services for ``settings``; pass ``redis_client``/``client`` to use your own.

    ``sends=False`` (the support CLI, enqueue, the scheduler) builds no Trademax client and so needs no
    Trademax credentials.  ``start_store``: a service process (worker, scheduler) may start the embedded
    server; everyone else only finds a running one (``worker.store.connection``)."""
    from worker.store.dispatch_waiters import DispatchWaiters
    from worker.store.connection import connect
    from worker.store.stock_order import StockOrder

    r = redis_client if redis_client is not None else connect(settings, start=start_store)
    ledger = Ledger.from_settings(r, settings, clock=clock)
    return Relay(
        settings=settings,
        redis=r,
        ledger=ledger,
        schedule=RetrySchedule(r, clock=clock),
        dead_letters=DeadLetters(r, clock=clock),
        client=client if client is not None or not sends else TrademaxClient(
            settings.require_trademax_credentials(), clock=clock),
        # Held for one send: every connect attempt (urllib3 reconnects CONNECT_RETRIES times), the read.
        stock_order=StockOrder(r, lock_seconds=(CONNECT_RETRIES + 1) * settings.connect_timeout
                               + settings.read_timeout + 5),
        dispatch_waiters=DispatchWaiters(r, ledger),
        observer=Observer.from_settings(settings),
        policy=RetryPolicy.from_settings(settings),
        clock=clock,
    )


_process_relay: Relay | None = None
_process_lock = threading.Lock()


def process_relay() -> Relay:
    """The Relay of this worker process, built on first use (threads of the pool share it)."""
    global _process_relay
    if _process_relay is None:
        with _process_lock:
            if _process_relay is None:
                _process_relay = build_relay(Settings.from_env(), start_store=True)
    return _process_relay
