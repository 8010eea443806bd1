"""Send a batch; where the destination refuses it whole for its content (StockTrim's 400 for one bad
item), split it in halves, recursively, until the refused item(s) stand alone — the rest is delivered.

Pure apart from the ``send`` it is given: ``send(items) -> reply`` raises the ``worker.errors`` tree.
Finding one bad item among n costs 1 + 2·⌈log₂ n⌉ requests (19 for 500); k bad items at most about
k times that.  Only a refusal *for content* is split (``worker.flow.policy.refused_for_content``): a 401
or a 5xx would answer every half the same.  When a half fails otherwise (a 5xx, a lost answer, the gate
saying "not now"), the halves not yet sent are not tried: they share that failure, and the caller puts
them back to pending.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from worker.flow.policy import refused_for_content


@dataclass(frozen=True)
class Part:
    """A part of a batch and what became of it: ``reply`` (delivered) or ``error`` (refused, failed,
    or — with ``sent`` False — not sent at all because an earlier part failed)."""

    items: tuple
    reply: Any = None
    error: BaseException | None = None
    sent: bool = True

    @property
    def delivered(self) -> bool:
        return self.error is None


def send_in_halves(items: Sequence, send: Callable[[Sequence], Any],
                   splits: Callable[[BaseException], bool] = refused_for_content) -> list[Part]:
    """Send ``items``; the parts they ended in, in order (one part when the first send settled it)."""
    parts: list[Part] = []
    pending = [tuple(items)]  # a stack: the left half is sent first, so the parts come out in order
    stopped: BaseException | None = None
    while pending:
        chunk = pending.pop()
        if stopped is not None:
            parts.append(Part(chunk, error=stopped, sent=False))
            continue
        try:
            parts.append(Part(chunk, reply=send(chunk)))
        except Exception as exc:  # noqa: BLE001 — the errors tree, or the caller's "not now"
            if len(chunk) > 1 and splits(exc):
                middle = len(chunk) // 2
                pending.append(chunk[middle:])
                pending.append(chunk[:middle])
            else:
                parts.append(Part(chunk, error=exc))
                if not splits(exc):
                    stopped = exc
    return parts
