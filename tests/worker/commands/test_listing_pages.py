"""A long listing shows a page, not a wall (issue 21: 100,000 dead letters): ``dead list``, ``retries list``,
``uncertain list`` and ``catalog show DEST`` show 50 unless ``--limit N`` or ``--all``, say how many more
there are and how to see them, and their ``--json`` carries the same page with ``total``, ``limit`` and
``more``.  A bad ``--limit`` (0, -1, abc) of these, ``audit`` and ``pauses`` is refused with a sentence
naming it, exit code 2, before the store is read.  Against a real valkey-server."""
from __future__ import annotations

import pytest

from tests.worker.commands.test_support import park
from tests.worker.support.test_actions import example
from worker.cli import main
from worker.errors import OutcomeUnknownError

LISTINGS = (["dead", "list"], ["retries", "list"], ["uncertain", "list"], ["catalog", "show", "kaching"])


def letters(relay, count: int, *, operation: str = "receipt.create") -> None:
    for n in range(count):
        key = f"R-{n:03d}"
        relay.dead_letters.add(operation, key, example("receipt.create", transaction_id=key), "permanent",
                               [f"param order_type is invalid ({key})"], detail=f"refused {key}")


def test_dead_list_shows_the_newest_fifty_and_says_how_many_more(cli, relay):
    letters(relay, 53)
    code, out, err = cli("dead", "list")
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("dl-")]
    assert len(rows) == 50 and rows[0].startswith("dl-53 ") and rows[-1].startswith("dl-4 ")
    assert "50 dead letters of 53 shown (the newest)." in out
    assert "3 more not shown: add `--limit N` or `--all` to see them" in out

    page = cli.json("dead", "list")
    assert (page["count"], page["total"], page["limit"], page["more"]) == (50, 53, 50, True)
    assert [letter["key"] for letter in page["dead_letters"]][:2] == ["R-052", "R-051"]
    every = cli.json("dead", "list", "--all")
    assert (every["count"], every["total"], every["limit"], every["more"]) == (53, 53, None, False)
    assert [letter["key"] for letter in every["dead_letters"]][-1] == "R-000"
    wide = cli.json("dead", "list", "--limit", "60")
    assert (wide["count"], wide["total"], wide["more"]) == (53, 53, False)
    code, out, _ = cli("dead", "list", "--limit", "60")
    assert "53 dead letters." in out and "more not shown" not in out


def test_a_text_search_is_not_counted_whole_but_still_says_more_match(cli, relay):
    letters(relay, 5)
    page = cli.json("dead", "list", "--grep", "order_type", "--limit", "2")
    assert (page["count"], page["total"], page["more"]) == (2, None, True)
    code, out, _ = cli("dead", "list", "--grep", "order_type", "--limit", "2")
    assert "2 dead letters shown (the newest)." in out and "More match, not shown" in out
    last = cli.json("dead", "list", "--grep", "R-004", "--limit", "1")
    assert (last["count"], last["more"], last["dead_letters"][0]["key"]) == (1, False, "R-004")


def test_retries_list_reads_only_its_page(cli, relay):
    for n in range(55):
        relay.schedule.schedule(f"receipt.create:R-{n:03d}", {"task": "t", "event": {}}, 1e10 + n)
    relay.schedule.schedule("kaching/stock.adjust:A-1", {"task": "t", "event": {}}, 1e10 + 100)
    page = cli.json("retries", "list")
    assert (page["count"], page["total"], page["limit"], page["more"]) == (50, 56, 50, True)
    assert page["retries"][0]["id"] == "receipt.create:R-000"  # soonest due first
    code, out, _ = cli("retries", "list", "--limit", "3")
    assert "3 of 56 shown." in out and "53 more not shown" in out
    assert cli.json("retries", "list", "--all")["count"] == 56
    kaching = cli.json("retries", "list", "--destination", "kaching", "--limit", "1")
    assert (kaching["count"], kaching["total"], kaching["more"]) == (1, 1, False)
    filtered = cli.json("retries", "list", "--grep", "R-01", "--limit", "4")
    assert (filtered["count"], filtered["total"], filtered["more"]) == (4, 10, True)


def test_uncertain_list_pages_across_destinations(cli, relay):
    for n in range(3):
        relative = example("stock.adjust", event_id=f"rel-{n}", type="relative", quantity=-2, reason=2)
        unknown = OutcomeUnknownError("timeout", operation="adjust_stock")
        assert park(relay, "stock.adjust", relative, unknown) == "uncertain"
    page = cli.json("uncertain", "list", "--limit", "2")
    assert (page["count"], page["total"], page["limit"], page["more"]) == (2, 3, 2, True)
    assert [u["id"] for u in page["uncertain"]] == ["stock.adjust:rel-0", "stock.adjust:rel-1"]  # oldest 1st
    code, out, _ = cli("uncertain", "list", "--limit", "2")
    assert "2 of 3 shown (the oldest). 1 more not shown" in out
    assert cli.json("uncertain", "list")["more"] is False
    grep = cli.json("uncertain", "list", "--grep", "rel-2")
    assert (grep["count"], grep["total"]) == (1, 1)


def test_catalog_show_pages_its_rows(cli, env, monkeypatch, tmp_path):
    monkeypatch.setenv("KACHING_BASE_URL", "http://kaching.invalid/")
    rows = "".join(f"A-{n:03d},P-{n},,Thing {n},true\n" for n in range(52))
    path = tmp_path / "catalog.csv"
    path.write_text("artno,product_code,variant_code,title,active\n" + rows)
    assert cli("catalog", "import", "kaching", str(path))[0] == 0
    shown = cli.json("catalog", "show", "kaching")
    assert (len(shown["rows"]), shown["total"], shown["limit"], shown["more"]) == (50, 52, 50, True)
    assert shown["rows"][0]["artno"] == "A-000"
    code, out, _ = cli("catalog", "show", "kaching", "--limit", "1")
    assert "52 row(s)" in out and "A-000" in out and "A-001" not in out
    assert "1 of 52 rows shown (by artno). 51 more not shown" in out and "catalog export kaching" in out
    assert len(cli.json("catalog", "show", "kaching", "--all")["rows"]) == 52


@pytest.mark.parametrize("argv", [*LISTINGS, ["audit"], ["pauses"]])
@pytest.mark.parametrize("value, said", [
    ("0", "--limit must be 1 or more, got '0'"),
    ("-1", "--limit must be 1 or more, got '-1'"),
    ("abc", "--limit must be a whole number of 1 or more, got 'abc'"),
    ("2.5", "--limit must be a whole number of 1 or more, got '2.5'"),
])
def test_a_bad_limit_is_refused_with_a_sentence_and_exit_code_2(cli, cleared, monkeypatch, argv, value, said):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")  # nothing answers there: refused before a read
    monkeypatch.setenv("KACHING_BASE_URL", "http://kaching.invalid/")
    code, out, err = cli(*argv, "--limit", value)
    hint = "" if "whole" in said or argv in (["audit"], ["pauses"]) else " (`--all` shows every one)"
    assert (code, out, err) == (2, "", f"wms-relay: {said}{hint}\n")


@pytest.mark.parametrize("argv", LISTINGS)
def test_limit_and_all_together_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--limit", "5", "--all"])
    assert stopped.value.code == 2
    assert "argument --all: not allowed with argument --limit" in capsys.readouterr().err
