"""Small doors (issue 9, item 7): a key holding a newline or an escape sequence prints as one line with
the characters escaped (CLI rows, say(), text log lines) — and so do the bidirectional controls
(U+202A–202E, U+2066–2069: issue 23, item 8), in --json output too; an event with a key given twice is
refused by ``enqueue``, naming the key; ``status``/``event`` piped into ``head`` stop quietly, no
BrokenPipeError."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from worker.delivery.admission import read_events
from worker.commands.presenting import print_json, say, table
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


BIDI = [chr(code) for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]]


def test_bidirectional_controls_are_escaped_wherever_a_key_is_printed(capsys, caplog):
    key = "K-1" + "".join(BIDI) + "-ok"
    say(f"stock.adjust {one_line(key)}: dead")
    print(table(["key"], [[key]]))
    print_json({"key": key})
    out = capsys.readouterr().out
    assert not any(char in out for char in BIDI), [hex(ord(c)) for c in out if c in BIDI]
    assert "K-1\\u202a\\u202b\\u202c\\u202d\\u202e\\u2066\\u2067\\u2068\\u2069-ok" in out
    import json

    assert json.loads(out[out.index("{"):])["key"] == key  # the same string to a JSON reader

    class Event:
        operation = "stock.adjust"

    Event.key = key
    with caplog.at_level(logging.INFO, logger="wms_relay.attempts"):
        Observer().attempt(Event(), 1, "delivered", status=200, error_code=0, latency=0.1)
    [record] = caplog.records
    assert not any(char in record.getMessage() for char in BIDI) and "key=K-1\\u202a" in record.getMessage()


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
