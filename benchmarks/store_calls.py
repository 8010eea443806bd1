"""Store work per delivered event, seen from both ends (issue 21.1): what the throughput benchmark prints
beside each rate.

* **Server side** — ``INFO commandstats`` before and after a drain (:class:`CommandStats`): every command
  the store ran in that time, those run inside our Lua scripts included (``redis.call`` counts as a call of
  its command), minus the benchmark's own (its watching and the INFO calls themselves, counted as they are
  sent: :class:`CountedClient`).
* **Client side** — in each worker process under test (the benchmark's launcher, ``benchmarks.noop_task``,
  calls :func:`count_in_this_process` when ``WMS_BENCH_COUNTS`` names a directory): every write redis-py
  makes to a store connection is one *round trip* (a pipeline's commands go in one write), and every
  command sent is counted by name (``EVALSHA``: our own scripts; ``BRPOP``, ``MULTI``/``EXEC``,
  ``PUBLISH``: Celery's and kombu's).  The counts are written as JSON when the process exits (the drain stops
  its workers with SIGTERM: a warm shutdown) to ``<dir>/<pid>.json``.

Counting wraps three methods of redis-py's connection class in the benchmark's worker processes only
(never in the service).  It is not free — a lock, a name lookup and a counter per command; a counted
pipeline worker drained up to 15% slower at 0 ms — so ``benchmarks/throughput.py`` counts in a drain of
its own and times the others uncounted (docs/benchmarks.md, "The broker's bookkeeping per message").
"""
from __future__ import annotations

import atexit
import json
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Iterable

import redis

COUNTS_ENV = "WMS_BENCH_COUNTS"


# -- the server's side ----------------------------------------------------------------------------------

def commandstats(client: redis.Redis) -> Counter:
    """Calls per command so far (``INFO commandstats``), lower-case names, sub-commands as ``config|get``."""
    found: Counter = Counter()
    for name, stats in client.info("commandstats").items():
        found[name.removeprefix("cmdstat_")] = int(stats["calls"])
    return found


class CountedClient:
    """The benchmark's own look at the store (queue lengths while a drain runs), counting the commands it
    sends so that they can be taken out of the server's totals."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.sent: Counter = Counter()

    def lengths(self, queues: Iterable[str], *, unacked: bool = False) -> list[int]:
        """LLEN of each queue (and HLEN of kombu's unacked hash), in one pipeline."""
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(queue)
            self.sent["llen"] += 1
        if unacked:
            pipe.hlen("unacked")
            self.sent["hlen"] += 1
        return [int(n) for n in pipe.execute()]

    def commandstats(self) -> Counter:
        found = commandstats(self.client)
        self.sent["info"] += 1
        return found


class CommandStats:
    """The store's command counts over a stretch of time, without the watcher's own commands."""

    def __init__(self, watcher: CountedClient) -> None:
        self.watcher = watcher
        self._before = watcher.commandstats()
        self._sent_before = Counter(watcher.sent)

    def delta(self) -> Counter:
        after = self.watcher.commandstats()
        # The server counts a command once it has run: ``after`` holds the first INFO and not itself, and
        # ``ours`` the second and not the first — one each.
        ours = self.watcher.sent - self._sent_before
        ran = after - self._before
        ran.subtract(ours)
        return Counter({name: n for name, n in ran.items() if n > 0})


# -- the client's side (in the worker processes) ---------------------------------------------------------

class ClientCounter:
    """Every write redis-py makes to a store connection in this process (a round trip) and every command
    it sends, by name.  One per process: :meth:`install` wraps redis-py's connection class once."""

    _installed: "ClientCounter | None" = None

    def __init__(self) -> None:
        self.round_trips = 0
        self.sent: Counter = Counter()
        self._lock = threading.Lock()
        self._names: dict = {}  # as sent (str or bytes) -> upper-case name

    @classmethod
    def install(cls) -> "ClientCounter":
        if cls._installed is not None:
            return cls._installed
        from redis.connection import AbstractConnection

        counter = cls._installed = cls()
        send_packed, send_command, pack_commands = (AbstractConnection.send_packed_command,
                                                    AbstractConnection.send_command,
                                                    AbstractConnection.pack_commands)

        named = threading.local()  # set while a command counted by name is on its way to the socket

        def counted_send_packed(self, command, check_health=True):
            with counter._lock:
                counter.round_trips += 1
            if not getattr(named, "on_its_way", False):  # packed ahead of time (the broker's BRPOP)
                counter.count(_first_name(command))
            named.on_its_way = False
            return send_packed(self, command, check_health)

        def counted_send_command(self, *args, **kwargs):
            counter.count(args[:1])
            named.on_its_way = True
            try:
                return send_command(self, *args, **kwargs)
            finally:
                named.on_its_way = False

        def counted_pack_commands(self, commands):
            commands = list(commands)
            for args in commands:
                counter.count(args[:1])
            named.on_its_way = True  # a pipeline: its send follows in this thread
            return pack_commands(self, commands)

        AbstractConnection.send_packed_command = counted_send_packed
        AbstractConnection.send_command = counted_send_command
        AbstractConnection.pack_commands = counted_pack_commands
        return counter

    def count(self, name_part) -> None:
        if not name_part:
            return
        raw = name_part[0]
        name = self._names.get(raw) if isinstance(raw, (str, bytes)) else None
        if name is None:  # each command name is spelt out once (the count runs for every command sent)
            name = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
            name = name.split(" ")[0].upper()
            if isinstance(raw, (str, bytes)):
                self._names[raw] = name
        with self._lock:
            self.sent[name] += 1

    def snapshot(self) -> tuple[int, Counter]:
        with self._lock:
            return self.round_trips, Counter(self.sent)

    def since(self, snapshot: tuple[int, Counter]) -> tuple[int, Counter]:
        trips, sent = self.snapshot()
        return trips - snapshot[0], sent - snapshot[1]

    def write(self, path: Path) -> None:
        trips, sent = self.snapshot()
        path.write_text(json.dumps({"round_trips": trips, "sent": dict(sent)}))


def _first_name(packed) -> tuple:
    """The name of the (first) command in RESP packed ahead of time (``*N\\r\\n$len\\r\\nNAME\\r\\n``)."""
    if isinstance(packed, (list, tuple)):
        packed = b"".join(packed[:2])
    parts = bytes(packed[:64]).split(b"\r\n", 3) if isinstance(packed, (bytes, bytearray, memoryview)) else []
    return (parts[2],) if len(parts) > 2 and parts[0].startswith(b"*") else ()


def count_in_this_process() -> None:
    """With ``$WMS_BENCH_COUNTS`` set: count this process's round trips and commands, and write them to
    ``$WMS_BENCH_COUNTS/<pid>.json`` at exit."""
    directory = os.environ.get(COUNTS_ENV)
    if directory:
        atexit.register(ClientCounter.install().write, Path(directory) / f"{os.getpid()}.json")


def read_counts(directory: Path) -> tuple[int, Counter, int]:
    """(round trips, commands sent by name, processes that reported) from every worker's file, which are
    then removed (the next drain starts from nothing)."""
    trips, sent, processes = 0, Counter(), 0
    for path in sorted(Path(directory).glob("*.json")):
        found = json.loads(path.read_text())
        trips += int(found["round_trips"])
        sent.update(found["sent"])
        processes += 1
        path.unlink()
    return trips, sent, processes
