"""The broker's bookkeeping of unacknowledged messages: one write per message instead of two transactions.

With ``task_acks_late`` and a visibility timeout, kombu's Redis transport records every message a worker
takes — its delivery tag in the sorted set ``unacked_index`` (score: the time taken) and the message itself
in the hash ``unacked`` (``[message, exchange, routing key]`` as JSON) — and removes both when the task is
acknowledged.  kombu sends each as a redis-py transaction: ``MULTI``/``ZADD``/``HSET``/``EXEC`` before
the task is handed to the pool, ``MULTI``/``ZREM``/``HDEL``/``EXEC`` after it ran — and Celery 5.7 runs
that ack on the consumer loop too (the pool's thread hands it over with ``Consumer.call_soon_ack``).  Two
round trips per message through redis-py's pipeline machinery, on the one loop every message waits on:
~25–30% of a no-op task's GIL time (py-spy: docs/benchmarks.md, "The worker command's own cost per
task"; measured again in "The broker's bookkeeping per message").

:class:`UnackedBookkeeping` keeps exactly kombu's keys and data — so kombu's ``restore_visible`` (the
visibility sweep), ``restore_by_tag``, ``restore_unacked`` and our stranded-event sweep
(``worker.store.broker_queues.broker_snapshot``) read what they always read — and changes how it gets
there:

* **plain commands in one write** (``HSET``, ``ZADD``; ``ZREM``, ``HDEL``), packed and sent on a pooled
  connection without redis-py's pipeline or client machinery, and without ``MULTI``/``EXEC``: the order of
  the commands keeps kombu's restores right (``UnackedBookkeeping._write``);
* **acknowledgements ride along**: an ack frees the message's prefetch slot at once (kombu's in-memory
  part) and queues the tag; the consumer loop's next write — the next message's record, or a
  timer every :data:`ACK_FLUSH_SECONDS` when no message comes — removes the queued tags in the same
  write.  A worker stopping flushes them before it closes its channel.  Only while a worker's event loop
  runs the timer (:func:`flush_acks_on`), or under a green pool (WORKER_POOL=gevent: Celery runs no event
  loop then) the consumer's own timer (``worker.broker.green_pool``); without either (a plain kombu consumer)
  every ack is sent at once.

What the deferral changes: a worker *killed* (SIGKILL, OOM) up to :data:`ACK_FLUSH_SECONDS` after a task
finished leaves that task's message unacknowledged, and the visibility sweep hands it out again — as it
always did for a worker killed between the task's end and its ack.  Our tasks are safe to run twice (the
ledger's claim: a delivered event is not sent again; docs/architecture.md).
"""
from __future__ import annotations

from collections import deque
from time import time

from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import base as virtual
from kombu.utils.json import dumps

# How long an acknowledged message may stay recorded as unacknowledged when no other message comes.
ACK_FLUSH_SECONDS = 0.1
# Acknowledgements removed by one write at most (a prefetch of one per thread keeps the queue far below).
ACKS_PER_WRITE = 500


