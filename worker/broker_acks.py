"""The broker's bookkeeping of unacknowledged messages, one command per message instead of two transactions.

With ``task_acks_late`` and a visibility timeout, kombu's Redis transport records every message a worker
takes — its delivery tag in the sorted set ``unacked_index`` (score: the time taken) and the message itself
in the hash ``unacked`` (``[message, exchange, routing key]`` as JSON) — and removes both when the task is
acknowledged.  kombu sends each as a redis-py transaction (``MULTI``/``ZADD``/``HSET``/``EXEC`` on the
consumer loop before the task is handed to the pool; ``MULTI``/``ZREM``/``HDEL``/``EXEC`` in the pool's
thread after it ran): two round trips per message through redis-py's pipeline machinery, ~25–30% of a
no-op task's GIL time (py-spy; docs/benchmarks.md, "The broker's bookkeeping per message").

:class:`UnackedBookkeeping` keeps exactly kombu's keys and data — so kombu's ``restore_visible`` (the
visibility sweep), ``restore_by_tag``, ``restore_unacked`` and our stranded-event sweep
(``worker.store.broker_queues.unacked_messages``) read what they always read — and changes how it gets
there:

* **one script per write** (``EVALSHA``, atomic as the transaction was), packed and sent on a pooled
  connection without redis-py's pipeline or client machinery;
* **acknowledgements ride along**: a pool thread's ack frees the message's prefetch slot at once (kombu's
  in-memory part) and queues the tag; the consumer loop's next write — the next message's record, or a
  timer every :data:`ACK_FLUSH_SECONDS` when no message comes — removes the queued tags in the same
  script.  A worker stopping flushes them before it closes its channel.  Only while a worker's event loop
  runs the timer (:func:`flush_acks_on`); without one (a plain kombu consumer) every ack is sent at once.

What the deferral changes: a worker *killed* (SIGKILL, OOM) up to :data:`ACK_FLUSH_SECONDS` after a task
finished leaves that task's message unacknowledged, and the visibility sweep hands it out again — as it
always did for a worker killed between the task's end and its ack.  Our tasks are safe to run twice (the
ledger's claim: a delivered event is not sent again; docs/architecture.md).
"""
from __future__ import annotations

import hashlib
from collections import deque
from time import time

from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import base as virtual
from kombu.utils.json import dumps
from redis.exceptions import NoScriptError

# How long an acknowledged message may stay recorded as unacknowledged when no other message comes.
ACK_FLUSH_SECONDS = 0.1
# Acknowledgements removed by one script at most (Lua's ``unpack`` has a limit; a prefetch of one per
# thread keeps the queue far below it).
ACKS_PER_SCRIPT = 500

# KEYS: unacked_index (sorted set), unacked (hash).  ARGV: n (1 to record a message, 0 not), then, if n is
# 1, its time, delivery tag and message; then the delivery tags acknowledged since the last write.
_BOOKKEEPING = """
local first = 2
if ARGV[1] == '1' then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
  first = 5
end
if #ARGV >= first then
  redis.call('ZREM', KEYS[1], unpack(ARGV, first))
  redis.call('HDEL', KEYS[2], unpack(ARGV, first))
end
return 1
"""
_SHA = hashlib.sha1(_BOOKKEEPING.encode()).hexdigest()


class UnackedBookkeeping(kombu_redis.QoS):
    """kombu's Redis QoS, the unacked set written with one script per message (see the module)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._acked: deque = deque()  # delivery tags acknowledged, not yet removed from the store

    def append(self, message, delivery_tag) -> None:
        """kombu's ``QoS.append``: the message recorded as unacknowledged (same keys, same JSON), with the
        acknowledgements queued since the last write removed in the same script."""
        delivery = message.delivery_info
        record = dumps([message._raw, delivery["exchange"], delivery["routing_key"]])
        self._write(["1", time(), delivery_tag, record])
        virtual.QoS.append(self, message, delivery_tag)

    def ack(self, delivery_tag) -> None:
        """kombu's ``QoS.ack``: the prefetch slot is free at once; the store's record goes with the loop's
        next write when a worker's loop flushes (:func:`flush_acks_on`), else now."""
        if self.channel.connection.__dict__.get("_acks_flushed_by_loop"):
            self._acked.append(delivery_tag)
        else:
            self._write(["0", delivery_tag], take_acked=False)
        virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag, requeue=False) -> None:
        if requeue:  # kombu's own: the message goes back to its queue's head, its record removed with it
            return super().reject(delivery_tag, requeue=True)
        self._write(["0", delivery_tag], take_acked=False)
        virtual.QoS.ack(self, delivery_tag)

    def flush_acks(self) -> None:
        """Remove the queued acknowledgements' records now (the loop's timer; before the channel closes)."""
        if self._acked:
            self._write(["0"])

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

    def _write(self, args: list, take_acked: bool = True) -> None:
        """One ``EVALSHA`` of the bookkeeping script with ``args`` and, with ``take_acked``, the queued
        acknowledgements; those go back to the queue if the write fails."""
        taken = []
        if take_acked:
            acked = self._acked
            while acked and len(taken) < ACKS_PER_SCRIPT:
                taken.append(acked.popleft())
        prefix = self.channel.global_keyprefix or ""
        keys = (prefix + self.unacked_index_key, prefix + self.unacked_key)
        try:
            self._send(("EVALSHA", _SHA, 2, *keys, *args, *taken))
        except BaseException:
            self._acked.extendleft(reversed(taken))
            raise

    def _send(self, command: tuple) -> None:
        """``command`` on a connection of the channel's pool, with redis-py's retry (a connection error
        closes the connection, and the command is sent again: both writes are idempotent); a store that
        lost the script (restarted, flushed) gets it with ``EVAL``.  The short way: redis-py's client adds
        its observability and response callbacks to every command."""
        pool = self.channel.pool
        connection = pool.get_connection()

        def send(packed):
            connection.send_packed_command(packed)
            return connection.read_response()

        def close(error):
            connection.disconnect()

        try:
            packed = connection.pack_command(*command)
            try:
                connection.retry.call_with_retry(lambda: send(packed), close)
            except NoScriptError:
                packed = connection.pack_command("EVAL", _BOOKKEEPING, *command[2:])
                connection.retry.call_with_retry(lambda: send(packed), close)
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
