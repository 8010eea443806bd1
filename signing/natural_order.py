"""Step 3: order flattened keys as PHP's ``uksort($params, 'strnatcmp')`` does, fast.

Sorting with ``functools.cmp_to_key(strnatcmp)`` is exact but costs ~60× a plain ``sorted()``. Instead each
key gets a *sort key*: a string whose plain code-point order is exactly PHP's ``strnatcmp`` order (proved
against the byte-level port in :mod:`signing.php_strnatcmp` and against real PHP by the tests). A key is
read as a sequence of tokens, each written so that the written tokens form a prefix-free code:

* a character that is not an ASCII digit stands for itself (UTF-8 byte order is code-point order, and
  strnatcmp compares such bytes as unsigned chars);
* a digit run that starts with ``0`` compares left-aligned: written as the run plus ``\\x00`` (a terminator
  below every digit, so a run that is a prefix of another is less); any such run is less than one that
  starts with 1–9, because strnatcmp compares the ``0`` against that digit first;
* a digit run that starts with 1–9 compares by length, then digits: written ``"1" + chr(len) + run``;
  both run forms start with a character in ``0``–``9`` so a run compares with any other character as its
  first digit does (no other character falls in that range);
* zeros at the very start of a key are dropped while a digit follows (``007`` ties ``7``);
* whitespace (space ``\\t \\n \\v \\f \\r``) is skipped, except the one character right after a digit run,
  which strnatcmp compares as it is, and a whitespace run that ends the key, which strnatcmp compares as
  the terminating NUL (so ``"a "`` ties ``"a\\x00"`` and follows ``"a"``);
* the empty key is less than every other key (strnatcmp's special case; its sort key is ``""``).

Keys without whitespace, NUL or ``\\x1f`` (all real Trademax keys) get their sort keys from a few regex
passes over all of them at once; the rest from a per-character loop. Python's sort is stable, so keys that
compare equal keep their input order, as in PHP ≥ 8. A bounded memo remembers sort keys (key → sort key);
:mod:`signing.layout` remembers whole orderings.
"""

from __future__ import annotations

import re
from functools import cmp_to_key
from typing import Iterable, Sequence

from .memo import BoundedMemo
from .php_strnatcmp import strnatcmp

#: Sort keys remembered (one per distinct flattened key).
MAX_REMEMBERED_KEYS = 65_536

_SEPARATOR = "\x1f"  # joins keys for the batch regex passes; a key holding it takes the slow path
_SLOW_PATH_CHARS = " \t\n\v\f\r\x00"  # besides the separator itself
_NEEDS_SLOW_PATH = re.compile("[ \t\n\v\f\r\x00\x1f]")
_DIGIT_RUN = re.compile("([0-9][0-9]*)")  # (spelt so: sre scans faster for it than for [0-9]+)
_LEADING_ZEROS = re.compile("(?:^|(?<=\x1f))0+(?=[0-9])")
_SPACE = frozenset(" \t\n\v\f\r")
_DIGIT = frozenset("0123456789")
_LONGEST_RUN = 0x10FFFF  # chr(len) must exist; a longer digit run sorts with the exact comparison

_sort_keys = BoundedMemo(MAX_REMEMBERED_KEYS)


def natural_sorted(keys: Iterable[str]) -> list[str]:
    """The keys in PHP's ``uksort(..., 'strnatcmp')`` order; keys that compare equal keep their order."""
    keys = list(keys)
    for key in keys:
        if type(key) is not str:
            raise TypeError(f"natural_sorted orders str keys, not {type(key).__name__}")
    return [keys[index] for index in natural_permutation(keys)]


def natural_permutation(keys: Sequence[str]) -> list[int]:
    """Indices of ``keys`` in natural order (stable)."""
    encoded = sort_keys_for(keys)
    if encoded is None:
        return sorted(range(len(keys)), key=cmp_to_key(lambda i, j: strnatcmp(keys[i], keys[j])))
    return sorted(range(len(keys)), key=encoded.__getitem__)


