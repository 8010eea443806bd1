"""The signer's caches are bounded: entries and total weight, oldest first out, safe under threads."""

from __future__ import annotations

import threading

import pytest

from signing.memo import BoundedMemo


def test_entries_are_capped_and_the_oldest_go_first():
    memo = BoundedMemo(8)
    for number in range(20):
        memo.put(number, str(number))
        assert len(memo) <= 8
    assert memo.get(19) == "19"
    assert memo.get(0) is None


def test_weight_is_capped_and_an_entry_heavier_than_the_budget_is_not_kept():
    memo = BoundedMemo(100, max_weight=50)
    for number in range(30):
        memo.put(number, number, weight=7)
        assert memo.weight <= 50
    assert memo.get(29) == 29
    memo.put("huge", "x", weight=51)
    assert memo.get("huge") is None
    memo.clear()
    assert (len(memo), memo.weight) == (0, 0)


def test_put_many_respects_the_cap_and_keeps_what_it_was_given_last():
    memo = BoundedMemo(10)
    memo.put_many({number: number for number in range(25)})
    assert len(memo) <= 10
    memo.put_many({"a": 1, "b": 2})
    assert memo.get("a") == 1 and memo.get("b") == 2


def test_the_cap_must_be_positive():
    with pytest.raises(ValueError):
        BoundedMemo(0)


def test_concurrent_writers_and_readers_keep_the_bounds():
    memo = BoundedMemo(64, max_weight=200)
    failures = []

    def work(offset: int) -> None:
        try:
            for number in range(2000):
                memo.put((offset, number), number, weight=number % 5 + 1)
                memo.put_many({(offset, number, "k"): number})
                memo.get((offset, number - 1))
        except Exception as error:  # pragma: no cover - reported below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert len(memo) <= 64 and memo.weight <= 200
