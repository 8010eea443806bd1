"""The services one worker process delivers with, built once from Settings.

``Relay`` is a plain bundle (ledgers, retry schedule, dead letters, one client per destination that is on,
...) so the delivery pipeline takes everything it touches as an argument: tests build one around fakes or
a test server.

Every destination has its own ledger and stock order (``ledger_of``, ``stock_order_of``: the same store,
the destination's namespace); ``ledger`` is the first destination's — the WMS operations as published,
what ``wms-relay enqueue`` admits into.  The retry schedule and the dead letters are shared: their entries
name the destination (task name, delivery ref)."""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import redis

from worker.delivery.retry_policy import RetryPolicy
from worker.destinations.table import DESTINATIONS, WMS_DESTINATION, configured, delivery_ref
from worker.destinations.transport import CONNECT_RETRIES
from worker.observe.observer import Observer
from worker.settings import Settings
from worker.store.dead_letters import DeadLetters
from worker.store.ledger import Ledger
from worker.store.retry_schedule import RetrySchedule

if TYPE_CHECKING:
    from worker.flow.controls import FlowControls
    from worker.flow.send_steps import SendSteps
    from worker.store.catalog import Catalog
    from worker.store.dispatch_lines import DispatchLines
    from worker.store.dispatch_waiters import DispatchWaiters
    from worker.store.stock_order import StockOrder


@dataclass
class Relay:
    settings: Settings
    redis: redis.Redis
    ledger: Ledger
    schedule: RetrySchedule
    dead_letters: DeadLetters
    clients: dict[str, Any]
    stock_order: "StockOrder"
    dispatch_waiters: "DispatchWaiters"
    observer: Observer
    policy: RetryPolicy
    clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)
    # Publishes a task message ({"task", "event"}): the fan-out to other destinations.  None: they go
    # through the retry schedule, due now (the scheduler publishes them).
    publish: Callable[[dict], None] | None = None
    _ledgers: dict = field(default_factory=dict, repr=False)
    _stock_orders: dict = field(default_factory=dict, repr=False)
    _send_steps: dict = field(default_factory=dict, repr=False)
    _catalogs: dict = field(default_factory=dict, repr=False)
    _dispatch_lines: dict = field(default_factory=dict, repr=False)
    _flow: Any = field(default=None, repr=False)

    @property
    def client(self) -> Any:
        """The first destination's client (the one the WMS operations were written for)."""
        return self.clients.get(WMS_DESTINATION.name)

    @client.setter
    def client(self, value: Any) -> None:
        self.clients[WMS_DESTINATION.name] = value

    def client_of(self, destination: str) -> Any:
        found = self.clients.get(destination)
        if found is None:
            raise LookupError(f"no client for {destination}: it is not configured in this process "
                              f"({DESTINATIONS[destination].title}'s base URL is not set)")
        return found

    @property
    def flow(self) -> "FlowControls":
        """The flow controls (worker.flow): each destination's gate, parked deliveries and batches."""
        if self._flow is None:
            from worker.flow.controls import FlowControls

            self._flow = FlowControls(self.redis, self.settings, self.schedule, clock=self.clock)
            for name, client in self.clients.items():
                if hasattr(client, "pace"):  # a client that makes more than one request per send
                    client.pace = self._flow.gate(name).pace
        return self._flow

    def ledger_of(self, destination: str) -> Ledger:
        """``destination``'s ledger (its deliveries' records)."""
        found = self._ledgers.get(destination)
        if found is None:
            found = self._ledgers[destination] = self.ledger.sibling(DESTINATIONS[destination].namespace)
        return found

    def send_steps_of(self, destination: str) -> "SendSteps":
        """The store calls around a send to ``destination`` (worker.flow.send_steps): its ledger, gate and
        stock order in one script before the send and one after a delivery."""
        found = self._send_steps.get(destination)
        if found is None:
            from worker.flow.send_steps import SendSteps

            found = self._send_steps[destination] = SendSteps(
                self.redis, self.ledger_of(destination), self.flow.gate(destination),
                self.stock_order_of(destination), clock=self.clock)
        return found

    def stock_order_of(self, destination: str) -> "StockOrder":
        """``destination``'s order of absolute counts (each destination applies its own in order)."""
        from worker.store.stock_order import StockOrder

        if destination == WMS_DESTINATION.name:
            return self.stock_order
        found = self._stock_orders.get(destination)
        if found is None:
            found = self._stock_orders[destination] = StockOrder(
                self.redis, lock_seconds=stock_lock_seconds(self.settings),
                namespace=DESTINATIONS[destination].namespace)
        return found

    def catalog_of(self, destination: str) -> "Catalog":
        """``destination``'s catalog (its rows, the deliveries waiting for one: worker.store.catalog)."""
        from worker.store.catalog import Catalog

        found = self._catalogs.get(destination)
        if found is None:
            found = self._catalogs[destination] = Catalog(self.redis, DESTINATIONS[destination].namespace)
        return found

    def dispatch_lines_of(self, destination: str) -> "DispatchLines":
        """The dispatches' lines noted for ``destination``'s sales orders (worker.store.dispatch_lines)."""
        from worker.store.dispatch_lines import DispatchLines

        found = self._dispatch_lines.get(destination)
        if found is None:
            found = self._dispatch_lines[destination] = DispatchLines(self.redis,
                                                                      DESTINATIONS[destination].namespace)
        return found


