"""PHP's strnatcmp order: the exact byte-level port, and the fast sort keys proved equal to it."""

from __future__ import annotations

import itertools
from functools import cmp_to_key

import pytest

from signing import natural_sorted, strnatcmp
from signing.natural_order import MAX_REMEMBERED_KEYS, remembered_sort_keys, sort_key, sort_keys_for


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("", "", 0), ("", "a", -1), ("a", "", 1), ("", " ", -1), ("", "0", -1),   # the empty-string special case
    ("007", "7", 0), ("0", "00", 0), ("0070", "70", 0),                  # leading zeros at the start only
    ("a007", "a7", -1), (" 007", "7", -1),                               # ... not after a letter or space
    ("x2", "x10", -1), ("x10", "x9", 1), ("a01", "a1", -1), ("a010", "a1", -1),  # right vs left alignment
    ("a0", "a00", -1), ("a001", "a01", -1), ("a1", "a0", 1),
    ("a b", "ab", 0), ("a1", "a 1", 0), (" a", "a", 0),                        # whitespace skipped ...
    ("1 a", "1a", -1), ("1\ta", "1 a", -1),                                    # ... but not right after a run
    ("a ", "a", 1), ("a ", "a  ", 0), ("a ", "a\x00", 0), ("a ", "a b", -1),   # trailing space reads the NUL
    ("1 ", "1  ", -1), ("1 ", "1", 1),
    ("A", "[", -1), ("[", "_", -1), ("_", "a", -1), ("Z", "a", -1),           # unsigned byte order
    ("z", "é", -1), ("é", "😀", -1), ("a\x00b", "a\x0bb", -1),
    ("packages[9]", "packages[10]", -1), ("products", "products[0]", -1), ("products0", "products[0]", -1),
])
def test_strnatcmp_follows_phps_c_code(a, b, expected):
    assert strnatcmp(a, b) == expected
    assert strnatcmp(b, a) == -expected
    got = (sort_key(a) > sort_key(b)) - (sort_key(a) < sort_key(b))
    assert got == expected, "the sort key disagrees with the port"


def all_strings(alphabet: str, longest: int) -> list[str]:
    return ["".join(chars) for length in range(longest + 1)
            for chars in itertools.product(alphabet, repeat=length)]


@pytest.mark.parametrize(("alphabet", "longest"), [
    ("019 \taé\x00[", 3),      # digits (with 0), whitespace, letters, non-ASCII, NUL, a bracket
    ("012 a\x00", 4),
])
def test_sort_keys_order_exactly_as_the_port_compares_every_pair_of_short_strings(alphabet, longest):
    keys = all_strings(alphabet, longest)
    encoded = sort_keys_for(keys)
    assert encoded == [sort_key(key) for key in keys]  # batch and one-by-one encoders agree
    wrong = [(a, b) for a, ka in zip(keys, encoded) for b, kb in zip(keys, encoded)
             if strnatcmp(a, b) != (ka > kb) - (ka < kb)]
    assert not wrong[:10]


def test_natural_sorted_is_stable_for_keys_that_compare_equal():
    assert natural_sorted(["7", "a", "007", "07"]) == ["7", "007", "07", "a"]
    assert natural_sorted(["007", "7", "a", "07"]) == ["007", "7", "07", "a"]
    assert natural_sorted(["ab", "a b", "a  b", "a\tb"]) == ["ab", "a b", "a  b", "a\tb"]


def test_natural_sorted_matches_a_cmp_to_key_sort_with_the_port():
    keys = ["a[10]", "a[9]", "a [9]", "a[ 9]", "a[09]", "a[9 ]", "a[9]x", "A[9]", "a", "", " ", "\x00",
            "10", "9", "09", "é[1]", "a[1][2]", "a[1][10]", "a[1] [2]"]
    assert natural_sorted(keys) == sorted(keys, key=cmp_to_key(strnatcmp))


def test_natural_sorted_accepts_any_iterable_and_refuses_non_str_keys():
    assert natural_sorted(iter(["b", "a"])) == ["a", "b"]
    assert natural_sorted([]) == []
    with pytest.raises(TypeError, match="str keys"):
        natural_sorted(["a", 1])
    with pytest.raises(TypeError, match="str keys"):
        strnatcmp("a", b"a")


def test_a_digit_run_too_long_for_a_sort_key_falls_back_to_the_exact_comparison():
    huge = "1" * 0x110000
    assert natural_sorted(["a", huge, "2", "b"]) == ["2", huge, "a", "b"]


def test_the_sort_key_memo_stays_bounded():
    sort_keys_for([f"key{index}x" for index in range(MAX_REMEMBERED_KEYS + 5000)])
    assert remembered_sort_keys() <= MAX_REMEMBERED_KEYS
