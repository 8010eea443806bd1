"""docs/operations.md's backup and restore, done as written on the embedded store: the store holds what
nothing else has (open dead letters, uncertain events, the audit log).  Dead letters are made through
the real door (``wms-relay enqueue`` of invalid events) and one is discarded by a person (an audit
entry); the server is stopped (``wms-relay store stop``: SHUTDOWN writes the AOF out), its
``var/valkey/appendonlydir`` copied into a fresh var/, and a server started there: ``wms-relay dead
list``, ``audit`` and ``status`` read the same letters, the same audit log and the same counts — what
the chapter tells an operator to check after a restore."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.fixtures.pipeline import ROOT
from worker.store import embedded

pytestmark = pytest.mark.integration


def cli(var_dir, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "SENTRY_"))}
    env["WMS_RELAY_VAR_DIR"] = str(var_dir)
    return subprocess.run([sys.executable, "-m", "worker.cli", *argv], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def snapshot(var_dir) -> dict:
    """What an operator compares before and after a restore."""
    letters = json.loads(cli(var_dir, "dead", "list", "--include-closed", "--json").stdout)["dead_letters"]
    audit = json.loads(cli(var_dir, "audit", "--json").stdout)["entries"]
    status = json.loads(cli(var_dir, "status", "--json").stdout)
    return {"letters": sorted((x["id"], x["status"], x["reason"]) for x in letters),
            "audit": [(x["actor"], x["action"], x["target"]) for x in audit],
            "dead_letters": status["dead_letters"]["count"], "ledger": status["ledger"]}


def test_a_copy_of_the_stores_aof_restores_its_dead_letters_and_audit_log(tmp_path):
    original, restored = tmp_path / "original" / "var", tmp_path / "restored" / "var"
    embedded.ensure_running(original)
    try:
        for n in range(3):  # invalid: no transaction_id — each is an open dead letter
            cli(original, "enqueue", "receipt.create", "-", stdin=json.dumps({"receipt_no": f"B-{n}"}))
        letters = json.loads(cli(original, "dead", "list", "--json").stdout)["dead_letters"]
        assert len(letters) == 3, letters
        discarded = cli(original, "dead", "discard", letters[0]["id"], "--reason", "backup drill",
                        "--actor", "ops-anna")
        assert discarded.returncode == 0, discarded.stderr
        before = snapshot(original)
        assert before["dead_letters"] == 2 and ("ops-anna", "discard", letters[0]["id"]) in before["audit"]

        assert cli(original, "store", "stop").returncode == 0  # SHUTDOWN: the AOF is complete on disk
        (restored / "valkey").mkdir(parents=True, mode=0o700)
        shutil.copytree(original / "valkey" / "appendonlydir", restored / "valkey" / "appendonlydir")
        embedded.ensure_running(restored)
        assert snapshot(restored) == before
    finally:
        embedded.stop(original)
        embedded.stop(restored)