def stock_lock_seconds(settings: Settings) -> float:
    """How long an absolute count holds its SKU's turn: one send — every connect attempt (urllib3
    reconnects CONNECT_RETRIES times), the read — and some slack."""
    return (CONNECT_RETRIES + 1) * settings.connect_timeout + settings.read_timeout + 5


def build_clients(settings: Settings, redis_client: redis.Redis,
                  clock: Callable[[], float]) -> dict[str, Any]:
    """One client per destination that is on (each checks its credentials: a SettingsError names the
    missing variable)."""
    return {d.name: d.build_client(settings, redis=redis_client, clock=clock) for d in configured(settings)}


def build_relay(settings: Settings, *, redis_client: redis.Redis | None = None,
                client: Any = None, clients: dict[str, Any] | None = None,
                clock: Callable[[], float] = time.time, sends: bool = True,
                publish: Callable[[dict], None] | None = None, start_store: bool = False) -> Relay:
    """Wire the services for ``settings``; pass ``redis_client``/``clients`` to use your own (``client``:
    the first destination's).

    ``sends=False`` (the support CLI, enqueue, the scheduler) builds no client and so needs no
    destination's credentials.  ``start_store``: a service process (worker, scheduler) may start the
    embedded server; everyone else only finds a running one (``worker.store.connection``)."""
    from worker.store.connection import connect
    from worker.store.dispatch_waiters import DispatchWaiters
    from worker.store.stock_order import StockOrder

    r = redis_client if redis_client is not None else connect(settings, start=start_store)
    ledger = Ledger.from_settings(r, settings, clock=clock)
    chosen = dict(clients or {})
    if client is not None:
        chosen[WMS_DESTINATION.name] = client
    if sends:
        built = build_clients(settings, r, clock) if not chosen else {}
        chosen = {**built, **chosen}
    return Relay(
        settings=settings,
        redis=r,
        ledger=ledger,
        schedule=RetrySchedule(r, clock=clock),
        dead_letters=DeadLetters(r, clock=clock, delivery_ref=delivery_ref),
        clients=chosen,
        stock_order=StockOrder(r, lock_seconds=stock_lock_seconds(settings),
                               namespace=WMS_DESTINATION.namespace),
        dispatch_waiters=DispatchWaiters(r, ledger),
        observer=Observer.from_settings(settings),
        policy=RetryPolicy.from_settings(settings),
        clock=clock,
        publish=publish,
    )


_process_relay: Relay | None = None
_process_lock = threading.Lock()


def process_relay() -> Relay:
    """The Relay of this worker process, built on first use (threads of the pool share it)."""
    global _process_relay
    if _process_relay is None:
        with _process_lock:
            if _process_relay is None:
                from tasks.publishing import celery_publisher
                from worker.celery import app

                _process_relay = build_relay(Settings.from_env(), publish=celery_publisher(app),
                                             start_store=True)
    return _process_relay
