"""Small doors (issue 9, item 7): a key holding a newline or an escape sequence prints as one line with
the characters escaped (CLI rows, say(), text log lines); an event with a key given twice is refused by
``enqueue``, naming the key; ``status``/``event`` piped into ``head`` stop quietly, no BrokenPipeError."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from worker.delivery.admission import read_events
from worker.commands.presenting import say, table
from worker.observe.observer import Observer
from worker.encoding import one_line

ROOT = Path(__file__).resolve().parents[2]
NASTY = "K-1\nstock.adjust K-2 delivered\x1b[2J\u2028"


def test_control_characters_are_escaped_in_cli_output(capsys):
    say(f"stock.adjust {one_line(NASTY)}: dead")
    print(table(["key"], [[NASTY]]))
    out = capsys.readouterr().out
    assert out.count("\n") == 3 and "\x1b" not in out and "\u2028" not in out
    assert "K-1\\nstock.adjust K-2 delivered\\x1b[2J\\u2028" in out


def test_control_characters_are_escaped_in_text_log_lines(caplog):
    class Event:
        operation, key = "stock.adjust", NASTY

    with caplog.at_level(logging.INFO, logger="wms_relay.attempts"):
        Observer().attempt(Event(), 1, "delivered", status=200, error_code=0, latency=0.1)
    [record] = caplog.records
    assert "\n" not in record.getMessage() and "key=K-1\\nstock.adjust" in record.getMessage()


def test_enqueue_refuses_a_key_given_twice_naming_it():
    with pytest.raises(ValueError, match="duplicate key 'quantity'"):
        read_events('{"event_id": "e", "quantity": 1, "quantity": 2}')
    with pytest.raises(ValueError, match="line 2: duplicate key 'artno'"):
        read_events('{"a": 1}\n{"artno": "1", "artno": "2"}')


def test_status_piped_into_head_stops_quietly(shared_redis_server, tmp_path):
    env = {**os.environ, "REDIS_URL": shared_redis_server.url, "WMS_RELAY_VAR_DIR": str(tmp_path)}
    env.pop("SENTRY_DSN", None)
    script = f"{sys.executable} -m worker.cli status | head -c 1; {sys.executable} -m worker.cli dead list " \
             f"--json | head -c 1"
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
