"""What a new support person tripped over, fixed: ``event`` does not claim a worker is on an event when no
worker runs; ``dead show`` of an invalid letter does not suggest a retry that cannot succeed; ``enqueue``
of an invalid event prints its one line and no stray log line; ``--help`` lists the support commands
first and shows no reST markup."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from worker.cli import build_parser, main
from worker.store.heartbeats import Heartbeats

ROOT = Path(__file__).resolve().parents[3]


def test_an_invalid_event_is_said_once_and_its_letter_suggests_the_wms_not_a_retry(store, cli):
    code, out, err = cli("enqueue", "receipt.create", str(ROOT / "examples" / "invalid-receipt.json"))
    assert code == 1 and err == ""
    assert out.count("dead") == 2 and "Summary: 1 dead" in out  # the event's line and the summary
    code, out, _ = cli("dead", "show", "dl-1")
    assert code == 0 and "Fix it in the WMS and send it again" in out
    assert "dead retry" not in out and "wms-relay dead discard dl-1 --reason" in out


def test_event_says_no_worker_runs_instead_of_a_worker_is_on_it(store, cli):
    from worker.delivery.relay import build_relay
    from worker.delivery.pipeline import admit
    from worker.settings import Settings

    relay = build_relay(Settings.from_env(), redis_client=store, sends=False)
    event = json.loads((ROOT / "examples" / "receipt.create.json").read_text())
    admission = admit(relay, "receipt.create", event)
    code, out, _ = cli("event", "receipt.create", admission.key)
    assert code == 0 and ": accepted" in out
    assert "no worker is running" in out and "a worker is on it" not in out
    Heartbeats(store, clock=time.time).beat("worker", "relay-1@h")
    code, out, _ = cli("event", "receipt.create", admission.key)
    assert "a worker is on it" in out


def test_help_lists_support_commands_first_without_rest_markup(capsys):
    text = build_parser().format_help()
    names = ("status", "dead", "store", "health", "worker", "sandbox")
    order = [text.index(f"    {name} ") for name in names]
    assert order == sorted(order)
    for command in ("status", "dead", "event", "health", "metrics", "store"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        shown = capsys.readouterr().out
        assert "``" not in shown and ":class:" not in shown and ":func:" not in shown, command


def test_help_names_every_destination_of_the_table():
    from worker.destinations.table import DESTINATIONS

    description = build_parser().description
    assert description.startswith("Delivers warehouse events to Trademax, ka-ching, StockTrim and "
                                  "Stock2Shop:")
    assert all(target.title in description for target in DESTINATIONS.values())
