"""Taking back admissions the door answered 503 for without knowing whether the store ran them.

A store frozen (SIGSTOP, a stalled disk) between running a chunk's admissions and sending their answers
leaves the door waiting in vain: it answers 503, "not admitted, send it again" — yet the records and
messages are in the store when it wakes.  (Admissions the store runs only after waking are no matter:
their "not after" has passed and they do nothing, ``worker.delivery.admission``.)  So the door hands such
admissions to :class:`Withdrawals`, which keeps trying until the store answers and then takes back what
each did (``Ledger.withdraw_admissions``: its message while still on the queue, and its record while
nothing moved it on), for up to the life of the admissions' stored answers (``REPLY_TTL_SECONDS``).

What it cannot take back: a message a worker already took (a worker blocked on the queue gets it the
moment the admission runs) — that event is delivered, once, though the answer said 503; the WMS sending it
again is recognised by its key.  And nothing survives the door process stopping meanwhile: those records
stay ``accepted`` and the stranded sweep delivers them.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from worker.store.requests import REPLY_TTL_SECONDS

log = logging.getLogger("wms_relay.ingest")

STORE_PAUSE_SECONDS = 1.0


class Withdrawals:
    """Admissions waiting to be taken back, and the daemon thread that does it (started when needed).

    ``ledger``: the ledger that admitted them; ``unreachable``: the exceptions that mean "the store did not
    answer" (try again later)."""

    def __init__(self, ledger, unreachable: tuple[type[BaseException], ...], *,
                 clock: Callable[[], float] = time.monotonic, give_up_after: float = REPLY_TTL_SECONDS,
                 pause: float = STORE_PAUSE_SECONDS) -> None:
        self._ledger = ledger
        self._unreachable = unreachable
        self._clock = clock
        self._give_up_after = give_up_after
        self._pause = pause
        self._pending: list[tuple[float, tuple[Any, str, str, str]]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, admissions: list[tuple[Any, str, str, str]]) -> None:
        """Take these back once the store answers (``(event, queue, message, request id)`` each)."""
        if not admissions:
            return
        with self._lock:
            self._pending += [(self._clock(), admission) for admission in admissions]
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="wms-relay withdrawals", daemon=True)
                self._thread.start()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def run_once(self) -> bool:
        """One try at every pending admission; True when none is left."""
        with self._lock:
            now = self._clock()
            expired = [a for at, a in self._pending if now - at > self._give_up_after]
            batch = [(at, a) for at, a in self._pending if now - at <= self._give_up_after]
            self._pending = []
        if expired:
            log.warning("ingest: %d admissions answered 503 could not be checked before their answers "
                        "expired; any the store ran are delivered (the stranded sweep)", len(expired))
        if not batch:
            return True
        try:
            outcomes = self._ledger.withdraw_admissions([admission for _, admission in batch])
        except self._unreachable:
            with self._lock:
                self._pending = batch + self._pending
            return False
        taken = sum(outcome == "taken" for outcome in outcomes)
        withdrawn = sum(outcome in ("withdrawn", "unqueued") for outcome in outcomes)
        if withdrawn or taken:
            log.warning("ingest: of %d admissions answered 503, the store had run %d: %d taken back, %d "
                        "already taken by a worker (delivered once; a resend is recognised by its key)",
                        len(outcomes), withdrawn + taken, withdrawn, taken)
        with self._lock:
            return not self._pending

    def _run(self) -> None:
        while not self.run_once():
            time.sleep(self._pause)
