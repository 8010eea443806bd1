"""What kombu's Redis transport misses under a green pool (WORKER_POOL=gevent), put back on the consumer's
timer.

Under a green pool Celery runs no event loop (its ``synloop``: the consumer greenlet calls
``connection.drain_events(timeout=2.0)`` in a loop), so the transport's ``register_with_event_loop`` is
never called, and what it sets up never runs:

* **kombu's visibility sweep** (``restore_visible`` every ``unacked_restore_interval`` seconds).  Without a
  loop kombu calls it only when a poll comes back empty, which a pending BRPOP (answered at least every
  second) never lets happen: a SIGKILLed worker's messages stayed unacknowledged for ever (kombu#1025,
  celery#4976; ``tests/integration/test_delivery_pipeline.py::
  test_a_worker_killed_while_sending_still_ends_delivered_and_applied_once[gevent]`` failed without this).
  Here it runs on the timer, and only there (not also after every empty poll: each is a mutex and a scan
  on the store).
* **our acknowledgements' flush** (``worker.broker.unacked.flush_acks_on``), without which every ack is a
  write of its own.
* **a wake-up when a slot frees.**  With every slot taken the loop sends no BRPOP and waits in ``poll`` on
  the other sockets (the remote-control channel) for up to two seconds; a task's ack frees its slot, but
  nothing wakes that poll (an event loop would see the ack's callback).  At 200 ms latency × 64 slots the
  loop refilled the pool every ~2 s: 32 tasks a second where 300 were possible (docs/benchmarks.md, "Green
  threads (gevent)").  So while every slot is taken, a poll waits at most :data:`REFILL_POLL_SECONDS`:
  at most 200 short polls a second, only while the pool is full.

Task events have the same gap; ``worker.observe.task_events`` fills it.  With an event loop (the threads
pool) the step does nothing.
"""
from __future__ import annotations

from celery import bootsteps
from kombu.transport import redis as kombu_redis

from worker.broker.unacked import flush_acks_on

# While every slot is taken, the consumer's poll waits at most this long (a slot freed meanwhile is
# refilled at the next poll).
REFILL_POLL_SECONDS = 0.005


class GreenPoolTimers(bootsteps.StartStopStep):
    """A consumer step: under a green pool, the visibility sweep and the acks' flush on the consumer's timer
    (a greenlet per entry), and the refill's short polls (see the module)."""

    requires = ("celery.worker.consumer:Connection",)

    def __init__(self, c, **kwargs) -> None:
        self._entries: list = []
        super().__init__(c, **kwargs)

    def start(self, c) -> None:
        if c.hub is not None or not getattr(c.pool, "is_green", False):
            return
        transport = c.connection.transport
        cycle = transport.cycle
        interval = c.connection.transport_options.get("unacked_restore_interval",
                                                      kombu_redis.Channel.unacked_restore_interval)
        sweep = type(cycle).maybe_restore_messages.__get__(cycle)
        cycle.maybe_restore_messages = _not_after_a_poll
        self._entries.append(c.timer.call_repeatedly(interval, sweep))
        flush_acks_on(transport, c.connection.connection, c.timer)
        self._entries.append(cycle._ack_flush_tref)
        refill_soon(cycle)

    def stop(self, c) -> None:
        """The connection is lost or the worker stops: the timers end (the channel's close flushes the
        queued acks; a new connection's start sets new timers)."""
        entries, self._entries = self._entries, []
        for entry in entries:
            entry.cancel()

    def shutdown(self, c) -> None:
        self.stop(c)


def _not_after_a_poll() -> None:
    """kombu's poller calls the visibility sweep after every empty poll; here the timer does."""
    return None


def refill_soon(cycle) -> None:
    """Make the transport's poller (``cycle``, kombu's ``MultiChannelPoller``) wait at most
    :data:`REFILL_POLL_SECONDS` in a poll while a channel that consumes has no slot free (see the
    module).  Idempotent."""
    if cycle.__dict__.get("_refill_soon"):
        return
    get = cycle.get

    def get_refilling_soon(callback, timeout=None):
        if any(channel.active_queues and not channel.qos.can_consume() for channel in cycle._channels):
            timeout = REFILL_POLL_SECONDS if timeout is None else min(timeout, REFILL_POLL_SECONDS)
        return get(callback, timeout)

    cycle.get = get_refilling_soon
    cycle._refill_soon = True