def sort_keys_for(keys: Sequence[str]) -> list[str] | None:
    """The sort key of each key (memoised), or None where only the exact comparison can order them."""
    found = list(map(_sort_keys.get, keys))
    if None not in found:
        return found
    if found.count(None) == len(found):  # first sight of every key: no merging needed
        encoded = _encode_all(list(keys))
        if encoded is not None:
            _sort_keys.put_many(dict(zip(keys, encoded)))
        return encoded
    missing = [key for key, known in zip(keys, found) if known is None]
    encoded = _encode_all(missing)
    if encoded is None:
        return None
    new = dict(zip(missing, encoded))
    _sort_keys.put_many(new)
    return [new[key] if known is None else known for key, known in zip(keys, found)]


def sort_key(key: str) -> str:
    """The sort key of one key: ``sort_key(a) < sort_key(b)`` exactly when ``strnatcmp(a, b) < 0``."""
    encoded = _encode_all([key])
    if encoded is None:
        raise ValueError("a digit run longer than 1,114,111 characters has no sort key")
    return encoded[0]


def _encode_all(keys: list[str]) -> list[str] | None:
    """Sort keys for ``keys``: one batch of regex passes for the plain ones, a loop for the rest."""
    if not keys:
        return []
    blob = _SEPARATOR.join(keys)
    if blob.count(_SEPARATOR) == len(keys) - 1 and not any(char in blob for char in _SLOW_PATH_CHARS):
        return _encode_plain(blob)
    slow = [_NEEDS_SLOW_PATH.search(key) is not None for key in keys]
    plain = [key for key, needs in zip(keys, slow) if not needs]
    plain_encoded = _encode_plain(_SEPARATOR.join(plain)) if plain else []
    if plain_encoded is None:
        return None
    next_plain = iter(plain_encoded).__next__
    result = []
    for key, needs in zip(keys, slow):
        encoded = _encode_one(key) if needs else next_plain()
        if encoded is None:
            return None
        result.append(encoded)
    return result


def _encode_plain(blob: str) -> list[str] | None:
    """Sort keys for separator-joined keys that hold no whitespace, NUL or separator."""
    if blob[:1] == "0" or _SEPARATOR + "0" in blob:
        blob = _LEADING_ZEROS.sub("", blob)
    parts = _DIGIT_RUN.split(blob)
    runs = parts[1::2]
    if runs and max(map(len, runs)) > _LONGEST_RUN:
        return None
    parts[1::2] = [run + "\x00" if run[0] == "0" else f"1{chr(len(run))}{run}" for run in runs]
    return "".join(parts).split(_SEPARATOR)


def _encode_one(key: str) -> str | None:
    """The sort key of any key, whitespace and NUL included, one character at a time."""
    length = len(key)
    out = []
    i = 0
    if key[:1] == "0":
        while i + 1 < length and key[i] == "0" and key[i + 1] in _DIGIT:
            i += 1
    after_run = False  # the character right after a digit run is compared as it is
    while i < length:
        char = key[i]
        if char in _DIGIT:
            end = i + 1
            while end < length and key[end] in _DIGIT:
                end += 1
            run = key[i:end]
            if len(run) > _LONGEST_RUN:
                return None
            out.append(run + "\x00" if run[0] == "0" else f"1{chr(len(run))}{run}")
            i, after_run = end, True
        elif char in _SPACE and not after_run:
            end = i + 1
            while end < length and key[end] in _SPACE:
                end += 1
            if end == length:
                out.append("\x00")  # trailing whitespace: strnatcmp compares the terminator instead
            i = end
        else:
            out.append(char)
            i, after_run = i + 1, False
    return "".join(out)


def forget_sort_keys() -> None:
    """Forget every remembered sort key."""
    _sort_keys.clear()


def remembered_sort_keys() -> int:
    """How many sort keys are remembered now (tests check the bound)."""
    return len(_sort_keys)