class UnackedBookkeeping(kombu_redis.QoS):
    """kombu's Redis QoS, the unacked set written with one write per message (see the module)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._acked: deque = deque()  # delivery tags acknowledged, not yet removed from the store

    def append(self, message, delivery_tag) -> None:
        """kombu's ``QoS.append``: the message recorded as unacknowledged (same keys, same JSON), with the
        acknowledgements queued since the last write removed in the same write."""
        delivery = message.delivery_info
        record = dumps([message._raw, delivery["exchange"], delivery["routing_key"]])
        self._write((delivery_tag, record))
        virtual.QoS.append(self, message, delivery_tag)

    def ack(self, delivery_tag) -> None:
        """kombu's ``QoS.ack``: the prefetch slot is free at once; the store's record goes with the loop's
        next write when a worker's loop flushes (:func:`flush_acks_on`), else now."""
        if self.channel.connection.__dict__.get("_acks_flushed_by_loop"):
            self._acked.append(delivery_tag)
        else:
            self._write(None, (delivery_tag,), take_acked=False)
        virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag, requeue=False) -> None:
        if requeue:  # kombu's own: the message goes back to its queue's head, its record removed with it
            return super().reject(delivery_tag, requeue=True)
        self._write(None, (delivery_tag,), take_acked=False)
        virtual.QoS.ack(self, delivery_tag)

    def flush_acks(self) -> None:
        """Remove the queued acknowledgements' records now (the loop's timer; before the channel closes)."""
        if self._acked:
            self._write(None)

    def restore_unacked_once(self, stderr=None):
        """kombu's, when the channel closes (or is collected): the queued acknowledgements are removed
        first; a broker already gone keeps them (the visibility sweep hands their messages out again, and
        the ledger's claim finds their events delivered)."""
        try:
            self.flush_acks()
        except self.channel.connection_errors:
            pass
        return super().restore_unacked_once(stderr)

    def restore_unacked(self, client=None) -> None:
        """kombu's: every message this channel still holds goes back to its queue — after the queued
        acknowledgements are removed, so that no finished task's message is among them."""
        self.flush_acks()
        super().restore_unacked(client)

    def _write(self, record: tuple | None, acked: tuple = (), take_acked: bool = True) -> None:
        """One write: ``record`` (delivery tag, message) entered, ``acked`` and (with ``take_acked``) the
        queued acknowledgements removed; those go back to the queue if the write fails.

        Four plain commands in one write instead of kombu's ``MULTI``/``EXEC``, in an order that leaves
        nothing for kombu's restores to mistake: the message enters the hash before its tag enters the
        index (``restore_visible`` finds tags in the index, and only those older than the visibility
        timeout), and an acknowledged tag leaves the index before its message leaves the hash
        (``restore_by_tag`` WATCHes the hash: a removal between its read and its EXEC aborts the restore,
        and its retry finds nothing to restore)."""
        taken = list(acked)
        if take_acked:
            queued = self._acked
            while queued and len(taken) < ACKS_PER_WRITE:
                taken.append(queued.popleft())
        prefix = self.channel.global_keyprefix or ""
        index, messages = prefix + self.unacked_index_key, prefix + self.unacked_key
        commands = []
        if record is not None:
            tag, message = record
            commands += [("HSET", messages, tag, message), ("ZADD", index, time(), tag)]
        if taken:
            commands += [("ZREM", index, *taken), ("HDEL", messages, *taken)]
        try:
            self._send(commands)
        except BaseException:
            if take_acked:
                self._acked.extendleft(reversed(taken[len(acked):]))
            raise

    def _send(self, commands: list) -> None:
        """``commands`` in one write on a connection of the channel's pool, and their replies read — the
        short way: redis-py's pipeline (and its client) add their machinery and observability to every
        call.  redis-py's retry as its client has it (a connection error closes the connection, and the
        write is sent again: entering and removing are both idempotent).  A connection that fails in any
        other way is closed too, so that no reply is left unread on it."""
        pool = self.channel.pool
        connection = pool.get_connection()

        def write() -> None:
            connection.send_packed_command(connection.pack_commands(commands))
            for _ in commands:
                connection.read_response()

        try:
            connection.retry.call_with_retry(write, lambda error: connection.disconnect())
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)


def flush_acks_on(transport, connection, loop) -> None:
    """Have the worker's event loop remove the queued acknowledgements of every channel of ``transport``
    every :data:`ACK_FLUSH_SECONDS` (the loop's thread: the same that records messages), and from now on
    queue acknowledgements (``UnackedBookkeeping.ack``).  Called on every (re)registration with a loop;
    the previous timer is cancelled."""
    cycle = transport.cycle
    old = getattr(cycle, "_ack_flush_tref", None)
    if old is not None:
        old.cancel()

    def flush() -> None:
        for channel in list(cycle._channels):
            qos = channel.__dict__.get("_qos")
            if isinstance(qos, UnackedBookkeeping):
                try:
                    qos.flush_acks()
                except channel.connection_errors:
                    pass  # kept queued: the next write or tick sends them once the broker is back

    cycle._ack_flush_tref = loop.call_repeatedly(ACK_FLUSH_SECONDS, flush)
    transport._acks_flushed_by_loop = True
