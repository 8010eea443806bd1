"""PHP 8's ``strnatcmp``, ported line by line from php-src ``ext/standard/strnatcmp.c`` (``strnatcmp_ex``).

This is the reference the fast sort keys of :mod:`signing.natural_order` are proved against (by tests, and
by the differential tests against real PHP). It works on the UTF-8 bytes, as PHP does, with a NUL after the
last byte as a ``zend_string`` has, because the C code reads it. What the C code does, in order:

1. An empty string is less than any other; two empty strings are equal.
2. Once, at the very start: skip ``0`` bytes while another digit follows (``007`` ties ``7``, ``0`` stays).
3. Loop: skip whitespace (C locale: space ``\\t \\n \\v \\f \\r``) in both strings; a whitespace run that
   ends the string leaves the terminating NUL as the byte to compare.
4. If both bytes are digits, compare the two digit runs: if either starts with ``0``, left-aligned (first
   difference wins, a shorter run that is a prefix is less), else right-aligned (longer run wins, then the
   first difference). Equal runs: if a string has ended it is the lesser; otherwise the bytes after the
   runs are compared next, *without* skipping whitespace.
5. Compare the two bytes as unsigned chars; equal → step past them; the string that ends first is less.

The port is exact, not fast (one Python step per byte); natural ordering of many keys uses sort keys.
"""

from __future__ import annotations

_SPACE = frozenset(b" \t\n\v\f\r")
_DIGIT = frozenset(b"0123456789")


def strnatcmp(a: str, b: str) -> int:
    """Compare two strings as PHP 8's ``strnatcmp`` does: -1, 0 or 1."""
    if type(a) is not str or type(b) is not str:
        a, b = _as_text(a), _as_text(b)
    return strnatcmp_bytes(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def strnatcmp_bytes(a: bytes, b: bytes) -> int:
    """:func:`strnatcmp` on raw bytes (the form PHP sees)."""
    a_len, b_len = len(a), len(b)
    if a_len == 0 or b_len == 0:
        return 0 if a_len == b_len else (1 if a_len > b_len else -1)
    a += b"\0"  # the zend_string terminator, which the whitespace skip may read
    b += b"\0"
    ap = bp = 0
    ca, cb = a[0], b[0]
    while ca == 0x30 and ap + 1 < a_len and a[ap + 1] in _DIGIT:  # leading zeros, first position only
        ap += 1
        ca = a[ap]
    while cb == 0x30 and bp + 1 < b_len and b[bp + 1] in _DIGIT:
        bp += 1
        cb = b[bp]
    while True:
        while ca in _SPACE:
            ap += 1
            ca = a[ap]
        while cb in _SPACE:
            bp += 1
            cb = b[bp]
        if ca in _DIGIT and cb in _DIGIT:
            if ca == 0x30 or cb == 0x30:
                result, ap, bp = _compare_left(a, a_len, ap, b, b_len, bp)
            else:
                result, ap, bp = _compare_right(a, a_len, ap, b, b_len, bp)
            if result:
                return result
            if ap == a_len and bp == b_len:
                return 0
            if ap == a_len:
                return -1
            if bp == b_len:
                return 1
            ca, cb = a[ap], b[bp]  # compared as they are: no whitespace skip here
        if ca != cb:
            return -1 if ca < cb else 1
        ap += 1
        bp += 1
        if ap >= a_len and bp >= b_len:
            return 0
        if ap >= a_len:
            return -1
        if bp >= b_len:
            return 1
        ca, cb = a[ap], b[bp]


def _compare_left(a: bytes, a_len: int, ap: int, b: bytes, b_len: int, bp: int) -> tuple[int, int, int]:
    """Left-aligned digit runs: the first different digit wins; the run that stops first is less."""
    while True:
        a_digit = ap < a_len and a[ap] in _DIGIT
        b_digit = bp < b_len and b[bp] in _DIGIT
        if not a_digit and not b_digit:
            return 0, ap, bp
        if not a_digit:
            return -1, ap, bp
        if not b_digit:
            return 1, ap, bp
        if a[ap] != b[bp]:
            return (-1 if a[ap] < b[bp] else 1), ap, bp
        ap += 1
        bp += 1


def _compare_right(a: bytes, a_len: int, ap: int, b: bytes, b_len: int, bp: int) -> tuple[int, int, int]:
    """Right-aligned digit runs: the longer run wins; at equal length the first difference (the bias)."""
    bias = 0
    while True:
        a_digit = ap < a_len and a[ap] in _DIGIT
        b_digit = bp < b_len and b[bp] in _DIGIT
        if not a_digit and not b_digit:
            return bias, ap, bp
        if not a_digit:
            return -1, ap, bp
        if not b_digit:
            return 1, ap, bp
        if not bias and a[ap] != b[bp]:
            bias = -1 if a[ap] < b[bp] else 1
        ap += 1
        bp += 1


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return str.__str__(value)
    raise TypeError(f"strnatcmp compares str keys, not {type(value).__name__}")
