"""Properties of PHP's natural order and of the canonical string, on generated inputs (hypothesis)."""

from __future__ import annotations

import random
from functools import cmp_to_key

from hypothesis import given, settings
from hypothesis import strategies as st

from signing import canonical_string, flatten, natural_sorted, strnatcmp
from signing.natural_order import sort_key

# Pieces that exercise every rule: zero-led and plain digit runs, whitespace of each kind, NUL, brackets,
# case, punctuation around the digits' code points, multi-byte UTF-8.
PIECES = ["0", "00", "007", "1", "9", "10", "42", " ", "  ", "\t", "\n", "\v", "\f", "\r", "\x00", "a", "b",
          "A", "Z", "[", "]", "_", "-", ".", "/", ":", "é", "Å", "😀", "\u00a0"]
keys = st.lists(st.sampled_from(PIECES), max_size=7).map("".join)
key_lists = st.lists(keys, min_size=1, max_size=8)


def sign_of(number: int) -> int:
    return (number > 0) - (number < 0)


@given(keys, keys)
def test_strnatcmp_is_antisymmetric_and_the_sort_key_agrees(a, b):
    assert strnatcmp(a, b) == -strnatcmp(b, a)
    assert strnatcmp(a, b) in (-1, 0, 1)
    assert sign_of((sort_key(a) > sort_key(b)) - (sort_key(a) < sort_key(b))) == strnatcmp(a, b)
    assert strnatcmp(a, a) == 0


@given(key_lists)
def test_strnatcmp_is_transitive(items):
    for a in items:
        for b in items:
            for c in items:
                ab, bc, ac = strnatcmp(a, b), strnatcmp(b, c), strnatcmp(a, c)
                if ab <= 0 and bc <= 0:
                    assert ac <= 0
                if ab == 0 and bc == 0:
                    assert ac == 0
                if ab < 0 and bc <= 0 or ab <= 0 and bc < 0:
                    assert ac < 0


@given(key_lists)
def test_natural_sorted_is_consistent_with_strnatcmp_and_stable(items):
    ordered = natural_sorted(items)
    assert sorted(ordered) == sorted(items)
    assert all(strnatcmp(a, b) <= 0 for a, b in zip(ordered, ordered[1:]))
    assert ordered == sorted(items, key=cmp_to_key(strnatcmp))  # Python's sort is stable: ties in input order


# Payload keys without brackets, so no two paths flatten to the same key (a collision's winner depends on
# insertion order by design, as in PHP).
field_names = st.lists(st.sampled_from([p for p in PIECES if p not in ("[", "]")]), min_size=1,
                       max_size=4).map("".join)
leaves = st.one_of(st.text(max_size=5), st.integers(-10**6, 10**6), st.booleans(), st.none(),
                   st.floats(allow_nan=False, allow_infinity=False))
payloads = st.dictionaries(field_names, st.recursive(
    leaves,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(field_names, children, max_size=5)),
    max_leaves=20,
), max_size=6)


def reinsert(value, rng: random.Random):
    """The same payload with every dict's insertion order shuffled (lists keep their order: it is data)."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: reinsert(child, rng) for key, child in items}
    if isinstance(value, list):
        return [reinsert(child, rng) for child in value]
    return value


def tie_groups(pairs):
    """Consecutive runs of keys that strnatcmp calls equal, each as a sorted list of its pairs."""
    groups, current = [], []
    for pair in pairs:
        if current and strnatcmp(current[-1][0], pair[0]) != 0:
            groups.append(sorted(current))
            current = []
        current.append(pair)
    if current:
        groups.append(sorted(current))
    return groups


@settings(max_examples=150)
@given(payloads, st.randoms(use_true_random=False))
def test_canonical_string_does_not_depend_on_insertion_order_except_among_ties(payload, rng):
    shuffled = reinsert(payload, rng)
    original, again = canonical_string(payload), canonical_string(shuffled)
    pairs = flatten(payload)
    keys = [key for key, _ in pairs]
    has_ties = any(strnatcmp(a, b) == 0 for i, a in enumerate(keys) for b in keys[i + 1:])
    if not has_ties:
        assert original == again
    else:
        # Same pairs, same sequence of tie groups; inside a group the flatten (insertion) order decides.
        ordered = sorted(pairs, key=cmp_to_key(lambda x, y: strnatcmp(x[0], y[0])))
        reordered = sorted(flatten(shuffled), key=cmp_to_key(lambda x, y: strnatcmp(x[0], y[0])))
        assert tie_groups(ordered) == tie_groups(reordered)
        assert original == "&".join(f"{k}={v}" for k, v in ordered)
        assert again == "&".join(f"{k}={v}" for k, v in reordered)
