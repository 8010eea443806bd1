"""How the support commands present things: ages, --since (bounded: issue 23.6), tables, the default
actor."""
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


@pytest.mark.parametrize("text, problem", [
    ("99999999999999999999d", "longer than 100 years"), ("1" + "0" * 400 + "s", "longer than 100 years"),
    ("5300w", "--older-than '5300w'"), ("0001-01-01", "outside 1970-2099"),
    ("9999-12-31", "outside 1970-2099")])
def test_durations_and_dates_are_bounded_where_they_enter(text, problem):
    with pytest.raises(Refused, match=problem):
        parse_since(text, NOW, "--older-than")


def test_dead_purge_older_than_a_typo_is_refused_with_a_sentence(cli, env):
    code, out, err = cli("dead", "purge", "--closed", "--older-than", "99999999999999999999d")
    assert code == 2 and "--older-than '99999999999999999999d' is longer than 100 years" in err
    code, out, err = cli("audit", "--since", "99999999999999999999d")
    assert code == 2 and "--since" in err and "Traceback" not in err


def test_tables_align_columns_and_shorten_long_cells():
    text = table(["ID", "WHAT"], [("dl-1", "short"), ("dl-10", "x" * 100)], widths={1: 10})
    assert text.splitlines() == ["ID     WHAT", "dl-1   short", "dl-10  xxxxxxxxx…"]
    assert shorten("a  b", 10) == "a b"
    assert shorten("a\n b", 10) == "a\\n b"  # a newline is shown, escaped, never splits the row


def test_the_default_actor_is_the_os_account():
    actor = default_actor()
    assert actor and " " not in actor
