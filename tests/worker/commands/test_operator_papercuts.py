"""What an operator tripped over in the CLI (issue 22.8), fixed, each against a real valkey-server: a bad
option names the subcommand's own usage; ``dead list --limit``; ``dead discard`` and ``retries discard``
with ``--all``, filters and ``--dry-run``; every listing's ``--json`` carries ``store``; ``status --json``
still prints an object when the store is down; the memory line reads right; dead letters no destination's
ledger holds are said; the worker's banner tells how queues are bound; ``make run`` installs no test
packages."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.worker.commands.test_support import park
from tests.worker.support.test_actions import example, refused
from worker.cli import main
from worker.errors import TransientError

ROOT = Path(__file__).resolve().parents[3]
INVALID = json.loads((ROOT / "examples" / "invalid-receipt.json").read_text())


def dead_receipts(relay, *keys: str) -> None:
    for key in keys:
        event = example("receipt.create", transaction_id=key)
        assert park(relay, "receipt.create", event, refused()) == "dead"


def scheduled_receipts(relay, *keys: str) -> None:
    transient = TransientError("", operation="create_receipt", status=503, retry_after=600.0)
    for key in keys:
        assert park(relay, "receipt.create", example("receipt.create", transaction_id=key), transient) == \
            "retrying"


# -- a bad option names its own command -----------------------------------------------------------------

@pytest.mark.parametrize("argv, command, bad", [
    (["dead", "list", "--limt", "5"], "dead list", "--limt 5"),
    (["retries", "discard", "--all", "--reason", "x", "--everything"], "retries discard", "--everything"),
    (["status", "--bogus"], "status", "--bogus"),
])
def test_a_bad_option_prints_its_subcommands_usage_not_the_top_level_one(argv, command, bad, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: wms-relay {command} [-h]") and "COMMAND ..." not in err
    assert f"wms-relay {command}: error: unrecognized arguments: {bad} (`wms-relay {command} --help` lists " \
           "its options)" in err


def test_a_bad_option_of_the_top_level_still_gets_the_top_level_usage(capsys):
    with pytest.raises(SystemExit):
        main(["--bogus"])
    assert capsys.readouterr().err.startswith("usage: wms-relay [-h] [--version] COMMAND")


# -- dead list --limit, --json with store ---------------------------------------------------------------

def test_dead_list_takes_a_limit_like_the_other_listings(cli, relay):
    dead_receipts(relay, "R-1", "R-2", "R-3")
    listed = cli.json("dead", "list", "--limit", "2")
    assert listed["count"] == 2 and [letter["key"] for letter in listed["dead_letters"]] == ["R-3", "R-2"]
    code, out, _ = cli("dead", "list", "--limit", "1")
    assert code == 0 and "R-3" in out and "R-2" not in out and "1 dead letter of 3 shown (the newest)." in out
    code, _, err = cli("dead", "list", "--limit", "0")
    assert code == 2 and "--limit must be 1 or more" in err


def test_every_listings_json_carries_the_store_it_read(cli, relay, env):
    from worker.redaction import url_without_password

    dead_receipts(relay, "R-1")
    scheduled_receipts(relay, "R-2")
    store = f"{url_without_password(env.url)} (REDIS_URL)"
    for argv, items in ((["dead", "list"], "dead_letters"), (["retries", "list"], "retries"),
                        (["uncertain", "list"], "uncertain"), (["audit"], "entries"),
                        (["pauses"], "entries")):
        listed = cli.json(*argv)
        assert listed["store"] == store and listed["count"] == len(listed[items]), argv
    assert cli.json("dead", "list")["dead_letters"][0]["key"] == "R-1"
    assert cli.json("retries", "list")["retries"][0]["id"] == "receipt.create:R-2"
    assert cli.json("pause", "stock2shop", "--reason", "stocktake")["store"] == store
    assert cli.json("resume", "stock2shop")["store"] == store


# -- discard --all, with filters and --dry-run ----------------------------------------------------------

def test_dead_discard_all_with_filters_and_a_dry_run_like_dead_retry(cli, relay):
    dead_receipts(relay, "R-1", "R-2")
    assert park(relay, "stock.adjust", example("stock.adjust", event_id="adj-1"), refused()) == "dead"
    code, _, err = cli("dead", "discard", "dl-1", "--all", "--reason", "x")
    assert code == 2 and "or use --all" in err
    code, _, err = cli("dead", "discard", "dl-1", "--operation", "receipt.create", "--reason", "x")
    assert code == 2 and "go with --all" in err

    code, out, _ = cli("dead", "discard", "--all", "--operation", "receipt.create", "--dry-run",
                       "--reason", "the order was cancelled")
    assert code == 0
    assert "Summary: 2 would be discarded, 0 skipped, 0 failed. Dry run: nothing was changed." in out
    assert len(cli.json("dead", "list")["dead_letters"]) == 3

    done = cli.json("dead", "discard", "--all", "--operation", "receipt.create", "--actor", "erin",
                    "--reason", "the order was cancelled")
    assert done["summary"] == {"discarded": 2, "skipped": 0, "failed": 0} and done["dry_run"] is False
    assert [letter["operation"] for letter in cli.json("dead", "list")["dead_letters"]] == ["stock.adjust"]
    assert relay.ledger.get("receipt.create", "R-1").state == "discarded"
    audited = cli.json("audit", "--action", "discard")["entries"]
    assert sorted(e["target"] for e in audited) == ["dl-1", "dl-2"]
    assert {e["actor"] for e in audited} == {"erin"}
    again = cli.json("dead", "discard", "--all", "--operation", "receipt.create", "--reason", "x")
    assert again["summary"] == {"discarded": 0, "skipped": 0, "failed": 0}


def test_retries_discard_all_with_filters_and_a_dry_run(cli, relay):
    scheduled_receipts(relay, "R-1", "R-2")
    transient = TransientError("", operation="adjust_stock", status=503, retry_after=600.0)
    assert park(relay, "stock.adjust", example("stock.adjust", event_id="adj-1"), transient) == "retrying"

    dry = cli.json("retries", "discard", "--all", "--operation", "receipt.create", "--dry-run",
                   "--reason", "duplicates of R-0")
    assert dry["summary"] == {"would be discarded": 2, "skipped": 0, "failed": 0} and dry["dry_run"] is True
    assert relay.ledger.get("receipt.create", "R-1").state == "retrying"
    assert cli.json("retries", "list")["count"] == 3

    code, out, _ = cli("retries", "discard", "--all", "--grep", "R-2", "--reason", "duplicate of R-0")
    assert code == 0 and "[1/1] receipt.create:R-2" in out
    assert "Summary: 1 discarded, 0 skipped, 0 failed." in out
    assert relay.ledger.get("receipt.create", "R-2").state == "discarded"
    assert sorted(e["id"] for e in cli.json("retries", "list")["retries"]) == [
        "receipt.create:R-1", "stock.adjust:adj-1"]
    code, _, err = cli("retries", "discard", "receipt.create:R-1", "--grep", "R", "--reason", "x")
    assert code == 2 and "go with --all" in err


# -- status ---------------------------------------------------------------------------------------------

def test_status_json_prints_an_object_when_the_store_is_down(cli, monkeypatch, tmp_path):
    from tests.fixtures.ports import free_port

    monkeypatch.setenv("REDIS_URL", f"redis://:secret-pw@127.0.0.1:{free_port()}/0")
    code, out, _ = cli("status", "--json")
    assert code == 3
    report = json.loads(out)
    assert report["store_up"] is False and report["store"].endswith("(REDIS_URL)")
    assert "cannot reach Redis" in report["error"] and "secret-pw" not in out
    assert [item["flag"] for item in report["attention"]] == ["store_down"]
    code, out, err = cli("status")
    assert code == 3 and out == "" and "cannot reach Redis" in err
    monkeypatch.delenv("REDIS_URL")
    monkeypatch.setenv("WMS_RELAY_VAR_DIR", str(tmp_path / "nothing-here"))
    code, out, _ = cli("status", "--json", "--fail-on-attention")
    assert code == 3 and "no store to read" in json.loads(out)["error"]


def test_status_says_its_memory_in_a_sentence_that_reads(cli, store):
    store.config_set("maxmemory", "0")
    code, out, _ = cli("status")
    (line,) = [line for line in out.splitlines() if line.startswith("Redis memory:")]
    assert re.fullmatch(r"Redis memory: +\d+\.\d MiB used, no maxmemory set", line), line
    store.config_set("maxmemory", str(512 * 1048576))
    code, out, _ = cli("status")
    (line,) = [line for line in out.splitlines() if line.startswith("Redis memory:")]
    assert re.fullmatch(r"Redis memory: +\d+\.\d MiB used, \d+% of its maxmemory 512\.0 MiB", line), line


def test_dead_letters_of_no_destination_are_said_so(cli, relay):
    assert park(relay, "receipt.create", INVALID) == "dead"
    dead_receipts(relay, "R-1")
    report = cli.json("status")
    assert report["dead_letters"]["count"] == 2
    assert report["dead_letters"]["never_accepted"] == {"invalid": 1}
    assert sum(part["ledger"]["dead"] for part in report["destinations"].values()) == 1
    code, out, _ = cli("status")
    (line,) = [line for line in out.splitlines() if line.startswith("Dead letters:")]
    assert line.endswith("; 1 invalid event: never accepted, so in no destination's column below)"), line
    relay.dead_letters.discard("dl-2", actor="t", reason="x")
    code, out, _ = cli("status")
    (line,) = [line for line in out.splitlines() if line.startswith("Dead letters:")]
    assert "never accepted" in line and cli.json("status", "--destination", "kaching")["dead_letters"] == {
        "count": 0, "oldest_age_seconds": None, "never_accepted": {}}


# -- the worker's banner --------------------------------------------------------------------------------

def test_the_banner_names_each_queues_own_exchange_and_a_message_there_reaches_that_queue_only(env):
    """The banner printed ``exchange=trademax.dispatch(direct) key=trademax.dispatch`` for every queue:
    each was bound to Celery's default exchange under one key, so a message sent to that exchange (as the
    banner invites) was copied onto every queue.  Now each queue has its own exchange and key."""
    from kombu import Exchange, Producer

    from worker.destinations.table import QUEUES
    from worker.broker.publisher_app import publisher_app
    from worker.settings import Settings

    app = publisher_app(Settings.from_env())
    try:
        banner = app.amqp.queues.format().splitlines()
        assert len(banner) == len(app.amqp.queues) >= len(QUEUES)
        for line in banner:
            name = line.split()[1]
            assert line.split()[2:] == [f"exchange={name}(direct)", f"key={name}"], line
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            for queue in app.amqp.queues.values():  # what a starting worker declares
                queue(channel).declare()
            Producer(channel).publish({"x": 1}, exchange=Exchange("trademax.receipt", type="direct"),
                                      routing_key="trademax.receipt")
        client = env.client()
        assert {queue: client.llen(queue) for queue in QUEUES} == {
            queue: int(queue == "trademax.receipt") for queue in QUEUES}
    finally:
        app.close()


# -- make run installs no test packages -----------------------------------------------------------------

def test_make_run_installs_the_runtime_only_and_make_test_adds_the_test_extras(tmp_path):
    """A dry run of make (``-n``: prints the commands, runs none) on a checkout with no venv yet."""
    def planned(target: str) -> str:
        return subprocess.run(["make", "-n", "-C", str(ROOT), target, f"VENV={tmp_path / 'venv'}"],
                              capture_output=True, text=True, check=True).stdout

    run, test = planned("run"), planned("test")
    assert "pip install" in run and "[test]" not in run and "'.[local]'" in run
    assert "wms-relay demo" in run
    assert "'.[test]'" in test and "pytest" in test
