"""``wms-relay validate OPERATION FILE|-``: a WMS developer's check of events against the schema — no store,
no settings, nothing written; the same words as the ingest door's 422; exit 0 valid, 1 invalid, 2 misuse."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from worker.cli import main

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def nowhere(monkeypatch, tmp_path):
    """No store anywhere, settings that would stop any other command, and a var dir to watch."""
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("WORKER_CONCURRENCY", "not a number")
    monkeypatch.setenv("WMS_RELAY_VAR_DIR", str(tmp_path / "var"))
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_valid_event_exits_0(nowhere, capsys):
    code, out, err = run(capsys, "validate", "receipt.create", str(EXAMPLES / "receipt.create.json"))
    assert (code, err) == (0, "")
    assert out.splitlines() == ["receipt.create 8723GYSFD52F32T123: valid",
                                "Summary: 1 valid, 0 invalid (nothing recorded or queued)"]
    assert not (nowhere / "var").exists()  # nothing written, no store started


def test_an_invalid_event_exits_1_naming_each_field(nowhere, capsys):
    code, out, _ = run(capsys, "validate", "receipt.create", str(EXAMPLES / "invalid-receipt.json"))
    assert code == 1
    assert "receipt.create (no key): invalid" in out
    assert "  products.1.colour: Unknown field." in out and "  transaction_id: Missing data" in out
    assert not (nowhere / "var").exists()


def test_its_json_is_the_ingest_doors_422_answer(nowhere, capsys, tmp_path):
    from tests.worker.web.conftest import Door

    invalid = json.loads((EXAMPLES / "invalid-receipt.json").read_text())
    valid = json.loads((EXAMPLES / "receipt.create.json").read_text())
    sys.stdin = io.StringIO(json.dumps([valid, invalid]))
    try:
        code, out, _ = run(capsys, "validate", "receipt.create", "-", "--json")
    finally:
        sys.stdin = sys.__stdin__
    assert code == 1
    said = json.loads(out)
    door = Door(tmp_path / "door")
    dry = door.client.post("/v1/events/receipt.create?dry_run=true", json=[valid, invalid])
    assert said == dry.get_json()
    real = door.post("receipt.create", invalid).get_json()["events"][0]
    assert {k: said["events"][1][k] for k in ("key", "status", "note", "errors")} == \
        {k: real[k] for k in ("key", "status", "note", "errors")}


def test_json_lines_are_read_as_the_door_reads_them(nowhere, tmp_path, capsys):
    lines = tmp_path / "events.jsonl"
    count = json.loads((EXAMPLES / "stock.adjust.json").read_text())
    lines.write_text("\n".join(json.dumps(count | {"event_id": e}) for e in ("a", "b")) + "\n")
    code, out, _ = run(capsys, "validate", "stock.adjust", str(lines))
    assert code == 0 and out.count(": valid") == 2


@pytest.mark.parametrize("argv, says", [
    (["validate", "receipt.creat", "x.json"], "unknown operation 'receipt.creat'"),
    (["validate", "receipt.create", "/no/such/file.json"], "cannot read /no/such/file.json"),
])
def test_misuse_exits_2_saying_what_is_wrong(nowhere, capsys, argv, says):
    code, out, err = run(capsys, *argv)
    assert code == 2 and says in err and out == ""


def test_not_json_and_no_event_exit_2(nowhere, tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text('{"transaction_id": "x",')
    code, _, err = run(capsys, "validate", "receipt.create", str(broken))
    assert code == 2 and "is not JSON" in err
    empty = tmp_path / "empty.json"
    empty.write_text("  \n")
    code, _, err = run(capsys, "validate", "receipt.create", str(empty))
    assert code == 2 and "holds no event" in err


def test_a_missing_argument_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["validate", "receipt.create"])
    assert stopped.value.code == 2


def test_it_runs_as_a_command_with_stdin(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["WMS_RELAY_VAR_DIR"] = str(tmp_path / "var")
    done = subprocess.run([sys.executable, "-m", "worker.cli", "validate", "stock.adjust", "-"], cwd=ROOT,
                          env=env, input=(EXAMPLES / "stock.adjust.json").read_text(), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "stock.adjust nw-stock-count-123-20240514-0600: valid" in done.stdout
    assert not (tmp_path / "var").exists()
