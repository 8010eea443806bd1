"""The signed layout of one *shape* of request, remembered so that a repeat sign does no sorting.

A shape is the tuple of flattened keys in flatten order. Its layout says which flattened values are signed
and in which order (PHP ``strnatcmp`` order; a key that repeats is signed once, at its first position, with
its last value, as PHP's associative array keeps it), and holds the text around those values: ``key=``,
``&key=`` …. A worker signs the same shapes over and over — every dispatch of 12 packages with one product
each has the same keys — so the normal sign costs one tuple hash and a join, not a sort.

Layouts live in a :class:`~signing.memo.BoundedMemo` capped both in shapes and in the keys they hold in
all, so a long-running worker with ever-new shapes (receipts of every length) stays bounded.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Callable, Sequence

from .memo import BoundedMemo
from .natural_order import forget_sort_keys, natural_permutation, remembered_sort_keys

#: Shapes remembered, and the keys they may hold in all (a 500-line receipt has ~1,600).
MAX_REMEMBERED_SHAPES = 4_096
MAX_REMEMBERED_SHAPE_KEYS = 262_144

_layouts = BoundedMemo(MAX_REMEMBERED_SHAPES, max_weight=MAX_REMEMBERED_SHAPE_KEYS)


class SignedLayout:
    """Which values to sign, in which order, and the ``key=`` texts that go between them."""

    __slots__ = ("keys", "pick", "_text")

    def __init__(self, keys: tuple[str, ...]) -> None:
        last = {key: index for index, key in enumerate(keys)}  # insertion order = first position
        if len(last) == len(keys):
            chosen = natural_permutation(keys)
        else:
            unique = list(last)
            chosen = [last[unique[index]] for index in natural_permutation(unique)]
        #: Takes the flattened values (flatten order) and returns the signed ones, in signed order.
        self.pick: Callable[[Sequence[str]], Sequence[str]] = _picker(chosen)
        #: The signed keys, in signed order.
        self.keys: tuple[str, ...] = tuple(self.pick(keys))
        # "k1=", None, "&k2=", None, …: the values go where the Nones are.
        text: list[str | None] = [None] * (2 * len(chosen))
        text[0::2] = [f"&{key}=" for key in self.keys]
        if text:
            text[0] = text[0][1:]
        self._text = text

    def canonical(self, values: Sequence[str]) -> str:
        """The canonical string: this layout's keys with the given flattened values."""
        text = self._text.copy()
        text[1::2] = self.pick(values)
        return "".join(text)


def layout_for(keys: tuple[str, ...]) -> SignedLayout:
    """The (remembered) layout of a shape."""
    layout = _layouts.get(keys)
    if layout is None:
        layout = SignedLayout(keys)
        _layouts.put(keys, layout, weight=max(1, len(keys)))
    return layout


def _picker(chosen: list[int]) -> Callable[[Sequence[str]], Sequence[str]]:
    if len(chosen) >= 2:
        return itemgetter(*chosen)  # picks in C, returns a tuple
    if chosen:
        only = chosen[0]
        return lambda values: (values[only],)
    return lambda values: ()


def clear_caches() -> None:
    """Forget every remembered layout and sort key (the benchmark's "first sight" regime uses this)."""
    _layouts.clear()
    forget_sort_keys()


def cache_sizes() -> dict[str, int]:
    """How much is remembered now: layouts (shapes), the keys they hold, and sort keys."""
    return {"shapes": len(_layouts), "shape_keys": _layouts.weight, "sort_keys": remembered_sort_keys()}
