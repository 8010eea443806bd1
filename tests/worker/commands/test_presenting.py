"""How the support commands present things: ages, --since, tables, the default actor."""
from __future__ import annotations

import pytest

from worker.commands.presenting import Refused, age, default_actor, parse_since, shorten, table

NOW = 1_714_550_000.0


@pytest.mark.parametrize("seconds, shown", [(None, "-"), (-3, "0 s"), (42.9, "42 s"), (60, "1 min"),
                                            (3599, "59 min"), (3600, "1 h"), (3 * 3600 + 720, "3 h 12 min"),
                                            (86400, "1 d"), (2 * 86400 + 4 * 3600 + 59, "2 d 4 h")])
def test_ages_read_like_a_person_would_say_them(seconds, shown):
    assert age(seconds) == shown


def test_since_takes_a_duration_or_a_date():
    assert parse_since("30m", NOW) == NOW - 1800
    assert parse_since("2h", NOW) == NOW - 7200
    assert parse_since(" 1.5 d ", NOW) == NOW - 1.5 * 86400
    assert parse_since("2024-05-01", NOW) == 1_714_521_600.0  # midnight UTC
    assert parse_since("2024-05-01T02:00:00+02:00", NOW) == 1_714_521_600.0
    assert parse_since("2024-05-01T00:00:00Z", NOW) == 1_714_521_600.0
    with pytest.raises(Refused, match="--since 'yesterday'"):
        parse_since("yesterday", NOW)


def test_tables_align_columns_and_shorten_long_cells():
    text = table(["ID", "WHAT"], [("dl-1", "short"), ("dl-10", "x" * 100)], widths={1: 10})
    assert text.splitlines() == ["ID     WHAT", "dl-1   short", "dl-10  xxxxxxxxx…"]
    assert shorten("a  b", 10) == "a b"
    assert shorten("a\n b", 10) == "a\\n b"  # a newline is shown, escaped, never splits the row


def test_the_default_actor_is_the_os_account():
    actor = default_actor()
    assert actor and " " not in actor
