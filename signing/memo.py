"""A bounded, thread-safe memo: the signer's caches must not grow without bound in a long-running worker.

Reads are lock-free (``dict.get`` is atomic under the GIL, and the signer runs in a threads pool); writes
and eviction take a lock. When an insert would pass the cap on entries or on total *weight* (for shapes: the
number of keys they hold, which is what costs memory), the oldest entries are dropped — a quarter of the cap
at once, so eviction is rare. Oldest means first inserted: a hit does not refresh an entry, because that
would cost a second hash of the whole shape on every sign; an evicted hot entry is simply computed again.
"""

from __future__ import annotations

import threading
from itertools import islice
from typing import Any, Hashable, Mapping


class BoundedMemo:
    """Remembers at most ``max_entries`` values (and at most ``max_weight`` weight in all, if given)."""

    def __init__(self, max_entries: int, *, max_weight: int | None = None) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.max_weight = max_weight
        self._values: dict[Hashable, Any] = {}
        self._weights: dict[Hashable, int] = {}
        self.weight = 0
        self._lock = threading.Lock()
        # Lock-free read: the bound method of the dict itself.
        self.get = self._values.get

    def __len__(self) -> int:
        return len(self._values)

    def put(self, key: Hashable, value: Any, *, weight: int = 1) -> None:
        """Remember one value; an entry heavier than the whole budget is not remembered."""
        if self.max_weight is not None and weight > self.max_weight:
            return
        with self._lock:
            if key in self._values:
                return
            self._make_room(1, weight)
            self._values[key] = value
            if self.max_weight is not None:
                self._weights[key] = weight
                self.weight += weight

    def put_many(self, entries: Mapping[Hashable, Any]) -> None:
        """Remember several values of weight 1 (sort keys)."""
        room = self.max_entries if self.max_weight is None else min(self.max_entries, self.max_weight)
        if len(entries) > room:
            entries = dict(islice(entries.items(), room))
        with self._lock:
            self._make_room(len(entries), len(entries))
            if self.max_weight is not None:
                for key in entries:
                    if key not in self._values:
                        self._weights[key] = 1
                        self.weight += 1
            self._values.update(entries)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._weights.clear()
            self.weight = 0

    def _make_room(self, count: int, weight: int) -> None:
        """Drop the oldest entries until ``count`` more entries of ``weight`` fit (lock held)."""
        over_entries = len(self._values) + count > self.max_entries
        over_weight = self.max_weight is not None and self.weight + weight > self.max_weight
        if not (over_entries or over_weight):
            return
        target_entries = max(0, min(self.max_entries - count, self.max_entries * 3 // 4))
        target_weight = None
        if self.max_weight is not None:
            target_weight = max(0, min(self.max_weight - weight, self.max_weight * 3 // 4))
        oldest = iter(list(self._values))
        while len(self._values) > target_entries or (
                target_weight is not None and self.weight > target_weight):
            key = next(oldest)
            del self._values[key]
            if self.max_weight is not None:
                self.weight -= self._weights.pop(key)
